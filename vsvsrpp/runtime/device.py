"""Devices and precisions: the one place that validates them and asks how much memory is free.

Supported devices are the CPU and CUDA GPUs. A device is named as torch names it (``"cpu"``,
``"cuda"``, ``"cuda:1"``, a :class:`torch.device`) or by a CUDA index (``1`` for ``"cuda:1"``).
"""

from __future__ import annotations

import functools
import logging
import numbers
import os
import platform
import threading

import torch

from . import cuda

log = logging.getLogger("vsvsrpp")

#: Precision names and the dtype convolutions run in (flow, sampling grids and deformable
#: offsets stay float32 in every mode; see :class:`vsvsrpp.runtime.engine.Engine`).
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is usable, else ``cpu``."""
    return torch.device("cuda" if cuda.device_count() > 0 else "cpu")


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
        count = cuda.device_count()
        if count == 0:
            raise ValueError(f"device {device!r} requested but CUDA is not available; use the CPU: device='cpu' (on the command line: --device cpu)")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} does not exist: {count} CUDA device(s) visible (cuda:0 to cuda:{count - 1})")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"fp16"`` on CUDA, ``"fp32"`` on the CPU; other names are checked.

    ``"bf16"`` on a CPU without native bfloat16 arithmetic (:func:`cpu_has_native_bf16`) becomes
    ``"fp32"``, with one log line per process: oneDNN would emulate it, slower than float32.

    Raises:
        ValueError: for a name other than auto, fp32, fp16, bf16 (quoted).
    """
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        _log_bf16_fallback()
        return "fp32"
    return precision


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively: x86 with AVX-512 BF16 (Zen 4 and later,
    Cooper Lake, Sapphire Rapids) or AMX (Sapphire Rapids and later), or Arm with the BF16
    extension (``bf16`` in ``/proc/cpuinfo``: Graviton 3, Neoverse V1/N2, Apple M2 and later).
    Other CPUs (AVX-512 without BF16, AVX2) would run bf16 convolutions emulated, slower than
    float32."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if machine in ("aarch64", "arm64"):
        try:
            with open("/proc/cpuinfo") as f:
                return any(line.startswith("Features") and " bf16" in line for line in f)
        except OSError:
            return False
    return False


@functools.cache
def _log_bf16_fallback() -> None:
    log.warning(
        "precision bf16: this CPU has no native bfloat16 (AVX-512 BF16, AMX or Arm BF16), running fp32 instead "
        "(emulated bf16 would be slower)"
    )


def cpu_threads() -> int:
    """Torch threads for a pass on the CPU: the physical cores among the CPUs this process may
    run on (its affinity, so ``taskset`` and container CPU sets count), or the number of those
    CPUs where the topology cannot be read. Hyper-threads are left out: two threads on one
    core share its vector units, which convolutions already fill."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        try:
            topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{topology}/physical_package_id") as a, open(f"{topology}/core_id") as b:
                cores.add((a.read().strip(), b.read().strip()))
        except OSError:
            return len(cpus)
    return max(1, len(cores))


_threads_lock = threading.Lock()
_threads_set = False


def set_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads once per process and return the number in force.

    With ``threads`` given, that number (a caller that knows its share, such as a Ray task).
    Without, :func:`cpu_threads` -- unless ``OMP_NUM_THREADS`` is set or an earlier call (or
    the caller, through this function) already chose: a user's choice is never overridden.
    The engine calls it without ``threads`` when it first runs on the CPU.
    """
    global _threads_set
    with _threads_lock:
        if threads is not None:
            torch.set_num_threads(threads)
            _threads_set = True
        elif not _threads_set:
            _threads_set = True
            if not os.environ.get("OMP_NUM_THREADS"):
                torch.set_num_threads(cpu_threads())
        return torch.get_num_threads()


def free_memory(device: torch.device) -> int:
    """Free bytes on ``device``: CUDA's free memory, or the system's available memory (Linux
    ``MemAvailable``; 8 GiB assumed where it cannot be read)."""
    if device.type == "cuda":
        return cuda.free_bytes(device)
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 8 << 30  # not Linux: assume a modest machine
