"""*Model only*: one forward of the network, as the engine prepares it, over the whole clip.

Also the clip every measurement runs: :func:`synthetic_frames`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ...hub.checkpoint import load_descriptor
from ...runtime.device import resolve_device
from ...runtime.engine import Engine
from .programs.forward_timing import best_forward
from .report import Timing


def synthetic_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture panning 2 px per frame (speed does not depend on the picture).

    Returns:
        ``(frames, 3, height, width)`` float32 in [0, 1]; frame ``i + 1`` is frame ``i`` moved
        left by two pixels. Deterministic for a ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    rows = -(-height // 4) + 2
    cols = -(-(width + 2 * frames) // 4) + 2
    texture = torch.rand(1, 3, rows, cols, generator=g)
    big = torch.nn.functional.interpolate(texture, scale_factor=4, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    out = torch.stack([big[:, 4 : 4 + height, 4 + 2 * i : 4 + 2 * i + width] for i in range(frames)])
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


def prepare_engine(weights: str | os.PathLike, device: str | torch.device | None, precision: str) -> Engine:
    """A fresh network from ``weights`` in an :class:`~vsvsrpp.runtime.engine.Engine` for
    ``precision``: reduced-precision convolutions, the family's ``fp32_modules`` (flow) in float32.

    Raises:
        ValueError: for a bad device or precision, or one the family does not support.
        FileNotFoundError, vsvsrpp.arch.CheckpointError: for a missing or unloadable file.
    """
    return Engine(load_descriptor(weights), device, precision=precision)


def time_model_only(
    weights: str | os.PathLike,
    frames: np.ndarray,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    repeat: int = 1,
    options: Mapping[str, Any] | None = None,
) -> Timing:
    """Time one forward of the network over all of ``frames``.

    The network is read from ``weights`` and prepared by :func:`prepare_engine`; the input is
    on the device before the clock starts; the protocol (warm-up, fastest of ``repeat``, CUDA
    synchronisation) is :func:`~vsvsrpp.tools.bench.programs.forward_timing.best_forward`.

    Args:
        weights: checkpoint of any family.
        frames: ``(t, 3, h, w)`` float32 RGB in [0, 1].
        device, precision: where and how to run it.
        repeat: timed forwards (>= 1).
        options: the family's call options for every forward.

    Returns:
        The fastest forward's :class:`~vsvsrpp.tools.bench.report.Timing` for ``t`` frames.

    Raises:
        ValueError, FileNotFoundError, CheckpointError: see :func:`prepare_engine`.
        RuntimeError: if the output does not have the network's scale (or torch fails, e.g.
            an unsupported dtype on this device); torch.OutOfMemoryError on CUDA.
    """
    device = resolve_device(device)
    engine = prepare_engine(weights, device, precision)
    x = torch.from_numpy(frames)[None].to(device, engine.dtype)
    seconds, out = best_forward(engine.model, x, repeat, **(options or {}))
    expected = (frames.shape[-2] * engine.scale, frames.shape[-1] * engine.scale)
    if tuple(out.shape[-2:]) != expected:
        raise RuntimeError(f"unexpected output shape {tuple(out.shape)}, expected (..., {expected[0]}, {expected[1]})")
    del engine, x, out
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Timing(seconds, frames.shape[0])
