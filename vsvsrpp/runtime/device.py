"""Devices and precisions: the one place that validates them and asks how much memory is free.

Supported devices are the CPU and CUDA GPUs. A device is named as torch names it (``"cpu"``,
``"cuda"``, ``"cuda:1"``, a :class:`torch.device`) or by a CUDA index (``1`` for ``"cuda:1"``).
"""

from __future__ import annotations

import numbers

import torch

#: Precision names and the dtype convolutions run in (flow, sampling grids and deformable
#: offsets stay float32 in every mode; see :class:`vsvsrpp.runtime.engine.Engine`).
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | int | torch.device | None) -> torch.device:
    """Validate a device name and return the device; ``None`` is :func:`default_device`.

    Raises:
        ValueError: for a device that is not a CPU or CUDA device, a malformed name, CUDA when no
            CUDA device is usable, or a CUDA index beyond the visible devices (each message
            quotes the value and says what to pass instead).
    """
    if device is None:
        return default_device()
    if isinstance(device, bool) or not isinstance(device, (str, numbers.Integral, torch.device)):
        raise ValueError(f"device must be a name such as 'cpu', 'cuda' or 'cuda:1', got {device!r} ({type(device).__name__})")
    if isinstance(device, numbers.Integral):
        if device < 0:
            raise ValueError(f"device index must be >= 0, got {device}")
        dev = torch.device("cuda", int(device))
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"invalid device {device!r} ({e}); use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: the networks run on 'cpu' or 'cuda[:N]'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} does not exist: {count} CUDA device(s) visible (cuda:0 to cuda:{count - 1})")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"fp16"`` on CUDA, ``"fp32"`` on the CPU; other names are checked.

    Raises:
        ValueError: for a name other than auto, fp32, fp16, bf16 (quoted).
    """
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def free_memory(device: torch.device) -> int:
    """Free bytes on ``device``: CUDA's free memory, or the system's available memory (Linux
    ``MemAvailable``; 8 GiB assumed where it cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 8 << 30  # not Linux: assume a modest machine
