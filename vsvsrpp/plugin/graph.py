"""The window graph: how the filters serve output frames from network passes over windows.

How a request for output frame ``n`` is served, without ever calling ``get_frame`` inside a
callback:

* A *cut-flag clip* marks frames that start a new shot (from ``_SceneChangePrev`` /
  ``_SceneChangeNext``, else a luma-difference detector). ``std.FrameEval`` receives, through
  ``prop_src``, the flags of every frame within :attr:`WindowPlan.reach` of ``n`` (capped at the
  clip's length; fetched asynchronously by VapourSynth) and plans the window of ``n`` from them.
* If that window is already computed, FrameEval returns a one-off node holding the frame's
  data, which requests no input frame. Otherwise it returns the window's *compute node*: a
  ``std.ModifyFrame`` whose ``clips`` are the window's input frames, so VapourSynth fetches them
  on its own threads before our callback runs.
* The callback runs the network once per window (a lock per window in flight: a thread that
  asks for a window being computed waits for its result). The engine's lock (one per network
  instance) serialises passes, across every filter sharing the network, with the transfer's
  input and output conversions inside it, so at most one window's features and output are in
  memory; results are kept in a small cache. The graph itself touches neither the engine's lock
  nor NumPy: the transfer (:mod:`vsvsrpp.plugin.transfer`) owns the frames' data.
* Each pass reports its progress, in output frames, to :mod:`vsvsrpp.runtime.control` as it
  goes, and stops at its next step once cancellation is asked for there.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import torch
import vapoursynth as vs

from ..runtime import control
from ..runtime.engine import Engine
from ..runtime.windows import Window, WindowPlan
from .colors import Colors, to_rgb
from .transfer import HostTransfer

log = logging.getLogger("vsvsrpp")
core = vs.core

#: Windows whose frames have all been delivered, kept for repeated requests (LRU).
CACHED_WINDOWS = 2
#: Windows with frames still to deliver, kept so that out-of-order requests do not recompute
#: them; beyond this (e.g. a previewer seeking around) the least recently used is dropped.
MAX_PARTIAL_WINDOWS = 4
CUT_PROP = "VSVSRPPSceneCut"


def _shifted(clip: vs.VideoNode, d: int) -> vs.VideoNode:
    """A clip whose frame n is ``clip``'s frame ``n + d``, clamped to the clip's ends."""
    n = clip.num_frames
    if d == 0:
        return clip
    if d < 0:
        return clip[0] * n if -d >= n else clip[0] * -d + clip[: n + d]
    return clip[-1] * n if d >= n else clip[d:] + clip[-1] * d


def cut_flags(rgb: vs.VideoNode, detect: bool, threshold: float, colors: Colors | None = None) -> vs.VideoNode:
    """A clip whose frame n has ``CUT_PROP`` = 1 when frame n starts a new shot.

    The scene-change properties decide where present (``_SceneChangePrev`` on n, or
    ``_SceneChangeNext`` on n-1); otherwise, with ``detect``, the mean absolute luma difference
    between n-1 and n (``PlaneStatsDiff`` on a copy at most 256 px wide) above ``threshold``.

    ``rgb`` is the network's float RGB; or, with ``colors``, the source in its own format (the
    plane transfer's graph), scaled down in that format and then converted to RGB like
    :func:`~vsvsrpp.plugin.colors.to_rgb`, so that no full-size RGB frame is made on the host.
    """
    width = min(rgb.width, 256)
    height = max(2, round(rgb.height * width / rgb.width / 2) * 2)
    small = rgb
    if colors is not None:
        fmt = rgb.format
        w, h = (-(-n // (1 << sub)) << sub for n, sub in ((width, fmt.subsampling_w), (height, fmt.subsampling_h)))
        small = to_rgb(core.resize.Bilinear(rgb, w, h), colors)
    luma = core.resize.Bilinear(small, width, height, format=vs.GRAYS, matrix_s="709")
    prev = luma[0] + luma[:-1]
    stats = core.std.PlaneStats(luma, prev)
    rgb_prev = rgb[0] + rgb[:-1]

    def flag(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        stat, cur, before = f
        out = stat.copy()
        marks = [p for p in (cur.props.get("_SceneChangePrev"), before.props.get("_SceneChangeNext")) if p is not None]
        if marks:
            cut = any(bool(p) for p in marks)
        else:
            cut = detect and stat.props["PlaneStatsDiff"] > threshold
        out.props[CUT_PROP] = int(cut and n > 0)
        return out

    return core.std.ModifyFrame(stats, [stats, rgb, rgb_prev], flag)


class NonFinite(ValueError):
    """A window's input holds NaN or infinite values."""


