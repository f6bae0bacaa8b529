"""The VapourSynth filter ``BasicVSRPP``: argument validation and the wiring of planner, formats,
frame transfer and engine.

How a request for output frame ``n`` is served, without ever calling ``get_frame`` inside a
callback:

* A *cut-flag clip* marks frames that start a new shot (from ``_SceneChangePrev`` /
  ``_SceneChangeNext``, else a luma-difference detector). ``std.FrameEval`` receives, through
  ``prop_src``, the flags of every frame within :attr:`WindowPlan.reach` of ``n`` (fetched
  asynchronously by VapourSynth) and plans the window of ``n`` from them.
* If that window is already computed, FrameEval returns a one-off node holding the frame's
  data, which requests no input frame. Otherwise it returns the window's *compute node*: a
  ``std.ModifyFrame`` whose ``clips`` are the window's input frames, so VapourSynth fetches them
  on its own threads before our callback runs.
* The callback runs the network once per window (a lock serialises passes, so at most one
  window's features are in memory) and keeps results in a small cache.
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
from .basicvsr import MAX_CLEANING_PASSES
from . import memory
from .engine import PRECISIONS, Engine, default_device, resolve_precision
from .formats import DITHER_TYPES, ClipColors, from_rgb, to_rgb
from .frames import frames_to_tensor, write_frame
from .loading import CheckpointError, build_model, read_state_dict
from .windows import Window, WindowPlan

log = logging.getLogger("vsvsrpp")
core = vs.core

DEFAULT_WINDOW = 24
DEFAULT_OVERLAP = 4
#: Mean absolute difference of consecutive frames' luma (0..1, on a copy at most 256 px wide)
#: above which the detector declares a scene cut; the value misc.SCDetect uses.
DEFAULT_SCENE_THRESHOLD = 0.1
#: Windows whose frames have all been delivered, kept for repeated requests (LRU).
CACHED_WINDOWS = 2
#: Windows with frames still to deliver, kept so that out-of-order requests do not recompute
#: them; beyond this (e.g. a previewer seeking around) the least recently used is dropped.
MAX_PARTIAL_WINDOWS = 4
CUT_PROP = "VSVSRPPSceneCut"


class _Errors:
    """Builds ``vs.Error("<Filter>: ...")`` for the filter entry point in use."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, msg: str) -> vs.Error:
        return vs.Error(f"{self.name}: {msg}")


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str, precision: str = "fp32", tile: int | None = None) -> Engine:
    return Engine(build_model(read_state_dict(path)), device, precision, tile)


