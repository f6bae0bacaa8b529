"""Memory estimates and the automatic choice of window and tile size (pure functions).

The recurrent networks keep, for every frame of a pass, the per-frame features of each
propagation branch (BasicVSR++: five lists of ``mid_channels x H x W`` -- spatial features plus
four branches; BasicVSR: two) plus the flows between neighbours (``2 x H x W`` float32 each way).
The transient peak of one step (a residual block, the reconstruction of one frame at 4x) comes on
top. :func:`estimate_bytes` adds these up; :func:`plan` picks the longest window (and, when even
a short window does not fit, the largest spatial tile) that fits a memory budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Fraction of the free memory a pass may use (the rest covers the allocator's slack, cached
#: output windows and everything else in the process).
BUDGET_FRACTION = 0.7
#: Shortest window the planner chooses before it resorts to spatial tiles.
MIN_WINDOW = 6
#: Smallest tile side (LR pixels) the planner or the OOM back-off goes down to.
MIN_TILE = 64


@dataclass(frozen=True)
class NetworkShape:
    """What memory use depends on.

    Attributes:
        mid_channels: feature channels.
        feature_lists: per-frame feature maps kept through a pass (5 for BasicVSR++, 2 for
            BasicVSR/RealBasicVSR).
        feature_stride: input pixels per feature pixel along each axis (4 for the 1x models).
        scale: output size / input size.
    """

    mid_channels: int
    feature_lists: int
    feature_stride: int
    scale: int

    @classmethod
    def of(cls, model) -> NetworkShape:
        """Read the shape off a network built by :func:`vsvsrpp.loading.build_model`."""
        cfg = model.config
        if model.arch == "basicvsrpp":
            return cls(cfg.mid_channels, 5, 1 if cfg.is_low_res_input else 4, model.scale)
        return cls(cfg.mid_channels, 2, 1, model.scale)


def estimate_bytes(shape: NetworkShape, frames: int, height: int, width: int, dtype_bytes: int = 4) -> int:
    """Estimated peak memory of one pass, in bytes.

    Args:
        shape: the network's :class:`NetworkShape`.
        frames: frames in the pass (window + overlaps).
        height, width: input frame size in pixels (after padding).
        dtype_bytes: bytes per feature value (4 for float32, 2 for float16/bfloat16).

    Returns:
        features kept for every frame + flows + input and output frames + one step's transients.
    """
    fh, fw = math.ceil(height / shape.feature_stride), math.ceil(width / shape.feature_stride)
    feat = shape.mid_channels * fh * fw * dtype_bytes
    kept = frames * shape.feature_lists * feat
    flows = 2 * max(frames - 1, 0) * 2 * fh * fw * 4
    frames_io = frames * 3 * height * width * 4 * (1 + shape.scale * shape.scale)
    # one step: a backbone reading up to 5 feature maps plus its activations, or the
    # reconstruction of one frame, whose 64-channel maps are scale^2 larger
    step = max(12 * feat, 3 * 64 * fh * fw * shape.scale * shape.scale * dtype_bytes)
    return kept + flows + frames_io + step


@dataclass(frozen=True)
class Plan:
    """Window and tile chosen for a memory budget (``tile`` None: whole frames)."""

    window: int
    tile: int | None
    estimate: int


def plan(
    shape: NetworkShape,
    height: int,
    width: int,
    free_bytes: int,
    overlap: int,
    dtype_bytes: int = 4,
    max_window: int = 24,
) -> Plan:
    """Choose the longest window (up to ``max_window``) whose pass fits ``BUDGET_FRACTION`` of
    ``free_bytes``; if not even :data:`MIN_WINDOW` frames fit, the largest square tile side (a
    multiple of 16, at least :data:`MIN_TILE`) with which :data:`MIN_WINDOW` frames fit.

    Raises:
        MemoryError: when not even a :data:`MIN_TILE` tile of :data:`MIN_WINDOW` frames fits
            (the message gives the estimate and the budget).
    """
    budget = int(free_bytes * BUDGET_FRACTION)
    for window in range(max_window, MIN_WINDOW - 1, -1):
        need = estimate_bytes(shape, window + 2 * overlap, height, width, dtype_bytes)
        if need <= budget:
            return Plan(window, None, need)
    frames = MIN_WINDOW + 2 * overlap
    side = (max(height, width) // 16) * 16
    while side >= MIN_TILE:
        need = estimate_bytes(shape, frames, min(side, height), min(side, width), dtype_bytes)
        if need <= budget:
            return Plan(MIN_WINDOW, side, need)
        side -= 16
    need = estimate_bytes(shape, frames, min(MIN_TILE, height), min(MIN_TILE, width), dtype_bytes)
    raise MemoryError(
        f"a pass of {frames} frames in {MIN_TILE}x{MIN_TILE} tiles needs about {need / 2**20:.0f} MiB, "
        f"more than the {budget / 2**20:.0f} MiB available"
    )
