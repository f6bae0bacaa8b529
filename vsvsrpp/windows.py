"""The window planner: which frames each network pass runs and which outputs it keeps.

A recurrent network cannot run over a whole film at once (memory grows with the number of
frames), so the clip is cut into *windows*. The grid is a pure function of the clip length and
the parameters, anchored at frame 0: window ``k`` emits frames ``[k*window, (k+1)*window)`` and
runs ``overlap`` extra frames of temporal context on each side (clipped to the clip), whose outputs
are discarded. Frame ``n`` therefore always comes from the same pass over the same input frames,
whatever order frames are requested in. Knows nothing of VapourSynth or torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """One network pass.

    Attributes:
        index: position in the plan.
        start, end: frames ``[start, end)`` are run through the network.
        emit_start, emit_end: frames ``[emit_start, emit_end)`` are kept (a sub-range of the run).
    """

    index: int
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
    """The fixed grid of windows for a clip.

    Args:
        num_frames: clip length (>= 0).
        window: frames emitted per pass (>= 1). The last window may be shorter.
        overlap: context frames run on each side of the emitted range (>= 0). Each pass runs
            at most ``window + 2 * overlap`` frames; the cost per output frame is about
            ``(window + 2 * overlap) / window`` times that of one unbroken pass.

    Raises:
        ValueError: for a negative length, ``window < 1`` or ``overlap < 0`` (values quoted).
    """

    def __init__(self, num_frames: int, window: int, overlap: int):
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0 frames, got {overlap}")
        self.num_frames = num_frames
        self.window = window
        self.overlap = overlap

    def __len__(self) -> int:
        return -(-self.num_frames // self.window)

    def __getitem__(self, k: int) -> Window:
        if not -len(self) <= k < len(self):
            raise IndexError(f"window {k} out of range for {len(self)} windows")
        k %= len(self)
        emit_start = k * self.window
        emit_end = min(emit_start + self.window, self.num_frames)
        return Window(
            index=k,
            start=max(0, emit_start - self.overlap),
            end=min(self.num_frames, emit_end + self.overlap),
            emit_start=emit_start,
            emit_end=emit_end,
        )

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def index_of(self, n: int) -> int:
        """Index of the window that emits frame ``n``.

        Raises:
            IndexError: if ``n`` is not a frame of the clip.
        """
        if not 0 <= n < self.num_frames:
            raise IndexError(f"frame {n} out of range for a clip of {self.num_frames} frames")
        return n // self.window

    def max_run_length(self) -> int:
        """Most frames any single pass runs (bounds memory)."""
        return max((w.end - w.start for w in self), default=0)