def _free_memory(device: torch.device) -> int:
    """Free bytes on ``device``: CUDA's free memory, or the system's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 8 << 30  # not Linux: assume a modest machine


def _resolve_checkpoint(model: str, weights_path: str | Path | None, error: _Errors) -> Path:
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise error(f"weights file not found: {path}")
        return path
    if model not in catalogue.MODELS:
        raise error(
            f"unknown model {model!r}. Available: {', '.join(catalogue.MODELS)}; "
            "or pass a checkpoint file with weights=PATH"
        )
    try:
        return weights.fetch(catalogue.MODELS[model])
    except weights.DownloadError as e:
        raise error(f"weights for {model!r} are missing and could not be downloaded: {e}") from e


def _int_arg(value, name: str, minimum: int, error: _Errors) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _shifted(clip: vs.VideoNode, d: int) -> vs.VideoNode:
    """A clip whose frame n is ``clip``'s frame ``n + d``, clamped to the clip's ends."""
    n = clip.num_frames
    if d == 0:
        return clip
    if d < 0:
        return clip[0] * n if -d >= n else clip[0] * -d + clip[: n + d]
    return clip[-1] * n if d >= n else clip[d:] + clip[-1] * d


def _cut_flags(rgb: vs.VideoNode, detect: bool, threshold: float) -> vs.VideoNode:
    """A clip whose frame n has ``CUT_PROP`` = 1 when frame n starts a new shot.

    The scene-change properties decide where present (``_SceneChangePrev`` on n, or
    ``_SceneChangeNext`` on n-1); otherwise, with ``detect``, the mean absolute luma difference
    between n-1 and n (``PlaneStatsDiff`` on a copy at most 256 px wide) above ``threshold``.
    """
    width = min(rgb.width, 256)
    height = max(2, round(rgb.height * width / rgb.width / 2) * 2)
    luma = core.resize.Bilinear(rgb, width, height, format=vs.GRAYS, matrix_s="709")
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


class _WindowedNetwork:
    """Serves output frames from windows computed at most once each (while cached).

    Args:
        clip: RGBS/RGBH input.
        engine: the network runner.
        window, overlap: the window grid (:class:`WindowPlan`).
        cut_flags: from :func:`_cut_flags`, or None to ignore scene cuts.
        error: error builder of the calling filter.
        model_kwargs: passed to the network for every window.

    Attributes:
        node: the output clip (frame properties not yet copied).
        windows_computed: network passes run so far (for tests and diagnostics).
    """

    def __init__(self, clip, engine: Engine, window: int, overlap: int, cut_flags=None, error=_Errors("BasicVSRPP"), model_kwargs=None):
        self.clip = clip
        self.model_kwargs = model_kwargs or {}
        self.engine = engine
        self.window = window
        self.overlap = overlap
        self.error = error
        self.lock = threading.Lock()  # guards the dicts and the counter
        self.compute_lock = threading.Lock()  # one network pass at a time
        self.results: OrderedDict[int, np.ndarray] = OrderedDict()  # emit_start -> outputs, LRU
        self.undelivered: dict[int, set[int]] = {}  # emit_start -> frames not yet emitted
        self.compute_nodes: OrderedDict[Window, vs.VideoNode] = OrderedDict()
        self.windows_computed = 0
        s = engine.scale
        self.blank = core.std.BlankClip(clip, width=clip.width * s, height=clip.height * s, keep=True)
        before, after = WindowPlan(clip.num_frames, window, overlap).reach
        if cut_flags is None or clip.num_frames < 2:
            self.offsets: range = range(0)
            self.node = core.std.FrameEval(self.blank, self._select)
        else:
            self.offsets = range(-before, after + 1)
            probes = [_shifted(cut_flags, d) for d in self.offsets]
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

    @staticmethod
    def _emit(n: int, f: vs.VideoFrame, data: np.ndarray) -> vs.VideoFrame:
        out = f.copy()
        write_frame(out, data)
        return out

    def _compute(self, n: int, f: list[vs.VideoFrame], window: Window) -> vs.VideoFrame:
        """ModifyFrame callback with the window's input frames: run the pass once, emit ``n``."""
        w = window
        with self.lock:
            result = self.results.get(w.emit_start)
        if result is None:
            with self.compute_lock:
                with self.lock:  # another thread may have computed it while we waited
                    result = self.results.get(w.emit_start)
                if result is None:
                    result = self._run(w, frames_to_tensor(f[1:]))
                    with self.lock:
                        self.results[w.emit_start] = result
                        self.undelivered[w.emit_start] = set(range(w.emit_start, w.emit_end))
                        self.windows_computed += 1
                    log.debug("window %d-%d (frames %d-%d) computed", w.emit_start, w.emit_end - 1, w.start, w.end - 1)
        with self.lock:
            self._delivered(w.emit_start, n)
        return self._emit(n, f[0], result[n - w.emit_start])

    def _run(self, w: Window, frames: torch.Tensor) -> np.ndarray:
        finite = torch.isfinite(frames).flatten(1).all(1)
        if not finite.all():
            bad = w.start + int((~finite).nonzero()[0])
            raise self.error(f"frame {bad} contains NaN or infinite values; replace them before this filter")
        try:
            return self.engine(frames, **self.model_kwargs)[w.emitted].numpy()
        except Exception as e:
            raise self.error(f"the network failed on frames {w.start}-{w.end - 1}: {type(e).__name__}: {e}") from e

    def _delivered(self, key: int, n: int) -> None:
        """Note that frame ``n`` of window ``key`` was emitted, then evict (caller holds the lock)."""
        self.undelivered.get(key, set()).discard(n)
        finished = [k for k in self.results if not self.undelivered.get(k)]
        partial = [k for k in self.results if self.undelivered.get(k)]
        for k in finished[: max(0, len(finished) - CACHED_WINDOWS)] + partial[: max(0, len(partial) - MAX_PARTIAL_WINDOWS)]:
            del self.results[k]
            self.undelivered.pop(k, None)


