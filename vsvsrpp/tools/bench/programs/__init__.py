"""The programs the benchmark runs in other processes, and what running them needs.

* ``end_to_end.vpy``: the benchmark clip through :func:`vsvsrpp.plugin.entry.apply`, run by
  ``vspipe`` (:mod:`~vsvsrpp.tools.bench.end_to_end`);
* ``reference_probe.py`` and ``reference_timer.py``: run by the reference venv's Python
  (:mod:`~vsvsrpp.tools.bench.reference`); they import torch and the reference package, never
  vsvsrpp;
* ``forward_timing.py``: the timing protocol, imported by *model only* here and by
  ``reference_timer.py`` there, so that both are timed the same way.

Each program takes its inputs on its command line (``vspipe -a name=value`` for the script);
their docstrings say how to run them by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The folder holding the programs (installed with the package: see ``package-data``).
FOLDER = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The installed program ``name`` (e.g. ``"end_to_end.vpy"``).

    Raises:
        FileNotFoundError: if the package was installed without it.
    """
    program = FOLDER / name
    if not program.is_file():
        raise FileNotFoundError(f"benchmark program missing from the installed package: {program}")
    return program


def child_env() -> dict[str, str]:
    """Our environment without ``PYTHONPATH``/``PYTHONHOME`` and user site-packages: another
    venv's Python must see its own packages only."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def tail(text: str, lines: int = 6) -> str:
    """The last ``lines`` lines of a program's output on one line (for error messages)."""
    return " | ".join(text.strip().splitlines()[-lines:])
