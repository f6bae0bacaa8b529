"""Where a benchmark ran: versions, the device, the CPU model or the GPU and its driver, load."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from typing import Any

import torch


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def gpu_driver() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi``; None without it or when it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system has none."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _gpu_info(device: torch.device) -> dict[str, Any]:
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "gpu_capability": f"{props.major}.{props.minor}",
        "gpu_driver": gpu_driver(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def environment_info(device: torch.device) -> dict[str, Any]:
    """Versions, device name, thread count and the CPU model (or GPU name and driver on CUDA).

    Returns:
        A JSON-ready dict: ``device``, ``device_type``, ``torch``, ``torchvision``,
        ``vapoursynth``, ``python``, ``threads`` (torch's), ``cpu``, ``cpu_count`` (logical
        CPUs), ``platform``, ``load_average_start`` where the system has one, and on CUDA
        ``gpu``, ``gpu_memory_gib``, ``gpu_capability``, ``gpu_driver``, ``cuda``, ``cudnn``.
    """
    info: dict[str, Any] = {
        "device": str(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "torchvision": package_version("torchvision"),
        "vapoursynth": package_version("vapoursynth"),
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        info.update(_gpu_info(device))
    load = load_average()
    if load is not None:
        info["load_average_start"] = load
    return info