def _video_filter(
    name: str,
    arch: str,
    model_kwargs: dict,
    clip: vs.VideoNode,
    *,
    model: str,
    weights_path,
    device,
    window,
    overlap,
    scene_detect: bool,
    scene_threshold: float,
    matrix,
    output_format,
    dither: str,
    precision: str = "auto",
    tile: int | None = None,
) -> vs.VideoNode:
    """The one implementation behind the filter entry points (see :func:`BasicVSRPP`)."""
    error = _Errors(name)
    if not isinstance(clip, vs.VideoNode):
        raise error(f"clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise error("variable format or frame size is not supported; make them constant first, e.g. core.resize.Bicubic(clip, width, height, format=vs.YUV420P8)")
    if clip.num_frames < 1:
        raise error("the clip has no frames")
    if clip.format.color_family not in (vs.YUV, vs.RGB, vs.GRAY):
        raise error(f"unsupported colour family of {clip.format.name}")
    if clip.format.sample_type == vs.FLOAT and clip.format.bits_per_sample not in (16, 32):
        raise error(f"unsupported float format {clip.format.name}")
    if window is not None:
        window = _int_arg(window, "window", 1, error)
    overlap = _int_arg(overlap, "overlap", 0, error)
    if tile is not None:
        tile = _int_arg(tile, "tile", memory.MIN_TILE, error)
    if not isinstance(scene_threshold, (int, float)) or not 0 < scene_threshold <= 1:
        raise error(f"scene_threshold must be a number in (0, 1], got {scene_threshold!r}")
    if dither not in DITHER_TYPES:
        raise error(f"dither must be one of {', '.join(DITHER_TYPES)}, got {dither!r}")
    if matrix is not None:
        matrix = _int_arg(matrix, "matrix", 0, error)
    try:
        out_fmt = clip.format if output_format is None else core.get_video_format(output_format)
    except (vs.Error, TypeError, ValueError) as e:
        raise error(f"output_format {output_format!r} is not a VapourSynth format: {e}") from e
    if out_fmt.color_family not in (vs.YUV, vs.RGB, vs.GRAY):
        raise error(f"output_format {output_format!r} is not a YUV, RGB or GRAY format, e.g. vs.YUV420P10 or vs.RGBS")
    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise error(f"invalid device {device!r}: {e}") from e
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise error(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    dev = torch.device(device) if device is not None else default_device()
    try:
        precision = resolve_precision(precision, dev)
    except ValueError as e:
        raise error(str(e)) from e
    if precision == "fp16" and dev.type == "cpu":
        log.warning("%s: fp16 on the CPU is very slow (no native half convolutions); bf16 or fp32 are faster", name)

    needs_props = clip.format.id not in (vs.RGBS, vs.RGBH) or out_fmt.id != clip.format.id
    try:
        colors = ClipColors.of(clip, clip.get_frame(0).props if needs_props else {}, matrix)
    except ValueError as e:
        raise error(str(e)) from e

    path = _resolve_checkpoint(model, weights_path, error)
    try:
        engine = _load(str(path.resolve()), str(dev), precision, tile)
    except (CheckpointError, FileNotFoundError) as e:
        raise error(f"cannot load {path}: {e}") from e
    if engine.model.arch != arch:
        entry = {"basicvsrpp": "BasicVSRPP", "basicvsr": "BasicVSR", "realbasicvsr": "RealBasicVSR"}[engine.model.arch]
        raise error(f"{path.name} holds a {entry} network; use vsvsrpp.{entry}(clip, weights=...)")

    if window is None:  # the longest window (up to the default) that fits the free memory
        try:
            chosen = memory.plan(
                memory.NetworkShape.of(engine.model), *engine.model.size_requirements.padded(clip.height, clip.width),
                _free_memory(dev), overlap, PRECISIONS[precision].itemsize, DEFAULT_WINDOW,
            )
        except MemoryError as e:
            raise error(f"not enough memory on {dev}: {e}; try device='cpu' or a smaller clip") from e
        window = chosen.window
        if chosen.tile is not None and tile is None:
            engine = _load(str(path.resolve()), str(dev), precision, chosen.tile)
        log.info("%s: window %d, tile %s (estimated %.0f MiB per pass)", name, window, engine.tile, chosen.estimate / 2**20)

    rgb = to_rgb(clip, colors)
    flags = _cut_flags(rgb, scene_detect, float(scene_threshold)) if clip.num_frames > 1 else None
    runner = _WindowedNetwork(rgb, engine, window, overlap, flags, error, model_kwargs)
    out = core.std.CopyFrameProps(runner.node, rgb)
    return from_rgb(out, out_fmt, colors, dither)


def BasicVSRPP(
    clip: vs.VideoNode,
    model: str = catalogue.DEFAULT_MODEL,
    *,
    weights: str | Path | None = None,
    device: str | None = None,
    window: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    scene_detect: bool = True,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    matrix: int | None = None,
    output_format: int | vs.VideoFormat | None = None,
    dither: str = "none",
    precision: str = "auto",
    tile: int | None = None,
) -> vs.VideoNode:
    """Super-resolve (or restore) a clip with BasicVSR++.

    Args:
        clip: constant format and size: YUV (4:2:0, 4:2:2, 4:4:4; 8-16 bit integer or float),
            RGB (RGB24/30/48, RGBH, RGBS) or GRAY. YUV is converted to RGB with the matrix,
            range and chroma location of its first frame's properties (``_Matrix``, ``_Range``
            or the older ``_ColorRange``, ``_ChromaLocation``; defaults limited range, left
            chroma, and the matrix of the standard size: BT.601 up to 1024x576, BT.709 from
            1280 wide or 720 tall).
        model: catalogue name (see ``vsvsrpp.catalogue.MODELS``); its checkpoint is downloaded
            and verified on first use. Ignored when ``weights`` is given.
        weights: path of a BasicVSR++ checkpoint (official or custom; the architecture is read
            from the state dict).
        device: torch device, e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``; default CUDA when
            available, else CPU.
        window: output frames per network pass (>= 1). Memory grows linearly with
            ``window + 2 * overlap``; longer windows give propagation more frames. ``None``:
            the longest window up to 24 that fits the free memory of the device (see
            :mod:`vsvsrpp.memory`); pass a number for output independent of the machine.
        overlap: context frames run on each side of a window and discarded (>= 0), so frames
            at window boundaries still see neighbours on both sides.
        scene_detect: where a frame carries neither ``_SceneChangePrev`` nor (on the frame
            before) ``_SceneChangeNext``, detect cuts from the luma difference of consecutive
            frames. Windows never propagate across a cut either way.
        scene_threshold: detector threshold, mean absolute luma difference in (0, 1].
        matrix: YUV matrix (H.273 code) overriding the clip's ``_Matrix``.
        output_format: result format (a ``vs.PresetVideoFormat`` or format id); default the
            input's own format, converted back with the source's matrix, range and chroma
            location.
        dither: for integer outputs: ``"none"`` (round to nearest), ``"ordered"``, ``"random"``
            or ``"error_diffusion"``.
        precision: ``"auto"`` (fp16 on CUDA, fp32 on the CPU), ``"fp32"``, ``"fp16"`` or
            ``"bf16"``. Flow, sampling grids and deformable offsets stay float32 in all modes.
        tile: process frames in square tiles of this many input pixels (>= 64), blended over
            16 px; chosen automatically when not even a short window fits in memory, and halved
            after a CUDA out-of-memory error. Tiles change the output slightly (the networks see
            the whole frame otherwise).

    Returns:
        A clip of the same length, frame rate and frame properties (colour properties describe
        the output), ``scale`` times wider and taller (4x for super-resolution models, 1x for
        restoration models), RGB values clamped to [0, 1] before conversion. Frame ``n`` is
        identical whatever the request order or thread count; with ``window >=
        clip.num_frames`` and no scene cut it equals one network pass over the whole clip.

    Raises:
        vapoursynth.Error: ``"BasicVSRPP: ..."`` for an unsupported, variable or empty clip, an
            unknown model, missing weights, an unreadable checkpoint, bad arguments, or (when
            a frame is produced) NaN/Inf in the input.
    """
    return _video_filter(
        "BasicVSRPP", "basicvsrpp", {}, clip,
        model=model, weights_path=weights, device=device, window=window, overlap=overlap, scene_detect=scene_detect,
        scene_threshold=scene_threshold, matrix=matrix, output_format=output_format, dither=dither, precision=precision, tile=tile
    )


def BasicVSR(
    clip: vs.VideoNode,
    model: str = "basicvsr-reds4",
    *,
    weights: str | Path | None = None,
    device: str | None = None,
    window: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    scene_detect: bool = True,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    matrix: int | None = None,
    output_format: int | vs.VideoFormat | None = None,
    dither: str = "none",
    precision: str = "auto",
    tile: int | None = None,
) -> vs.VideoNode:
    """4x super-resolution with BasicVSR (Chan et al., CVPR 2021): first-order bidirectional
    propagation with flow warping; lighter than BasicVSR++ and a little less accurate.

    Arguments, output and errors (``"BasicVSR: ..."``) as :func:`BasicVSRPP`; ``model`` names a
    BasicVSR catalogue entry (``basicvsr-reds4``, ``basicvsr-vimeo90k-bi``,
    ``basicvsr-vimeo90k-bd``) and ``weights`` takes a BasicVSR checkpoint.
    """
    return _video_filter(
        "BasicVSR", "basicvsr", {}, clip,
        model=model, weights_path=weights, device=device, window=window, overlap=overlap, scene_detect=scene_detect,
        scene_threshold=scene_threshold, matrix=matrix, output_format=output_format, dither=dither, precision=precision, tile=tile
    )


def RealBasicVSR(
    clip: vs.VideoNode,
    model: str = "realbasicvsr",
    *,
    weights: str | Path | None = None,
    device: str | None = None,
    window: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    refine_threshold: float = 5.0,
    cleaning_passes: int | None = None,
    scene_detect: bool = True,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    matrix: int | None = None,
    output_format: int | vs.VideoFormat | None = None,
    dither: str = "none",
    precision: str = "auto",
    tile: int | None = None,
) -> vs.VideoNode:
    """4x real-world super-resolution with RealBasicVSR (Chan et al., "Investigating Tradeoffs in
    Real-World Video Super-Resolution", CVPR 2022), for noisy, compressed or blurry footage.

    An image cleaning module removes degradations frame by frame before BasicVSR propagates.
    Cleaning repeats (at most 3 passes) while the mean absolute residue of a pass is at least
    ``refine_threshold`` (dynamic refinement). The decision is taken per window over all the
    frames the window runs (its overlap included), as the reference does over its input
    sequence, so it is deterministic with the window grid; two windows of one clip may run a
    different number of passes.

    Args:
        refine_threshold: in 0..255 units (>= 0). 5 is what OpenMMLab's evaluation config
            uses and what the catalogue checkpoint records; the official inference script
            leaves the network's default 255, i.e. always exactly one pass. Lower values clean
            more (smoother), higher values keep more detail (and noise).
        cleaning_passes: a fixed number of passes (1-3) that overrides ``refine_threshold``,
            the same for every window.

    Other arguments, output and errors (``"RealBasicVSR: ..."``) as :func:`BasicVSRPP`.
    """
    error = _Errors("RealBasicVSR")
    if isinstance(refine_threshold, bool) or not isinstance(refine_threshold, (int, float)) or not refine_threshold >= 0:
        raise error(f"refine_threshold must be a number >= 0 (0..255 units), got {refine_threshold!r}")
    if cleaning_passes is not None:
        cleaning_passes = _int_arg(cleaning_passes, "cleaning_passes", 1, error)
        if cleaning_passes > MAX_CLEANING_PASSES:
            raise error(f"cleaning_passes must be from 1 to {MAX_CLEANING_PASSES} (the network's maximum), got {cleaning_passes}")
    kwargs = {"refine_threshold": float(refine_threshold), "cleaning_passes": cleaning_passes}
    return _video_filter(
        "RealBasicVSR", "realbasicvsr", kwargs, clip,
        model=model, weights_path=weights, device=device, window=window, overlap=overlap, scene_detect=scene_detect,
        scene_threshold=scene_threshold, matrix=matrix, output_format=output_format, dither=dither, precision=precision, tile=tile
    )
