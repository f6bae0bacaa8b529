"""*End to end*: the benchmark clip through the VapourSynth filter in ``vspipe``, start-up subtracted.

``vspipe -c y4m programs/end_to_end.vpy /dev/null`` builds the clip from the frames (saved as
``.npy``), runs :func:`vsvsrpp.plugin.entry.apply` with one window covering the clip (no
overlap, no scene detection) and converts the result to YUV420P8. The script's start-up
(Python imports, model load), measured with ``vspipe --info`` on the same script, is subtracted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import torch

from . import programs
from .report import Timing

log = logging.getLogger("vsvsrpp.bench")

#: vspipe's own report with ``-p``: "Output N frames in S seconds (F fps)".
_VSPIPE_OUTPUT = re.compile(r"Output (\d+) frames in ([0-9.]+) seconds")


def find_vspipe() -> str | None:
    """``vspipe`` next to the running interpreter, else on PATH; None if neither has one."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return shutil.which("vspipe", path=path)


def filter_kwargs(device: torch.device, precision: str) -> dict[str, Any]:
    """Keyword arguments of the filter in the end-to-end script, besides the weights, the
    window and the call options. The precision is always explicit: the filter's default is
    "auto" (fp16 on CUDA)."""
    return {"device": str(device), "precision": precision}


def script_args(
    weights: str | os.PathLike,
    frames_npy: str | os.PathLike,
    device: torch.device,
    precision: str,
    options: Mapping[str, Any] | None = None,
) -> list[str]:
    """The ``-a name=value`` arguments of ``end_to_end.vpy`` (see its docstring)."""
    values = {"frames": str(frames_npy), "weights": str(weights), **filter_kwargs(device, precision)}
    values["options"] = json.dumps(dict(options or {}))
    return [arg for name, value in values.items() for arg in ("-a", f"{name}={value}")]


def _vspipe(vspipe: str, args: list[str]) -> tuple[float, str]:
    """Run vspipe; returns ``(wall-clock seconds, stderr)``.

    Raises:
        RuntimeError: if it fails (the message ends with its stderr).
    """
    start = time.perf_counter()
    proc = subprocess.run([vspipe, *args], capture_output=True, text=True, errors="replace")
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"vspipe {args[0]} failed (exit {proc.returncode}): {programs.tail(proc.stderr)}")
    return elapsed, proc.stderr


def time_end_to_end(
    weights: str | os.PathLike,
    frames_npy: str | os.PathLike,
    frames: int,
    device: str | torch.device,
    precision: str,
    vspipe: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Timing, float, float | None]:
    """Time ``vspipe -c y4m`` of ``end_to_end.vpy`` to /dev/null, start-up subtracted.

    Args:
        weights: checkpoint of any family.
        frames_npy: ``.npy`` of ``(frames, 3, h, w)`` float32 RGB in [0, 1].
        frames: its frame count.
        device, precision: passed to the filter.
        vspipe: the executable (default: :func:`find_vspipe`).
        options: the family's call options, passed to the filter.

    Returns:
        ``(timing, startup_seconds, vspipe_seconds)``: the start-up is ``vspipe --info`` on the
        same script; ``vspipe_seconds`` is vspipe's own "Output N frames in S seconds" (``-p``),
        None if it printed none. Should start-up noise exceed the run itself (tiny clips), the
        timing falls back to vspipe's own figure.

    Raises:
        RuntimeError: if vspipe is missing or fails (the message ends with its stderr), or the
            start-up exceeds the run and vspipe printed no time of its own.
    """
    vspipe = vspipe or find_vspipe()
    if vspipe is None:
        raise RuntimeError("vspipe not found next to the interpreter or on PATH")
    script = str(programs.path("end_to_end.vpy"))
    args = script_args(weights, frames_npy, torch.device(device), precision, options)
    startup, _ = _vspipe(vspipe, ["--info", *args, script, "-"])
    total, stderr = _vspipe(vspipe, ["-p", "-c", "y4m", *args, script, os.devnull])
    match = _VSPIPE_OUTPUT.search(stderr)
    own = float(match.group(2)) if match and int(match.group(1)) == frames else None
    seconds = total - startup
    if seconds <= 0:
        if own is None or own <= 0:
            raise RuntimeError(f"vspipe start-up ({startup:.2f} s) exceeded the whole run ({total:.2f} s); use more frames")
        log.warning("vspipe start-up noise exceeds the run; using vspipe's own timer")
        seconds = own
    return Timing(seconds, frames), startup, own
