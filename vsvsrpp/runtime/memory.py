"""Memory estimates and the automatic choice of window and tile size (pure functions).

The recurrent networks keep, for every frame of a pass, the per-frame features of each
propagation branch (BasicVSR++: five lists of ``mid_channels x H x W`` -- spatial features plus
four branches; BasicVSR: two) plus the flows between neighbours (``2 x H x W`` float32 each way).
The transient peak of one step (a residual block, the reconstruction of one frame at 4x) comes on
top. :func:`estimate_bytes` adds these up for a network's
:class:`~vsvsrpp.arch.descriptor.MemoryShape` (which its descriptor gives); :func:`plan` picks the
longest window (and, when even a short window does not fit, the largest spatial tile) that fits
a memory budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..arch import MemoryShape
from .windows import DEFAULT_WINDOW

#: Fraction of the free memory a pass may use (the rest covers the allocator's slack, cached
#: output windows and everything else in the process).
BUDGET_FRACTION = 0.7
#: Shortest window the planner chooses before it resorts to spatial tiles.
MIN_WINDOW = 6
#: Smallest tile side (LR pixels) the planner or the OOM back-off goes down to.
MIN_TILE = 64


def estimate_bytes(shape: MemoryShape, frames: int, height: int, width: int, dtype_bytes: int = 4) -> int:
    """Estimated peak memory of one pass, in bytes.

    Args:
        shape: the network's :class:`~vsvsrpp.arch.descriptor.MemoryShape`.
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
    shape: MemoryShape,
    height: int,
    width: int,
    free_bytes: int,
    overlap: int,
    dtype_bytes: int = 4,
    max_window: int = DEFAULT_WINDOW,
    num_frames: int | None = None,
) -> Plan:
    """Choose the longest window (up to ``max_window``) whose pass fits ``BUDGET_FRACTION`` of
    ``free_bytes``; if not even :data:`MIN_WINDOW` frames fit, the largest square tile side (a
    multiple of 16, at least :data:`MIN_TILE`) with which :data:`MIN_WINDOW` frames fit.

    Args:
        shape: the network's memory shape.
        height, width: input frame size in pixels (after padding).
        free_bytes: memory available on the device.
        overlap: context frames on each side of a window.
        dtype_bytes: bytes per feature value.
        max_window: the longest window considered.
        num_frames: the clip's length, when known: no pass runs more frames than the clip has.

    Raises:
        MemoryError: when not even a :data:`MIN_TILE` tile of :data:`MIN_WINDOW` frames fits
            (the message gives the frames, the estimate and the budget).
    """
    budget = int(free_bytes * BUDGET_FRACTION)

    def run_length(window: int) -> int:
        frames = window + 2 * overlap
        return frames if num_frames is None else max(1, min(frames, num_frames))

    for window in range(max_window, MIN_WINDOW - 1, -1):
        need = estimate_bytes(shape, run_length(window), height, width, dtype_bytes)
        if need <= budget:
            return Plan(window, None, need)
    frames = run_length(MIN_WINDOW)
    side = (max(height, width) // 16) * 16
    while side >= MIN_TILE:
        need = estimate_bytes(shape, frames, min(side, height), min(side, width), dtype_bytes)
        if need <= budget:
            return Plan(MIN_WINDOW, side, need)
        side -= 16
    need = estimate_bytes(shape, frames, min(MIN_TILE, height), min(MIN_TILE, width), dtype_bytes)
    raise MemoryError(
        f"a pass of {frames} frames ({MIN_WINDOW} + 2 x overlap {overlap}) in {MIN_TILE}x{MIN_TILE} tiles needs "
        f"about {need / 2**20:.0f} MiB, more than the {budget / 2**20:.0f} MiB available"
    )
