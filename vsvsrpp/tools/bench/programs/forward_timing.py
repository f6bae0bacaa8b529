"""The timing protocol of the benchmark: a warm-up forward, then the fastest of ``repeat``.

Shared by *model only* (imported as :mod:`vsvsrpp.tools.bench.programs.forward_timing`) and by
``reference_timer.py``, which runs in the reference venv and imports this file from its own
folder: it needs torch only and must never import vsvsrpp.
"""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work on ``device`` (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_forward(net: torch.nn.Module, x: torch.Tensor, repeat: int = 1, **options) -> tuple[float, torch.Tensor]:
    """Time ``net(x)``: one warm-up forward of (at most) the first two frames at the same size
    (oneDNN and cuDNN pick their kernels per shape), then ``repeat`` forwards of all of ``x``.

    Args:
        net: a video network, ``(n, t, 3, h, w)`` -> ``(n, t, 3, s*h, s*w)``.
        x: ``(1, t, 3, h, w)`` on the network's device, in its input dtype.
        repeat: forwards to time (>= 1).
        options: keyword arguments of every forward (a family's call options).

    Returns:
        ``(seconds, output)``: the wall-clock seconds of the fastest forward (on CUDA the device
        is synchronised before and after each), and the output of the last one.

    Raises:
        ValueError: if ``repeat < 1``.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    best = float("inf")
    with torch.inference_mode():
        net(x[:, : min(2, x.shape[1])], **options)
        for _ in range(repeat):
            synchronize(x.device)
            start = time.perf_counter()
            out = net(x, **options)
            synchronize(x.device)
            best = min(best, time.perf_counter() - start)
    return best, out
