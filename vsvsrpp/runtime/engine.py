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

import torch
from torch import nn

from .. import arch
from ..arch import ModelDescriptor
from ..hub.checkpoint import read_state_dict
from . import control
from .device import PRECISIONS, resolve_device, resolve_precision, set_cpu_threads
from .memory import MIN_TILE
from .windows import WindowPlan

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


def _install_hooks(descriptor: ModelDescriptor, placed: _Placement) -> None:
    """Cancellation checks before every step module and flow module; step counts after each step."""

    def before(module, args) -> None:
        control.check()

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
        model.to(device, dtype).eval()
        for name in descriptor.fp32_modules:
            model.get_submodule(name).float()
        if fast:
            descriptor.architecture.fast_path(model, device)
        placed = _placements[model] = _Placement(device, dtype, fast, threading.RLock())
        _install_hooks(descriptor, placed)
        return placed


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Cover ``[0, length)`` with spans of ``tile`` pixels, neighbours overlapping by at least
    ``overlap``; the last span ends at ``length``."""
    if tile >= length:
        return [(0, length)]
    step = max(tile - overlap, 1)
    starts = list(range(0, length - tile, step)) + [length - tile]
    return [(s, s + tile) for s in starts]


def _ramp(span: tuple[int, int], length: int, overlap: int, scale: int) -> torch.Tensor:
    """Blending weights along one axis of a tile's output: rising linearly over ``overlap``
    input pixels at edges shared with a neighbour, 1 elsewhere."""
    a, b = span
    j = torch.arange(a * scale, b * scale, dtype=torch.float32) + 0.5
    w = torch.ones_like(j)
    if overlap > 0:
        if a > 0:
            w = torch.minimum(w, (j - a * scale) / (overlap * scale))
        if b < length:
            w = torch.minimum(w, (b * scale - j) / (overlap * scale))
    return w


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
        tile: split frames into square tiles of this many input pixels (None: whole frames).
        tile_overlap: input pixels shared by neighbouring tiles, blended with linear ramps.
        fast: run the family's fast path on this device (``Architecture.fast_path``: on the CPU
            channels_last convolutions and, for BasicVSR++, the sampled deformable convolution),
            equal to the exact path up to float rounding; False keeps the exact path (the
            reference parity tests and training use it).

    Attributes:
        descriptor, device, precision, dtype, scale: as resolved.
        lock: the re-entrant lock of the network instance; held during every pass.
        tile: the tile size in use; halved after a CUDA out-of-memory error (with one warning).

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
        tile_overlap: int = 16,
        fast: bool = True,
    ):
        self.descriptor = descriptor
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
        self.tile_overlap = tile_overlap
        self._warned = False

    def __call__(
        self,
        frames: torch.Tensor,
        *,
        to_host: bool = True,
        progress: Callable[[float], None] | None = None,
        **options,
    ) -> torch.Tensor:
        """Process one window (one pass; the network's lock is held throughout).

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1] on any device.
            to_host: return the result in host memory (else on :attr:`device`).
            progress: called with the fraction of the pass done (0 to 1) after every step of
                every frame (the descriptor's ``step_modules``) of every tile.
            options: the family's call options (e.g. RealBasicVSR's ``refine_threshold``), per
                call so that one cached engine serves every filter.

        Returns:
            ``(t, 3, scale*h, scale*w)`` float32, clamped to [0, 1].

        Raises:
            vsvsrpp.runtime.control.Cancelled: when :func:`~vsvsrpp.runtime.control.cancel` was
                called before or during the pass (it stops at the next step).
            torch.OutOfMemoryError: when even :data:`vsvsrpp.runtime.memory.MIN_TILE` tiles do
                not fit.
        """
        control.check()
        with self.lock, torch.inference_mode():
            while True:
                self._count_steps(frames, progress)
                try:
                    return self._tiled(frames, options, to_host)
                except torch.OutOfMemoryError:
                    smaller = (self.tile or max(frames.shape[-2:])) // 2 // 16 * 16
                    if smaller < MIN_TILE:
                        raise
                    if not self._warned:
                        log.warning("out of memory on %s; retrying with %d px tiles", self.device, smaller)
                        self._warned = True
                    self.tile = smaller
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                finally:
                    self._placement.on_step = None

    def _count_steps(self, frames: torch.Tensor, progress: Callable[[float], None] | None) -> None:
        """Point the step hooks of the network at ``progress`` for one attempt at a pass."""
        if progress is None:
            self._placement.on_step = None
            return
        t, _, h, w = frames.shape
        tiles = 1
        if self.tile is not None and (h > self.tile or w > self.tile):
            tiles = len(tile_spans(h, self.tile, self.tile_overlap)) * len(tile_spans(w, self.tile, self.tile_overlap))
        total = max(1, t * len(self.descriptor.step_modules) * tiles)
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            progress(min(done / total, 1.0))

        self._placement.on_step = step

    def _whole(self, frames: torch.Tensor, options: dict) -> torch.Tensor:
        x = frames.to(self.device, self.dtype).unsqueeze(0)
        return self.model(x, **options)[0].float().clamp_(0.0, 1.0)

    def _tiled(self, frames: torch.Tensor, options: dict, to_host: bool) -> torch.Tensor:
        t, _, h, w = frames.shape
        if self.tile is None or (h <= self.tile and w <= self.tile):
            out = self._whole(frames, options)
            return out.cpu() if to_host else out
        s, ov = self.scale, self.tile_overlap
        where = torch.device("cpu") if to_host else self.device
        out = torch.zeros(t, 3, h * s, w * s, device=where)
        weight = torch.zeros(h * s, w * s, device=where)
        for ys in tile_spans(h, self.tile, ov):
            wy = _ramp(ys, h, ov, s).to(where)
            for xs in tile_spans(w, self.tile, ov):
                part = self._whole(frames[..., ys[0] : ys[1], xs[0] : xs[1]], options).to(where)
                mask = wy[:, None] * _ramp(xs, w, ov, s).to(where)[None, :]
                out[..., ys[0] * s : ys[1] * s, xs[0] * s : xs[1] * s] += part * mask
                weight[ys[0] * s : ys[1] * s, xs[0] * s : xs[1] * s] += mask
        return out.div_(weight)

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
        return torch.cat([self(frames[w.start : w.end], **options)[w.emitted] for w in plan])


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
) -> Engine:
    """The shared engine for a checkpoint file, device, precision and tile size.

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
    key = (identity, str(dev), resolve_precision(precision, dev), tile)
    with _engines_guard:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        for old in [k for k in _engines if k[0][0] == identity[0] and k[0] != identity]:
            del _engines[old]
        same_model = next((e for k, e in _engines.items() if k[:3] == key[:3]), None)
        descriptor = same_model.descriptor if same_model is not None else arch.load(read_state_dict(path))
        engine = _engines[key] = Engine(descriptor, dev, key[2], tile)
        while len(_engines) > CACHED_ENGINES:
            _engines.popitem(last=False)
        return engine


def clear_engines() -> None:
    """Forget every shared engine (their networks are freed once no filter holds them)."""
    with _engines_guard:
        _engines.clear()
