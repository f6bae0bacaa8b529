"""The engine: runs a network on one window of frames, on a device, in a precision.

Knows nothing of VapourSynth, so the filters, evaluation and the benchmark share it. Padding to
the network's size requirements lives in the network's ``forward``; device placement,
precision, spatial tiles, out-of-memory back-off and the serialisation of passes live here.

* One lock per model instance: every :class:`Engine` on a network (and so every filter that
  shares a cached engine) runs its passes one at a time.
* :func:`load_engine` builds the network once per (checkpoint file identity, device,
  precision) and an engine once per tile size on top; the identity is the file's path, inode,
  size and modification time, so a checkpoint replaced on disk is loaded again.
* Passes stop at the next step once :func:`vsvsrpp.runtime.control.cancel` is called, and
  report their progress step by step (``progress=``).
* Results come back on the host by default; ``to_host=False`` leaves them on the device for a
  transfer path that reads device memory.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import arch
from ..arch import ModelDescriptor
from ..arch.blocks import flow_batch as spynet_batch
from ..arch.blocks import pad_frames, tile_regions
from ..hub.checkpoint import read_state_dict
from . import control, cuda
from .device import PRECISIONS, resolve_device, resolve_precision, set_cpu_threads
from .memory import MIN_STEP_TILE, MIN_TILE, trim_heap
from .windows import TileSpan, WindowPlan, tile_layout

log = logging.getLogger("vsvsrpp")

#: Engines kept by :func:`load_engine` (least recently used dropped first).
CACHED_ENGINES = 4


@dataclass
class _Placement:
    device: torch.device
    dtype: torch.dtype
    fast: bool
    lock: threading.RLock
    on_step: Callable[[], None] | None = None  # set by the pass holding ``lock``
    phase: nn.Module | None = None  # the step or flow module the pass last entered


def _install_hooks(descriptor: ModelDescriptor, placed: _Placement) -> None:
    """Cancellation checks before every step module and flow module; step counts after each step.
    On the CPU the heap is trimmed (:func:`~vsvsrpp.runtime.memory.trim_heap`) where a pass enters
    another of those modules: a phase's freed transients then do not stay resident under the
    next phase's (c16n2 x4, 256x256, one frame of 48 px step-wise tiles: peaks of 173-225 MiB
    from run to run without it, 182-199 MiB with it; six calls per BasicVSR++ pass)."""

    def before(module, args) -> None:
        control.check()
        if placed.device.type == "cpu" and module is not placed.phase:
            placed.phase = module
            trim_heap()

    def after(module, args, output) -> None:
        if placed.on_step is not None:
            placed.on_step()

    modules = dict(descriptor.model.named_modules())  # a stand-in network may lack them: no hooks
    for name in dict.fromkeys(descriptor.step_modules + descriptor.fp32_modules):
        if name in modules:
            modules[name].register_forward_pre_hook(before)
    for name in descriptor.step_modules:
        if name in modules:
            modules[name].register_forward_hook(after)


_placements: weakref.WeakKeyDictionary[nn.Module, _Placement] = weakref.WeakKeyDictionary()
_placements_guard = threading.Lock()


def _place(descriptor: ModelDescriptor, device: torch.device, dtype: torch.dtype, fast: bool) -> _Placement:
    """Move the network to ``device`` in ``dtype`` (its ``fp32_modules`` in float32) and, when
    ``fast``, switch it to its fast path there (``Architecture.fast_path``), once; return its
    placement with the lock of this model instance.

    Raises:
        ValueError: if the same network instance already runs on another device, in another
            dtype or on the other path (an engine would change it under the other's feet).
    """
    model = descriptor.model
    with _placements_guard:
        placed = _placements.get(model)
        if placed is not None:
            if (placed.device, placed.dtype, placed.fast) != (device, dtype, fast):
                path = "fast" if placed.fast else "exact"
                raise ValueError(
                    f"this network already runs on {placed.device} in {placed.dtype} on the {path} path; load the "
                    f"checkpoint again for {device} in {dtype} (fast={fast})"
                )
            return placed
        cuda.place(model, device, dtype).eval()
        for name in descriptor.fp32_modules:
            cuda.place(model.get_submodule(name), device, torch.float32)
        if fast:
            descriptor.architecture.fast_path(model, device)
        placed = _placements[model] = _Placement(device, dtype, fast, threading.RLock())
        _install_hooks(descriptor, placed)
        return placed


def blend_weights(spans: list[TileSpan], scale: int, blend: float) -> list[torch.Tensor]:
    """Per-axis blending weights of the output pixels of each span, summing to 1 at every pixel.

    Each core owns its pixels with weight 1, except within ``blend`` input pixels of a boundary
    it shares with a neighbour, where the two weights cross linearly (0.5 each on the boundary).
    ``blend`` must not exceed the margin, so that no tile's output is used outside its context.

    Returns:
        For each span, ``(scale * (end - start),)`` float32 weights.
    """
    length = spans[-1].end
    total = torch.zeros(length * scale)
    weights = []
    for k, sp in enumerate(spans):
        u = (torch.arange(sp.start * scale, sp.end * scale, dtype=torch.float64) + 0.5) / scale
        w = torch.ones_like(u)
        if blend > 0:
            if k > 0:
                w = torch.minimum(w, ((u - (sp.core_start - blend)) / (2 * blend)).clamp(0, 1))
            if k < len(spans) - 1:
                w = torch.minimum(w, (((sp.core_end + blend) - u) / (2 * blend)).clamp(0, 1))
        else:
            w = ((u >= sp.core_start) & (u < sp.core_end)).double()
        weights.append(w.float())
        total[sp.start * scale : sp.end * scale] += w.float()
    return [w / total[sp.start * scale : sp.end * scale] for w, sp in zip(weights, spans)]


class Engine:
    """Run a video network on windows of frames.

    Args:
        descriptor: the network and what is known of it (:mod:`vsvsrpp.arch`). Its network is
            moved to ``device`` in the precision's dtype, in place.
        device: where to run it (``None``: CUDA when available, else the CPU); validated by
            :func:`~vsvsrpp.runtime.device.resolve_device`.
        precision: ``"fp32"``, ``"fp16"``, ``"bf16"`` or ``"auto"`` (fp16 on CUDA, fp32 on the
            CPU). In reduced precision the convolutions run in that dtype while the descriptor's
            ``fp32_modules`` (SPyNet: flow), the sampling grids of flow warping and the
            deformable-convolution offsets stay float32: half precision cannot address pixels
            above 1024 finer than 1 px.
        tile: split frames into tiles of at most this many input pixels a side (None: whole
            frames). With ``exact_tiles`` the network runs every stage tile by tile on whole-frame
            features (the output equals whole frames up to float rounding; see BasicVSR++'s
            ``forward``). Otherwise each tile is a pass of its own: flow is computed once on
            whole frames and cropped for each tile (families with ``compute_flows``), each
            tile's pass also sees ``tile_margin`` pixels of context on every side, and
            neighbours blend only inside that margin (see :func:`tile_layout`,
            :func:`blend_weights`); propagation then differs near tile edges.
        tile_margin: context pixels around each independent tile (None: the network's
            ``reach``, see :class:`~vsvsrpp.arch.descriptor.ModelDescriptor`).
        exact_tiles: run tiles step-wise (None: when the family can, i.e. its memory shape has
            a ``tile_halo``; True for a family that cannot raises ``ValueError``). Step-wise
            tiles keep every frame's features whole (on the host with ``offload``); independent
            tiles need memory for one tile only.
        offload: keep the per-frame features of a pass in host memory between uses (exact;
            bounds device memory for long windows; nothing changes on the CPU).
        fast: run the family's fast path on this device (``Architecture.fast_path``: on the CPU
            channels_last convolutions and, for BasicVSR++, the sampled deformable convolution),
            equal to the exact path up to float rounding; False keeps the exact path (the
            reference parity tests and training use it).
        flow_batch: frame pixels per SPyNet batch during a pass (None: the default,
            :data:`~vsvsrpp.arch.blocks.FLOW_BATCH_PIXELS`; the memory plan may choose one pair
            at a time). The flows do not depend on it.

    Attributes:
        descriptor, device, precision, dtype, scale: as resolved.
        lock: the re-entrant lock of the network instance; held during every pass.
        tile: the tile size in use; halved after a CUDA out-of-memory error (with one warning).
        tile_margin, offload, exact_tiles, flow_batch: as given (resolved).

    Raises:
        ValueError: for a bad device or precision, a precision the family does not support, or
            a network instance already placed elsewhere.
    """

    def __init__(
        self,
        descriptor: ModelDescriptor,
        device: str | int | torch.device | None = None,
        precision: str = "fp32",
        tile: int | None = None,
        tile_margin: int | None = None,
        offload: bool = False,
        fast: bool = True,
        exact_tiles: bool | None = None,
        flow_batch: int | None = None,
    ):
        self.descriptor = descriptor
        can = descriptor.memory.tile_halo is not None
        if exact_tiles and not can:
            raise ValueError(f"{descriptor.name} has no step-wise tiles; use exact_tiles=False (independent tiles)")
        self.exact_tiles = can if exact_tiles is None else exact_tiles
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if descriptor.precisions is not None and self.precision not in descriptor.precisions:
            raise ValueError(f"{descriptor.name} runs in {', '.join(descriptor.precisions)}, not {self.precision}")
        if self.precision == "fp16" and self.device.type == "cpu":
            log.warning("fp16 on the CPU is very slow (no native half convolutions); bf16 or fp32 are faster")
        self.dtype = PRECISIONS[self.precision]
        if self.device.type == "cpu":
            set_cpu_threads()  # once per process: physical cores of the affinity, unless chosen
        self._placement = _place(descriptor, self.device, self.dtype, fast)
        self.lock = self._placement.lock
        self.model = descriptor.model
        self.scale = descriptor.scale
        self.tile = tile
        self.tile_margin = descriptor.reach if tile_margin is None else tile_margin
        self.offload = offload
        self.flow_batch = flow_batch
        self._warned = False

    def __call__(
        self,
        frames: torch.Tensor | Callable[[], torch.Tensor],
        *,
        to_host: bool = True,
        emit: slice | None = None,
        progress: Callable[[float], None] | None = None,
        finish: Callable[[torch.Tensor], Any] | None = None,
        **options,
    ) -> Any:
        """Process one window (one pass; the network's lock is held throughout).

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1] on any device, or a function that
                makes them, called with the lock held (so that a window's input is made only
                when its pass can start).
            to_host: return the result in host memory (else on :attr:`device`).
            emit: the frames of the pass to return (a window's emitted range, without its
                overlap frames; default all): only they are reconstructed and kept, the others
                only lend their features to the propagation.
            progress: called with the fraction of the pass done (0 to 1) after every step of
                every frame (the descriptor's ``step_modules``) of every tile.
            finish: called with the output, the lock still held, and its result returned
                instead (the transfer's conversion of the output window: one window's output
                at a time is alive, as the memory plan counts).
            options: the family's call options (e.g. RealBasicVSR's ``refine_threshold``), per
                call so that one cached engine serves every filter.

        Returns:
            ``(e, 3, scale*h, scale*w)`` float32 for the ``e`` frames of ``emit``, clamped to
            [0, 1] (or what ``finish`` makes of it); each frame is written into this buffer as
            soon as the network makes it (pinned host memory for a CUDA device with
            ``to_host``), so a pass never holds a second copy of its output.

        Raises:
            vsvsrpp.runtime.control.Cancelled: when :func:`~vsvsrpp.runtime.control.cancel` was
                called before or during the pass (it stops at the next step).
            torch.OutOfMemoryError: when even the smallest tiles do not fit
                (:data:`~vsvsrpp.runtime.windows.MIN_STEP_TILE` px step-wise,
                :data:`~vsvsrpp.runtime.windows.MIN_TILE` px independent).
        """
        control.check()
        with self.lock:
            if callable(frames):
                frames = frames()
            out = self._attempt(frames, options, to_host, range(frames.size(0))[emit or slice(None)], progress)
            return out if finish is None else finish(out)

    def _attempt(self, frames: torch.Tensor, options: dict, to_host: bool, kept: range,
                 progress: Callable[[float], None] | None) -> torch.Tensor:  # fmt: skip
        """A pass, tried again in smaller tiles after running out of memory (the lock is held)."""
        with torch.inference_mode(), spynet_batch(self.flow_batch):
            while True:
                self._count_steps(frames, progress, len(kept))
                try:
                    return self._pass(frames, options, to_host, kept)
                except torch.OutOfMemoryError:
                    smaller = (self.tile or max(frames.shape[-2:])) // 2 // 16 * 16
                    if smaller < (MIN_STEP_TILE if self.exact_tiles else MIN_TILE):
                        raise
                    if not self._warned:
                        log.warning("out of memory on %s; retrying with %d px tiles", self.device, smaller)
                        self._warned = True
                    self.tile = smaller
                    if self.device.type == "cuda":
                        cuda.empty_cache()
                finally:
                    self._placement.on_step = self._placement.phase = None
                    if self.device.type == "cpu":
                        trim_heap()  # the pass's freed transients back to the system (see trim_heap)

    def _count_steps(self, frames: torch.Tensor, progress: Callable[[float], None] | None, emitted: int) -> None:
        """Point the step hooks of the network at ``progress`` for one attempt at a pass that
        keeps the output of ``emitted`` of its frames."""
        if progress is None:
            self._placement.on_step = None
            return
        t, _, h, w = frames.shape
        d = self.descriptor
        steps = t * len(d.step_modules) - (t - emitted) * len(d.output_step_modules)
        total = max(1, steps * self._tile_count(h, w))
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            progress(min(done / total, 1.0))

        self._placement.on_step = step

    def _tile_count(self, h: int, w: int) -> int:
        """Tiles of a pass over ``h x w`` frames (1 for whole frames)."""
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return 1
        if self.exact_tiles:  # the network's own tiles, on its features
            fs = self.descriptor.memory.feature_stride
            ph, pw = self.descriptor.size_requirements.padded(h, w)
            return len(tile_regions(ph // fs, pw // fs, max(1, self.tile // fs)))
        ys, xs = self._layout(h, w)
        return len(ys) * len(xs)

    def _layout(self, h: int, w: int) -> tuple[list[TileSpan], list[TileSpan]]:
        """The tiles (rows, columns) of a pass over ``h x w`` frames (padded to the network's
        size requirements when tiled)."""
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return [TileSpan(0, h, 0, h)], [TileSpan(0, w, 0, w)]
        req = self.descriptor.size_requirements
        ph, pw = req.padded(h, w)
        minimum = max(req.minimum, MIN_TILE)
        layout = [tile_layout(n, self.tile, self.tile_margin, minimum, req.multiple_of) for n in (ph, pw)]
        return layout[0], layout[1]

    def _run(self, x: torch.Tensor, options: dict, sink: Callable[..., None], flows=None, tile=None) -> None:
        """One network call on ``(1, t, 3, h, w)`` frames on the device, every output frame to ``sink``."""
        extra = {"offload": True} if self.offload else {}
        if flows is not None:
            extra["flows"] = flows
        if tile is not None:
            extra["tile"] = tile
        out = self.model(x, sink=sink, **options, **extra)
        if out is not None:  # a network that does not stream its frames
            for i in range(out.size(1)):
                sink(i, out[:, i])

    def _pass(self, frames: torch.Tensor, options: dict, to_host: bool, emit: range) -> torch.Tensor:
        t, _, h, w = frames.shape
        e = len(emit)
        if emit.step != 1 or e == 0:
            raise ValueError(f"emit must be a non-empty range of consecutive frames of the pass, got {emit}")
        s = self.scale
        tiled = self._tile_count(h, w) > 1
        blended = tiled and not self.exact_tiles
        where = torch.device("cpu") if to_host else self.device
        pinned = where.type == "cpu" and self.device.type == "cuda"  # copies to it are asynchronous
        if where.type == "cpu":
            out = cuda.host_buffer((e, 3, h * s, w * s), zeros=blended, pinned=pinned)
        else:
            out = (torch.zeros if blended else torch.empty)((e, 3, h * s, w * s), device=where)
        x = frames.to(self.device, self.dtype).unsqueeze(0)
        if not blended:

            def write(i: int, hr: torch.Tensor, at: tuple[int, int] = (0, 0)) -> None:
                if i not in emit:
                    return  # (a network that reconstructs every frame)
                y, x0 = at  # step-wise tiles hand over a frame region by region
                region = out[i - emit.start, :, y : y + hr.size(-2), x0 : x0 + hr.size(-1)]
                region.copy_(hr[0].float().clamp_(0.0, 1.0), non_blocking=pinned)

            write.wants = emit.__contains__  # type: ignore[attr-defined]
            self._run(x, options, write, tile=self.tile if tiled else None)
        else:
            ys, xs = self._layout(h, w)
            x = pad_frames(x, self.descriptor.size_requirements)
            compute_flows = getattr(self.model, "compute_flows", None)
            flows = compute_flows(x) if t > 1 and compute_flows is not None else None
            stride = 1 if flows is None else x.size(-1) // flows[0].size(-1)
            blend = self.tile_margin / 2
            column_weights = blend_weights(xs, s, blend)
            for sy, wy in zip(ys, blend_weights(ys, s, blend)):
                for sx, wx in zip(xs, column_weights):
                    oy, ox = min(sy.end * s, h * s) - sy.start * s, min(sx.end * s, w * s) - sx.start * s
                    if oy <= 0 or ox <= 0:
                        continue  # a tile of padding only
                    mask = (wy[:oy, None] * wx[None, :ox]).to(self.device)
                    region = (slice(sy.start * s, sy.start * s + oy), slice(sx.start * s, sx.start * s + ox))

                    def add(i: int, hr: torch.Tensor, mask=mask, region=region, oy=oy, ox=ox) -> None:
                        if i not in emit:
                            return
                        part = hr[0, :, :oy, :ox].float().clamp_(0.0, 1.0).mul_(mask)
                        out[i - emit.start, :, region[0], region[1]] += part.to(where)

                    add.wants = emit.__contains__  # type: ignore[attr-defined]

                    crop = None
                    if flows is not None:
                        ry, rx = slice(sy.start // stride, sy.end // stride), slice(sx.start // stride, sx.end // stride)
                        crop = tuple(f[..., ry, rx] for f in flows)
                    self._run(x[..., sy.start : sy.end, sx.start : sx.end], options, add, crop)
        if pinned:
            cuda.synchronize(self.device)
        return out

    def process_sequence(self, frames: torch.Tensor, window: int, overlap: int, **options) -> torch.Tensor:
        """Process a whole sequence window by window, exactly as the VapourSynth filter does.

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1].
            window, overlap: the window grid (see :class:`vsvsrpp.runtime.windows.WindowPlan`).
            options: the family's call options, for every window.

        Returns:
            ``(t, 3, scale*h, scale*w)`` float32 on the CPU, clamped to [0, 1].

        Raises:
            ValueError: for bad ``window``/``overlap`` values.
        """
        plan = WindowPlan(frames.shape[0], window, overlap)
        return torch.cat([self(frames[w.start : w.end], emit=w.emitted, **options) for w in plan])


# ---------------------------------------------------------------------------------------------
# the shared engines
# ---------------------------------------------------------------------------------------------

_engines: OrderedDict[tuple, Engine] = OrderedDict()
_engines_guard = threading.Lock()


def file_identity(path: str | os.PathLike) -> tuple:
    """``(resolved path, device, inode, size, mtime_ns)`` of a file: changes when it is replaced
    or rewritten.

    Raises:
        FileNotFoundError: if the file does not exist.
    """
    path = Path(path).resolve()
    st = path.stat()
    return str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def load_engine(
    path: str | os.PathLike,
    device: str | int | torch.device | None = None,
    precision: str = "auto",
    tile: int | None = None,
    offload: bool = False,
    exact_tiles: bool | None = None,
    flow_batch: int | None = None,
) -> Engine:
    """The shared engine for a checkpoint file, device, precision, tile size, offloading, kind
    of tiles and SPyNet batch (see :class:`Engine`).

    The network is read and built once per (file identity, device, precision) and shared by
    the engines of every tile size; the :data:`CACHED_ENGINES` most recently used engines are
    kept. A file replaced or rewritten on disk has a new identity: it is read again, and the
    engines of its previous content are dropped.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a bad device or precision.
        vsvsrpp.arch.CheckpointError: if the file is not a loadable checkpoint.
    """
    identity = file_identity(path)
    dev = resolve_device(device)
    key = (identity, str(dev), resolve_precision(precision, dev), tile, offload, exact_tiles, flow_batch)
    with _engines_guard:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        for old in [k for k in _engines if k[0][0] == identity[0] and k[0] != identity]:
            del _engines[old]
        same_model = next((e for k, e in _engines.items() if k[:3] == key[:3]), None)
        descriptor = same_model.descriptor if same_model is not None else arch.load(read_state_dict(path))
        engine = _engines[key] = Engine(descriptor, dev, key[2], tile, offload=offload, exact_tiles=exact_tiles, flow_batch=flow_batch)
        while len(_engines) > CACHED_ENGINES:
            _engines.popitem(last=False)
        return engine


def clear_engines() -> None:
    """Forget every shared engine (their networks are freed once no filter holds them)."""
    with _engines_guard:
        _engines.clear()
