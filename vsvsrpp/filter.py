"""The VapourSynth filter ``BasicVSRPP``: argument validation and the wiring of planner, frame
transfer and engine.

How a request is served, without ever calling ``get_frame`` inside a callback:

* ``std.FrameEval`` maps output frame ``n`` to its window ``k`` (fixed grid, see
  :mod:`vsvsrpp.windows`). If ``k`` is already computed, it returns a node that copies the cached
  result and requests no input frames. Otherwise it returns the window's *compute node*: a
  ``std.ModifyFrame`` whose ``clips`` are the window's input frames, so VapourSynth fetches
  them asynchronously on its own threads before our callback runs.
* The callback runs the network on the window once (a lock serialises passes, so at most one
  window's features are in memory) and keeps the emitted outputs in a small LRU cache.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from . import catalogue, weights
from .engine import Engine, default_device
from .formats import source_matrix
from .frames import frames_to_tensor, write_frame
from .loading import CheckpointError, build_model, read_state_dict
from .windows import WindowPlan

log = logging.getLogger("vsvsrpp")
core = vs.core

DEFAULT_WINDOW = 24
DEFAULT_OVERLAP = 4
#: Windows whose frames have all been delivered, kept for repeated requests (LRU).
CACHED_WINDOWS = 2
#: Windows with frames still to deliver, kept so that out-of-order requests do not recompute
#: them; beyond this (e.g. a previewer seeking around) the least recently used is dropped.
MAX_PARTIAL_WINDOWS = 4


def _error(msg: str) -> vs.Error:
    return vs.Error(f"BasicVSRPP: {msg}")


def _conversion_hint(clip: vs.VideoNode) -> str:
    """The ``core.resize`` call that turns ``clip`` into RGBS, for error messages."""
    if clip.format.color_family != vs.YUV:
        return "clip = core.resize.Point(clip, format=vs.RGBS)"
    try:
        props = clip.get_frame(0).props
    except vs.Error:
        props = {}
    matrix, guessed = source_matrix(props, clip.width, clip.height)
    note = " (the clip does not say its matrix; 1 = BT.709 for HD, 6 = BT.601 for SD)" if guessed else ""
    return f"clip = core.resize.Bicubic(clip, format=vs.RGBS, matrix_in={matrix}){note}"


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str) -> Engine:
    return Engine(build_model(read_state_dict(path)), device)


def _resolve_checkpoint(model: str, weights_path: str | Path | None) -> Path:
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise _error(f"weights file not found: {path}")
        return path
    if model not in catalogue.MODELS:
        raise _error(
            f"unknown model {model!r}. Available: {', '.join(catalogue.MODELS)}; "
            "or pass a checkpoint file with weights=PATH"
        )
    try:
        return weights.fetch(catalogue.MODELS[model])
    except weights.DownloadError as e:
        raise _error(f"weights for {model!r} are missing and could not be downloaded: {e}") from e


def _positive_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise _error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class _WindowedNetwork:
    """Serves output frames from windows computed at most once each (while cached).

    Attributes:
        node: the output clip (without the source's frame properties).
        windows_computed: network passes run so far (for tests and diagnostics).
    """

    def __init__(self, clip: vs.VideoNode, engine: Engine, plan: WindowPlan):
        self.clip = clip
        self.engine = engine
        self.plan = plan
        self.lock = threading.Lock()  # guards the dicts and the counter
        self.compute_lock = threading.Lock()  # one network pass at a time
        self.results: OrderedDict[int, np.ndarray] = OrderedDict()  # LRU order
        self.undelivered: dict[int, set[int]] = {}  # window -> frames not yet emitted
        self.compute_nodes: OrderedDict[int, vs.VideoNode] = OrderedDict()
        self.windows_computed = 0
        s = engine.scale
        self.blank = core.std.BlankClip(clip, width=clip.width * s, height=clip.height * s, keep=True)
        self.node = core.std.FrameEval(self.blank, self._select)

    def _select(self, n: int) -> vs.VideoNode:
        """FrameEval callback: the node that produces output frame ``n``."""
        w = self.plan[self.plan.index_of(n)]
        with self.lock:
            result = self.results.get(w.index)
            if result is not None:
                self.results.move_to_end(w.index)
                self._delivered(w.index, n)
            else:
                node = self.compute_nodes.get(w.index)
                if node is None:
                    # clip[i] * len is a clip whose every frame is input frame i, so ModifyFrame
                    # fetches the window's frames (asynchronously) whatever n it is asked for.
                    inputs = [self.clip[i] * self.clip.num_frames for i in w.frames]
                    node = core.std.ModifyFrame(self.blank, [self.blank, *inputs], self._compute)
                    self.compute_nodes[w.index] = node
                    while len(self.compute_nodes) > CACHED_WINDOWS + MAX_PARTIAL_WINDOWS:
                        self.compute_nodes.popitem(last=False)
                return node
        # A cached window: a one-off node that holds its own reference to the frame's data, so
        # eviction cannot pull it away and no input frame is requested.
        data = result[n - w.emit_start]
        return core.std.ModifyFrame(self.blank, self.blank, functools.partial(self._emit, data=data))

    @staticmethod
    def _emit(n: int, f: vs.VideoFrame, data: np.ndarray) -> vs.VideoFrame:
        out = f.copy()
        write_frame(out, data)
        return out

    def _compute(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        """ModifyFrame callback with the window's input frames: run the pass once, emit ``n``."""
        w = self.plan[self.plan.index_of(n)]
        with self.lock:
            result = self.results.get(w.index)
        if result is None:
            with self.compute_lock:
                with self.lock:  # another thread may have computed it while we waited
                    result = self.results.get(w.index)
                if result is None:
                    try:
                        result = self.engine(frames_to_tensor(f[1:]))[w.emitted].numpy()
                    except Exception as e:
                        raise _error(f"the network failed on frames {w.start}-{w.end - 1}: {type(e).__name__}: {e}") from e
                    with self.lock:
                        self.results[w.index] = result
                        self.undelivered[w.index] = set(range(w.emit_start, w.emit_end))
                        self.windows_computed += 1
                    log.debug("window %d (frames %d-%d) computed", w.index, w.start, w.end - 1)
        with self.lock:
            self._delivered(w.index, n)
        return self._emit(n, f[0], result[n - w.emit_start])

    def _delivered(self, k: int, n: int) -> None:
        """Note that frame ``n`` of window ``k`` was emitted, then evict (caller holds the lock)."""
        self.undelivered.get(k, set()).discard(n)
        finished = [i for i in self.results if not self.undelivered.get(i)]
        partial = [i for i in self.results if self.undelivered.get(i)]
        for i in finished[: max(0, len(finished) - CACHED_WINDOWS)] + partial[: max(0, len(partial) - MAX_PARTIAL_WINDOWS)]:
            del self.results[i]
            self.undelivered.pop(i, None)


def BasicVSRPP(
    clip: vs.VideoNode,
    model: str = catalogue.DEFAULT_MODEL,
    *,
    weights: str | Path | None = None,
    device: str | None = None,
    window: int = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
) -> vs.VideoNode:
    """Super-resolve (or restore) a clip with BasicVSR++.

    Args:
        clip: RGBS or RGBH clip of constant format and size, RGB in [0, 1]. Convert YUV first,
            e.g. ``core.resize.Bicubic(clip, format=vs.RGBS, matrix_in_s="709")``.
        model: catalogue name (see ``vsvsrpp.catalogue.MODELS``); its checkpoint is downloaded
            and verified on first use. Ignored when ``weights`` is given.
        weights: path of a BasicVSR++ checkpoint (official or custom; the architecture is read
            from the state dict).
        device: torch device, e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``; default CUDA when
            available, else CPU.
        window: output frames per network pass (>= 1). Memory grows linearly with
            ``window + 2 * overlap``; longer windows give propagation more frames.
        overlap: context frames run on each side of a window and discarded (>= 0), so frames
            at window boundaries still see neighbours on both sides.

    Returns:
        A clip of the same format, length, frame rate and frame properties, ``scale`` times
        wider and taller (4x for super-resolution models, 1x for restoration models), values
        clamped to [0, 1]. Frame ``n`` is identical whatever the request order or thread count;
        with ``window >= clip.num_frames`` it equals one network pass over the whole clip.

    Raises:
        vapoursynth.Error: ``"BasicVSRPP: ..."`` for an unsupported, variable or empty clip, an
            unknown model, missing weights, an unreadable checkpoint, or bad window/overlap.
    """
    if not isinstance(clip, vs.VideoNode):
        raise _error(f"clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise _error("variable format or frame size is not supported; make them constant first (e.g. core.resize.Bicubic(clip, width, height, format=vs.RGBS))")
    if clip.format.id not in (vs.RGBS, vs.RGBH):
        raise _error(f"input must be RGBS or RGBH, got {clip.format.name}. Convert it first: {_conversion_hint(clip)}")
    if clip.num_frames < 1:
        raise _error("the clip has no frames")
    window = _positive_int(window, "window", 1)
    overlap = _positive_int(overlap, "overlap", 0)
    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise _error(f"invalid device {device!r}: {e}") from e
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise _error(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    path = _resolve_checkpoint(model, weights)
    try:
        engine = _load(str(path.resolve()), str(device) if device is not None else str(default_device()))
    except (CheckpointError, FileNotFoundError) as e:
        raise _error(f"cannot load {path}: {e}") from e
    runner = _WindowedNetwork(clip, engine, WindowPlan(clip.num_frames, window, overlap))
    return core.std.CopyFrameProps(runner.node, clip)
