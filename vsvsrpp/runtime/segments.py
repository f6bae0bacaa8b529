"""The segment planner: how a clip is cut into pieces that separate processes can compute.

A *segment* is a run of output frames whose borders are borders of the window grid
(:mod:`vsvsrpp.runtime.windows`): multiples of ``window`` counted from frame 0, scene cuts, or the
clip's ends. Every window emits inside exactly one segment, so a process that requests only a
segment's frames from the filter (over the *whole* clip) runs exactly the passes a single
process would run for them, on the same input frames: the frames it returns are identical to
that single run's, whichever process computes them and in whatever order. Knows nothing of
VapourSynth, torch or Ray.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from .windows import WindowPlan

T = TypeVar("T")


@dataclass(frozen=True)
class Segment:
    """One piece of work.

    Attributes:
        index: position in frame order (0-based); names the segment's file.
        start, end: output frames ``[start, end)`` it emits.
        read_start, read_end: input frames ``[read_start, read_end)`` its passes run (the
            windows' overlap context included; with unknown cuts, an upper bound). The scene-cut
            detector also compares each frame with the one before it.
    """

    index: int
    start: int
    end: int
    read_start: int
    read_end: int

    @property
    def frames(self) -> int:
        """Output frames it emits."""
        return self.end - self.start


def plan_segments(num_frames: int, window: int, overlap: int, segment_frames: int, cuts: Iterable[int] = ()) -> list[Segment]:
    """Cut a clip into segments of at most about ``segment_frames`` output frames.

    Borders are taken from the window grid (multiples of ``window``) and from ``cuts``: each
    segment ends at the last border within ``segment_frames`` of its start, or at the first
    border after it when there is none (so a segment is never shorter than needed to reach a
    border, and at most ``max(segment_frames, window)`` long).

    Args:
        num_frames: clip length (>= 0).
        window, overlap: the window grid the filter runs (:class:`WindowPlan`).
        segment_frames: target output frames per segment (>= 1); rounded down to whole windows.
        cuts: frames that start a new shot, if known (they are window borders too; without
            them the read ranges are upper bounds and the segments are the same).

    Returns:
        The segments in frame order; they cover ``[0, num_frames)`` without gaps or overlaps.

    Raises:
        ValueError: for ``segment_frames < 1`` or the arguments :class:`WindowPlan` refuses.
    """
    if segment_frames < 1:
        raise ValueError(f"segment_frames must be >= 1, got {segment_frames}")
    plan = WindowPlan(num_frames, window, overlap, cuts)
    borders = sorted({*range(window, num_frames, window), *plan.cuts, num_frames})
    windows = plan.windows()
    segments: list[Segment] = []
    start, k = 0, 0
    while start < num_frames:
        i = bisect.bisect_right(borders, start + segment_frames) - 1
        end = borders[i] if i >= 0 and borders[i] > start else borders[bisect.bisect_right(borders, start)]
        first = k
        while k < len(windows) and windows[k].emit_end <= end:
            k += 1
        runs = windows[first:k]  # the windows emitting in [start, end): a border ends each one
        segments.append(Segment(len(segments), start, end, min(w.start for w in runs), max(w.end for w in runs)))
        start = end
    return segments


def longest_first(items: Iterable[T], segment: Callable[[T], Segment] = lambda item: item) -> list[T]:
    """Scheduling order: the longest segments first (ties in their order in ``items``), so that
    the last tasks to finish are short ones. ``segment`` gives an item's segment (for items
    that carry more, e.g. ``(file, segment)`` pairs of a batch)."""
    return sorted(items, key=lambda item: -segment(item).frames)
