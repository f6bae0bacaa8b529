"""Reference probe: print the versions of a reference venv as one JSON line, if its network imports.

Run by the reference venv's Python (never imports vsvsrpp)::

    python reference_probe.py MODULE DISTRIBUTION
    python reference_probe.py vsbasicvsrpp.basicvsr_plusplus_net vsbasicvsrpp

Prints ``{"version", "torch", "torchvision", "mmengine", "numpy"}`` (``version``: the
distribution's; ``null`` for what is not installed). Exits with a traceback on stderr when
torch or MODULE does not import, 2 for a wrong command line.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    module, distribution = argv
    import torch

    importlib.import_module(module)
    found = {
        "version": version(distribution),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "mmengine": version("mmengine"),
        "numpy": version("numpy"),
    }
    sys.stdout.write(json.dumps(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
