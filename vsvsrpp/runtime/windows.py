"""The window planner: which frames each network pass runs and which outputs it keeps; and
how independent tiles split a frame (:func:`tile_layout`).

A recurrent network cannot run over a whole film at once (memory grows with the number of
frames), so the clip is cut into *windows*. Knows nothing of VapourSynth or torch.

The rules, for ``window`` W, ``overlap`` O and a set of scene cuts (a cut at ``c`` means frame
``c`` starts a new shot):

1. The emitted ranges are the cells ``[k*W, (k+1)*W)`` of a grid anchored at frame 0, split at
   every cut. Frame ``n`` therefore always comes from the same pass over the same input frames,
   whatever order frames are requested in.
2. A pass runs up to O extra context frames on each side of its emitted range, never across a
   cut (features of one shot never propagate into another); those outputs are discarded.
3. A window that starts a shot (at frame 0 or at a cut) runs ``W + O`` frames from its start
   (up to the shot's end), even when its emitted range is shorter: the first frames of a shot
   are then exactly what the shot alone would give.

The window of frame ``n`` depends only on the cuts in ``[n - W - O, n + W + O]``
(:attr:`WindowPlan.reach`), so a caller that sees only the cuts near ``n`` plans it correctly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: Output frames per pass when the memory planner is not asked (the planner's upper bound too).
DEFAULT_WINDOW = 24
#: Context frames run on each side of a window and discarded.
DEFAULT_OVERLAP = 4
#: Smallest spatial tile side (LR pixels) the memory planner or the OOM back-off goes down to
#: (:mod:`vsvsrpp.runtime.memory`); here, beside the other grid sizes, as plain data.
MIN_TILE = 64
#: Smallest step-wise tile side (LR pixels; see ``exact_tiles``) the planner, the OOM back-off and
#: the ``tile`` argument go down to: such tiles run on whole-frame features, so any side works,
#: but below this the recomputation of their halos dominates.
MIN_STEP_TILE = 16


@dataclass(frozen=True)
class TileSpan:
    """One tile along one axis (input pixels).

    Attributes:
        start, end: the pixels the tile's pass runs on: its core plus up to ``margin`` of
            context on each side (clamped to the frame, aligned to the network's stride).
        core_start, core_end: the pixels it owns; the cores of an axis partition it.
    """

    start: int
    end: int
    core_start: int
    core_end: int


def tile_layout(length: int, tile: int, margin: int, minimum: int = 1, align: int = 1) -> list[TileSpan]:
    """Split ``[0, length)`` into ``ceil(length / tile)`` cores of near-equal size and give each
    ``margin`` pixels of context on each side.

    Args:
        length: frame size along the axis (input pixels; a multiple of ``align``).
        tile: the largest core (input pixels). A core is never made smaller than
            ``minimum - 2 * margin``: a span that would be widened to ``minimum`` anyway gains
            nothing from a smaller core but repeats its neighbours' work.
        margin: context pixels on each side of a core.
        minimum: the shortest span a pass may run on (the network's size requirement); spans
            are widened to it where the frame allows.
        align: span and core boundaries are multiples of this (the network's size multiple).

    Returns:
        The spans in order; a single span ``[0, length)`` when ``tile >= length``.
    """
    n = 1 if length <= minimum else max(1, math.ceil(length / max(tile, minimum - 2 * margin, 1)))
    cores = sorted({min(length, round(k * length / n / align) * align) for k in range(n + 1)} | {0, length})
    spans = []
    for c0, c1 in zip(cores, cores[1:]):
        a = max(0, (c0 - margin) // align * align)
        b = min(length, -(-(c1 + margin) // align) * align)
        if b - a < minimum:
            b = min(length, a + minimum)
            a = max(0, b - minimum)
        spans.append(TileSpan(a, b, c0, c1))
    return spans


@dataclass(frozen=True)
class Window:
    """One network pass.

    Attributes:
        start, end: frames ``[start, end)`` are run through the network.
        emit_start, emit_end: frames ``[emit_start, emit_end)`` are kept (a sub-range of the run).
    """

    start: int
    end: int
    emit_start: int
    emit_end: int

    @property
    def frames(self) -> range:
        """Input frame numbers of the pass."""
        return range(self.start, self.end)

    @property
    def emitted(self) -> slice:
        """Positions of the kept outputs within the pass's output."""
        return slice(self.emit_start - self.start, self.emit_end - self.start)


class WindowPlan:
    """The windows of a clip.

    Args:
        num_frames: clip length (>= 0).
        window: frames emitted per pass at most (>= 1).
        overlap: context frames run on each side of the emitted range (>= 0). Each pass runs at
            most ``window + 2 * overlap`` frames.
        cuts: frames that start a new shot; values outside ``1 .. num_frames-1`` are ignored.

    Raises:
        ValueError: for a negative length, ``window < 1`` or ``overlap < 0`` (values quoted).
    """

    def __init__(self, num_frames: int, window: int, overlap: int, cuts: Iterable[int] = ()):
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0 frames, got {overlap}")
        self.num_frames = num_frames
        self.window = window
        self.overlap = overlap
        self.cuts = sorted({int(c) for c in cuts if 0 < c < num_frames})
        self._windows: list[Window] | None = None

    @property
    def reach(self) -> tuple[int, int]:
        """``(before, after)``: the window of frame n depends only on cuts in
        ``[n - before, n + after]``."""
        return self.window + self.overlap, self.window + self.overlap

    def _last_cut_at_or_before(self, n: int) -> int:
        i = bisect.bisect_right(self.cuts, n)
        return self.cuts[i - 1] if i else 0

    def _first_cut_after(self, n: int) -> int:
        i = bisect.bisect_right(self.cuts, n)
        return self.cuts[i] if i < len(self.cuts) else self.num_frames

    def window_of(self, n: int) -> Window:
        """The window that emits frame ``n``.

        Raises:
            IndexError: if ``n`` is not a frame of the clip.
        """
        if not 0 <= n < self.num_frames:
            raise IndexError(f"frame {n} out of range for a clip of {self.num_frames} frames")
        cell = (n // self.window) * self.window
        shot_start = self._last_cut_at_or_before(n)
        shot_end = self._first_cut_after(n)
        emit_start = max(cell, shot_start)
        emit_end = min(cell + self.window, shot_end)
        if emit_start == shot_start:  # starts a shot: run as the shot alone would (rule 3)
            return Window(emit_start, min(emit_start + self.window + self.overlap, shot_end), emit_start, emit_end)
        start = max(emit_start - self.overlap, shot_start)
        return Window(start, min(emit_end + self.overlap, shot_end), emit_start, emit_end)

    def windows(self) -> list[Window]:
        """All windows in frame order."""
        if self._windows is None:
            out, n = [], 0
            while n < self.num_frames:
                out.append(self.window_of(n))
                n = out[-1].emit_end
            self._windows = out
        return self._windows

    def __len__(self) -> int:
        return len(self.windows())

    def __getitem__(self, k: int) -> Window:
        return self.windows()[k]

    def __iter__(self) -> Iterator[Window]:
        return iter(self.windows())

    def max_run_length(self) -> int:
        """Most frames any single pass runs (bounds memory)."""
        return max((w.end - w.start for w in self), default=0)
