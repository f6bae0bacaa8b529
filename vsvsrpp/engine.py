"""The engine: runs a network on one window of frames on the chosen device.

Knows nothing of VapourSynth, so the filter and the command line share it. Padding to the
network's size requirements lives in the network's ``forward``; precision, spatial tiles and
out-of-memory back-off live here.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .blocks import SPyNet
from .memory import MIN_TILE
from .windows import WindowPlan

log = logging.getLogger("vsvsrpp")

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"fp16"`` on CUDA, ``"fp32"`` on the CPU (whatever the clip's format).

    Raises:
        ValueError: for a name other than auto, fp32, fp16, bf16.
    """
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


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
        model: a network whose ``forward`` maps ``(n, t, 3, h, w)`` to
            ``(n, t, 3, scale*h, scale*w)`` and which has a ``.scale`` attribute.
        device: where to run it (``None``: :func:`default_device`).
        precision: ``"fp32"``, ``"fp16"``, ``"bf16"`` or ``"auto"`` (fp16 on CUDA, fp32 on the
            CPU). In reduced precision the convolutions run in that dtype while SPyNet (flow),
            the sampling grids of flow warping and the deformable-convolution offsets stay
            float32: half precision cannot address pixels above 1024 finer than 1 px.
        tile: split frames into square tiles of this many input pixels (None: whole frames).
        tile_overlap: input pixels shared by neighbouring tiles, blended with linear ramps.

    Attributes:
        tile: the tile size in use; halved after a CUDA out-of-memory error (with one warning).
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        tile: int | None = None,
        tile_overlap: int = 16,
    ):
        self.device = torch.device(device) if device is not None else default_device()
        self.precision = resolve_precision(precision, self.device)
        self.dtype = PRECISIONS[self.precision]
        self.model = model.to(self.device, self.dtype).eval()
        for m in self.model.modules():
            if isinstance(m, SPyNet):
                m.float()
        self.scale: int = model.scale
        self.tile = tile
        self.tile_overlap = tile_overlap
        self._warned = False

    def __call__(self, frames: torch.Tensor, **model_kwargs) -> torch.Tensor:
        """Process one window.

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1] on any device.
            model_kwargs: passed to the network's ``forward`` (e.g. RealBasicVSR's
                ``refine_threshold``), per call so that one cached engine serves every filter.

        Returns:
            ``(t, 3, scale*h, scale*w)`` float32 on the CPU, clamped to [0, 1].

        Raises:
            torch.OutOfMemoryError: when even :data:`vsvsrpp.memory.MIN_TILE` tiles do not fit.
        """
        with torch.inference_mode():
            while True:
                try:
                    return self._tiled(frames, model_kwargs)
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

    def _whole(self, frames: torch.Tensor, model_kwargs: dict) -> torch.Tensor:
        x = frames.to(self.device, self.dtype).unsqueeze(0)
        return self.model(x, **model_kwargs)[0].float().clamp_(0.0, 1.0).cpu()

    def _tiled(self, frames: torch.Tensor, model_kwargs: dict) -> torch.Tensor:
        t, _, h, w = frames.shape
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return self._whole(frames, model_kwargs)
        s, ov = self.scale, self.tile_overlap
        out = torch.zeros(t, 3, h * s, w * s)
        weight = torch.zeros(h * s, w * s)
        for ys in tile_spans(h, self.tile, ov):
            wy = _ramp(ys, h, ov, s)
            for xs in tile_spans(w, self.tile, ov):
                part = self._whole(frames[..., ys[0] : ys[1], xs[0] : xs[1]], model_kwargs)
                mask = wy[:, None] * _ramp(xs, w, ov, s)[None, :]
                out[..., ys[0] * s : ys[1] * s, xs[0] * s : xs[1] * s] += part * mask
                weight[ys[0] * s : ys[1] * s, xs[0] * s : xs[1] * s] += mask
        return out.div_(weight)

    def process_sequence(self, frames: torch.Tensor, window: int, overlap: int, **model_kwargs) -> torch.Tensor:
        """Process a whole sequence window by window, exactly as the VapourSynth filter does.

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1].
            window, overlap: the window grid (see :class:`vsvsrpp.windows.WindowPlan`).
            model_kwargs: passed to the network's ``forward`` for every window.

        Returns:
            ``(t, 3, scale*h, scale*w)`` float32 on the CPU, clamped to [0, 1].

        Raises:
            ValueError: for bad ``window``/``overlap`` values.
        """
        plan = WindowPlan(frames.shape[0], window, overlap)
        return torch.cat([self(frames[w.start : w.end], **model_kwargs)[w.emitted] for w in plan])