class WindowGraph:
    """Serves output frames from windows computed at most once each (while cached).

    Args:
        clip: the input: RGBS/RGBH for the host transfer, the source in its own format for the
            plane transfer.
        engine: the network runner; its lock serialises passes.
        window, overlap: the window grid (:class:`WindowPlan`).
        flags: from :func:`cut_flags`, or None to ignore scene cuts.
        error: makes the ``vs.Error`` of the calling filter from a message.
        options: the family's call options, passed to the network for every window.
        transfer: moves a window's frames to the engine and its results into output frames
            (:mod:`vsvsrpp.plugin.transfer`; default the host path).
        output_format: the output frames' format (default the input's).

    Attributes:
        node: the output clip (frame properties not yet copied).
        offsets: the cut-flag probes' offsets from ``n`` (at most ``2 * num_frames - 1``).
        windows_computed: network passes run so far (for tests and diagnostics).
    """

    def __init__(
        self,
        clip: vs.VideoNode,
        engine: Engine,
        window: int,
        overlap: int,
        flags: vs.VideoNode | None = None,
        error: Callable[[str], Exception] = lambda msg: vs.Error(f"BasicVSRPP: {msg}"),
        options: dict | None = None,
        transfer=None,
        output_format: vs.VideoFormat | None = None,
    ):
        self.clip = clip
        self.transfer = transfer if transfer is not None else HostTransfer()
        self.options = options or {}
        self.engine = engine
        self.window = window
        self.overlap = overlap
        self.error = error
        self.lock = threading.Lock()  # guards the dicts and the counter
        self.results: OrderedDict[int, list] = OrderedDict()  # emit_start -> each frame's data, LRU
        self.undelivered: dict[int, set[int]] = {}  # emit_start -> frames not yet emitted
        self.compute_nodes: OrderedDict[Window, vs.VideoNode] = OrderedDict()
        self.computing: dict[int, threading.Lock] = {}  # emit_start -> held while its pass runs
        self.windows_computed = 0
        s = engine.scale
        fmt = output_format or clip.format
        self.blank = core.std.BlankClip(clip, width=clip.width * s, height=clip.height * s, format=fmt.id, keep=True)
        # No cut outside the clip matters: the probes' reach is capped at its length, so any
        # window (up to "the whole clip in one pass") costs time proportional to the clip.
        before, after = (min(r, clip.num_frames - 1) for r in WindowPlan(clip.num_frames, window, overlap).reach)
        if flags is None or clip.num_frames < 2:
            self.offsets: range = range(0)
            self.node = core.std.FrameEval(self.blank, self._select)
        else:
            self.offsets = range(-before, after + 1)
            probes = [_shifted(flags, d) for d in self.offsets]
            self.node = core.std.FrameEval(self.blank, self._select, prop_src=probes)

    def window_of(self, n: int, flags: list[vs.VideoFrame] | None = None) -> Window:
        """Plan the window of ``n`` from the cut flags of the frames within reach."""
        cuts = []
        for d, f in zip(self.offsets, flags or ()):
            if 0 < n + d < self.clip.num_frames and f.props.get(CUT_PROP):
                cuts.append(n + d)
        return WindowPlan(self.clip.num_frames, self.window, self.overlap, cuts).window_of(n)

    def _select(self, n: int, f: vs.VideoFrame | list[vs.VideoFrame] | None = None) -> vs.VideoNode:
        """FrameEval callback: the node that produces output frame ``n``."""
        w = self.window_of(n, [f] if isinstance(f, vs.VideoFrame) else f)
        with self.lock:
            result = self.results.get(w.emit_start)
            if result is not None:
                self.results.move_to_end(w.emit_start)
                self._delivered(w.emit_start, n)
            else:
                node = self.compute_nodes.get(w)
                if node is None:
                    # clip[i] * len is a clip whose every frame is input frame i, so ModifyFrame
                    # fetches the window's frames (asynchronously) whatever n it is asked for.
                    inputs = [self.clip[i] * self.clip.num_frames for i in w.frames]
                    node = core.std.ModifyFrame(
                        self.blank, [self.blank, *inputs], functools.partial(self._compute, window=w)
                    )
                    self.compute_nodes[w] = node
                    while len(self.compute_nodes) > CACHED_WINDOWS + MAX_PARTIAL_WINDOWS:
                        self.compute_nodes.popitem(last=False)
                return node
        # A cached window: a one-off node that holds its own reference to the frame's data, so
        # eviction cannot pull it away and no input frame is requested.
        data = result[n - w.emit_start]
        return core.std.ModifyFrame(self.blank, self.blank, functools.partial(self._emit, data=data))

    def _emit(self, n: int, f: vs.VideoFrame, data) -> vs.VideoFrame:
        out = f.copy()
        self.transfer.write(out, data)
        return out

    def _compute(self, n: int, f: list[vs.VideoFrame], window: Window) -> vs.VideoFrame:
        """ModifyFrame callback with the window's input frames: run the pass once, emit ``n``."""
        w = window
        with self.lock:
            result = self.results.get(w.emit_start)
            if result is None:
                computing = self.computing.setdefault(w.emit_start, threading.Lock())
        if result is None:
            with computing:  # one thread runs the window's pass; the others wait for its result
                with self.lock:
                    result = self.results.get(w.emit_start)
                if result is None:
                    try:
                        result = self._run(w, f[1:])
                    finally:
                        with self.lock:
                            self.computing.pop(w.emit_start, None)
                    with self.lock:
                        self.results[w.emit_start] = result
                        self.undelivered[w.emit_start] = set(range(w.emit_start, w.emit_end))
                        self.windows_computed += 1
                    log.debug("window %d-%d (frames %d-%d) computed", w.emit_start, w.emit_end - 1, w.start, w.end - 1)
        with self.lock:
            self._delivered(w.emit_start, n)
        return self._emit(n, f[0], result[n - w.emit_start])

    def _run(self, w: Window, inputs: list[vs.VideoFrame]) -> list:
        """The window's pass: the transfer makes its input and converts its output while the
        engine's lock is held (one pass at a time on a network, whichever filter asks)."""

        def frames() -> torch.Tensor:
            x = self.transfer.to_tensor(inputs)
            if self.clip.format.sample_type == vs.FLOAT:  # integer samples are always finite
                finite = torch.isfinite(x).flatten(1).all(1)
                if not finite.all():
                    bad = w.start + int((~finite).nonzero()[0])
                    raise NonFinite(f"frame {bad} contains NaN or infinite values; replace them before this filter")
            return x

        emitted = w.emit_end - w.emit_start
        reported = 0.0

        def progress(fraction: float) -> None:  # the window's output frames, step by step
            nonlocal reported
            control.report(fraction * emitted - reported)
            reported = fraction * emitted

        try:
            result = self.engine(frames, to_host=self.transfer.to_host, emit=w.emitted, progress=progress,
                                 finish=self.transfer.to_frames, **self.options)  # fmt: skip
        except NonFinite as e:
            raise self.error(str(e)) from None
        except control.Cancelled:
            raise self.error(f"cancelled while computing frames {w.start}-{w.end - 1}") from None
        except Exception as e:
            raise self.error(f"the network failed on frames {w.start}-{w.end - 1}: {type(e).__name__}: {e}") from e
        control.report(emitted - reported)
        return result

    def _delivered(self, key: int, n: int) -> None:
        """Note that frame ``n`` of window ``key`` was emitted, then evict (caller holds the lock)."""
        self.undelivered.get(key, set()).discard(n)
        finished = [k for k in self.results if not self.undelivered.get(k)]
        partial = [k for k in self.results if self.undelivered.get(k)]
        for k in finished[: max(0, len(finished) - CACHED_WINDOWS)] + partial[: max(0, len(partial) - MAX_PARTIAL_WINDOWS)]:
            del self.results[k]
            self.undelivered.pop(k, None)
