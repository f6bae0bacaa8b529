"""Benchmark evaluation with the protocol of the BasicVSR/BasicVSR++ papers.

For every clip (a folder of frames) of a ground-truth root:

1. the ground truth is read as 8-bit RGB and cropped to a multiple of the scale;
2. the low-resolution input is made from it with the BI or BD degradation
   (:mod:`vsvsrpp.tools.degradations`) and rounded to 8 bits, as the published LR files are — or read
   from a folder of published LR frames (``lq_root``);
3. the method (bicubic upsampling, or a network run through :meth:`Engine.process_sequence`,
   the same window grid as the VapourSynth filter) produces the output, which is rounded to
   8 bits before scoring;
4. PSNR and SSIM are computed per frame on the Y channel of ITU-R BT.601 (Vid4, UDM10,
   Vimeo-90K-T) or on RGB (REDS4), with no border cropped (``crop_border=0`` in the official
   OpenMMLab BasicVSR++ configs), averaged over the frames of a clip, and the clip means are
   averaged into the dataset score (the papers' tables).

References:
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 2004 (SSIM: 11x11 Gaussian window,
    sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255; the mean of the SSIM map over the valid region).
    ITU-R BT.601 / MATLAB ``rgb2ycbcr``: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for RGB
    in [0, 1].
    OpenMMLab MMEditing configs ``basicvsr_plusplus_c64n7_*``: ``test_cfg = dict(metrics=['PSNR',
    'SSIM'], crop_border=0, convert_to='y')`` for Vid4/UDM10/Vimeo-90K-T, RGB for REDS4.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW
from . import degradations

__all__ = [
    "CHANNELS",
    "ClipResult",
    "EvalResult",
    "bicubic_method",
    "evaluate",
    "find_clips",
    "frame_metrics",
    "list_frames",
    "mod_crop",
    "model_method",
    "psnr",
    "read_frames",
    "rgb_to_y",
    "ssim",
    "to_uint8",
]

#: Colour spaces the metrics can be computed in.
CHANNELS = ("y", "rgb")

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")

# A method maps LR frames (t, 3, h, w) float32 in [0, 1] to (t, 3, s*h, s*w) float in [0, 1].
Method = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# reading frames
# ---------------------------------------------------------------------------------------------


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (``2.png`` before ``10.png``)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=_natural_key)


def find_clips(root: str | os.PathLike) -> dict[str, Path]:
    """The clips of a dataset root: its sub-folders that hold frames, by name (natural order).

    A root that itself holds frames is one clip, named after the folder.

    Raises:
        FileNotFoundError: if ``root`` is not a folder or holds no frames.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    if list_frames(root):
        return {root.name: root}
    clips = {d.name: d for d in sorted(root.iterdir(), key=_natural_key) if d.is_dir() and list_frames(d)}
    if not clips:
        raise FileNotFoundError(f"no clips (folders of image frames) in {root}")
    return clips


def _rgb8(im) -> np.ndarray:
    """A PIL image as ``(h, w, 3)`` uint8 RGB. 16-bit grayscale (``I;16``, or ``I`` from a
    16-bit file) is scaled to 8 bits (rounded ``v * 255 / 65535``), not clipped at 255 as
    ``convert("RGB")`` does; 16-bit RGB files are reduced to 8 bits by Pillow itself."""
    if im.mode.startswith("I"):
        scaled = np.rint(np.asarray(im, dtype=np.float64) * (255.0 / 65535.0))
        gray = np.clip(scaled, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(im.convert("RGB"))


def read_frames(paths: Sequence[str | os.PathLike]) -> torch.Tensor:
    """Read image files as 8-bit RGB (8- and 16-bit files, RGB or grayscale).

    Returns:
        ``(t, 3, h, w)`` uint8 tensor.

    Raises:
        ValueError: a file is not a readable image (truncated, damaged, missing), or the frames
            differ in size.
    """
    import struct

    from PIL import Image

    arrays = []
    for p in paths:
        try:
            with Image.open(p) as im:
                arrays.append(_rgb8(im))
        except (OSError, SyntaxError, EOFError, struct.error) as e:  # what PIL raises for damaged files
            raise ValueError(f"cannot read {p}: {e}") from None
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"frames of different sizes in {Path(paths[0]).parent}: {sorted(sizes)}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def mod_crop(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so that height and width are multiples of ``scale``.

    Args:
        frames: ``(..., h, w)`` tensor of any dtype.

    Returns:
        ``(..., h - h % scale, w - w % scale)`` view.
    """
    h, w = frames.shape[-2:]
    return frames[..., : h - h % scale, : w - w % scale]


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] to 8 bits as an output file would hold: ``round(255 x)``, clamped.

    Returns:
        uint8 tensor of the same shape.
    """
    return torch.round(img.float().clamp(0, 1) * 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """Luma of ITU-R BT.601 as MATLAB ``rgb2ycbcr`` (studio range), without rounding.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 255].

    Args:
        img: ``(..., 3, h, w)`` RGB in [0, 255] (uint8 or float).

    Returns:
        ``(..., 1, h, w)`` float64 in [16, 235].
    """
    x = img.to(torch.float64)
    r, g, b = x.unbind(-3)
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    return y.unsqueeze(-3)


def psnr(a: torch.Tensor, b: torch.Tensor, max_value: float = 255.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(max^2 / MSE)`` over all elements.

    Args:
        a, b: tensors of the same shape (e.g. ``(c, h, w)`` in [0, 255]).
        max_value: the peak (255 for 8-bit data).

    Returns:
        PSNR in dB (``inf`` for identical inputs).
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = torch.mean((a.to(torch.float64) - b.to(torch.float64)) ** 2).item()
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(max_value**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' correlation of ``(c, 1, h, w)`` with the 1-D window ``g`` on both axes."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return F.conv2d(x, g.view(1, 1, 1, k))


def ssim(a: torch.Tensor, b: torch.Tensor, max_value: float = 255.0) -> float:
    """Structural similarity (Wang et al. 2004), the mean of the SSIM map, averaged over channels.

    Local statistics use an 11x11 Gaussian window (sigma 1.5) over the 'valid' region only (as
    the authors' ``ssim_index.m``, without its later automatic downsampling);
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = max_value``.

    Args:
        a, b: ``(c, h, w)`` (or ``(h, w)``) tensors in [0, max_value], ``h, w >= 11``.

    Returns:
        SSIM in [-1, 1] (1 for identical images).
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() == 2:
        a, b = a[None], b[None]
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11, got {tuple(a.shape[-2:])}")
    x = a.to(torch.float64).unsqueeze(1)
    y = b.to(torch.float64).unsqueeze(1)
    g = _gaussian_window()
    c1 = (0.01 * max_value) ** 2
    c2 = (0.03 * max_value) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x * mu_x
    syy = _filter_valid(y * y, g) - mu_y * mu_y
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return (num / den).mean(dim=(1, 2, 3)).mean().item()


def frame_metrics(output: torch.Tensor, gt: torch.Tensor, channel: str = "y", crop_border: int = 0) -> tuple[float, float]:
    """PSNR and SSIM of one 8-bit frame against its ground truth.

    Args:
        output, gt: ``(3, h, w)`` uint8 RGB (outputs must already be rounded to 8 bits).
        channel: ``"y"`` (BT.601 luma, values 16..235) or ``"rgb"`` (all three channels).
        crop_border: pixels removed on each side before scoring (0 in the BasicVSR++ configs).

    Returns:
        ``(psnr_db, ssim)``.
    """
    if channel == "y":
        a, b = rgb_to_y(output), rgb_to_y(gt)
    elif channel == "rgb":
        a, b = output.to(torch.float64), gt.to(torch.float64)
    else:
        raise ValueError(f"unknown metric channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return psnr(a, b), ssim(a, b)


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------


def bicubic_method(scale: int = 4) -> Method:
    """The papers' Bicubic baseline: MATLAB ``imresize(lr, scale, 'bicubic')`` of the 8-bit LR.

    Returns:
        A method: ``(t, 3, h, w)`` float in [0, 1] -> ``(t, 3, scale*h, scale*w)`` float32
        (not clamped; the evaluation clamps and rounds).
    """

    def run(lr: torch.Tensor) -> torch.Tensor:
        return degradations.imresize(lr.to(torch.float64), scale=scale).float()

    run.scale = scale  # type: ignore[attr-defined]
    return run


def model_method(engine, window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP, **options) -> Method:
    """A network run window by window through :meth:`vsvsrpp.runtime.engine.Engine.process_sequence`.

    Args:
        engine: a :class:`vsvsrpp.runtime.engine.Engine`.
        window, overlap: the window grid (as the VapourSynth filter's arguments).
        options: the family's call options (e.g. RealBasicVSR's ``refine_threshold``).

    Returns:
        A method: ``(t, 3, h, w)`` float32 in [0, 1] -> ``(t, 3, s*h, s*w)`` float32 in [0, 1].
    """

    def run(lr: torch.Tensor) -> torch.Tensor:
        return engine.process_sequence(lr, window, overlap, **options)

    run.scale = engine.scale  # type: ignore[attr-defined]
    return run


# ---------------------------------------------------------------------------------------------
# the evaluation loop and its result
# ---------------------------------------------------------------------------------------------


@dataclass
class ClipResult:
    """Scores of one clip: the means over its frames.

    Attributes:
        psnr: mean PSNR in dB.
        ssim: mean SSIM.
        frames: number of frames scored.
        frame_psnr, frame_ssim: the per-frame values.
    """

    psnr: float
    ssim: float
    frames: int
    frame_psnr: list[float] = field(default_factory=list, repr=False)
    frame_ssim: list[float] = field(default_factory=list, repr=False)


@dataclass
class EvalResult:
    """Scores of a dataset: per clip, and their average (mean of the clip means, as the papers).

    Attributes:
        clips: ``{clip name: ClipResult}`` in evaluation order.
        method, degradation, channel, crop_border, scale, dataset, bd_offset: what was measured.
    """

    clips: dict[str, ClipResult]
    method: str = ""
    degradation: str = "bi"
    channel: str = "y"
    crop_border: int = 0
    scale: int = 4
    dataset: str = ""
    bd_offset: float = 0.0

    @property
    def psnr(self) -> float:
        """Mean over clips of the clip PSNRs (dB)."""
        return float(np.mean([c.psnr for c in self.clips.values()]))

    @property
    def ssim(self) -> float:
        """Mean over clips of the clip SSIMs."""
        return float(np.mean([c.ssim for c in self.clips.values()]))

    def to_dict(self) -> dict:
        """``{"clips": {name: {"psnr": dB, "ssim": x}}, "average": {"psnr": dB, "ssim": x}}``;
        a non-finite PSNR (identical images) is written as ``null``."""

        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "clips": {name: {"psnr": num(c.psnr), "ssim": c.ssim} for name, c in self.clips.items()},
            "average": {"psnr": num(self.psnr), "ssim": self.ssim},
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a strict JSON document."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def format_table(self) -> str:
        """A plain-text table, one row per clip and the average, PSNR/SSIM as in the papers."""
        channel = "Y (BT.601)" if self.channel == "y" else "RGB"
        head = [
            f"dataset: {self.dataset}" if self.dataset else None,
            f"method: {self.method}   degradation: {self.degradation.upper()}x{self.scale}"
            f"{f' (offset {self.bd_offset:g})' if self.degradation == 'bd' and self.bd_offset else ''}   "
            f"metric: {channel}, crop border {self.crop_border}",
        ]
        width = max([len("Average")] + [len(n) for n in self.clips])
        lines = [h for h in head if h]
        lines.append("")
        lines.append(f"{'Clip':<{width}}  {'Frames':>6}  {'PSNR (dB)':>9}  {'SSIM':>6}  PSNR/SSIM")
        rule = "-" * len(lines[-1])
        lines.append(rule)

        def row(name: str, frames: int, p: float, s: float) -> str:
            return f"{name:<{width}}  {frames:>6}  {p:>9.4f}  {s:>6.4f}  {p:.2f}/{s:.4f}"

        for name, c in self.clips.items():
            lines.append(row(name, c.frames, c.psnr, c.ssim))
        lines.append(rule)
        lines.append(row("Average", sum(c.frames for c in self.clips.values()), self.psnr, self.ssim))
        return "\n".join(lines)


def _check_arguments(degradation: str, channel: str, limit_frames: int | None, crop_border: int, scale: int) -> None:
    if degradation not in degradations.DEGRADATIONS:
        raise ValueError(f"unknown degradation {degradation!r}; expected one of {', '.join(degradations.DEGRADATIONS)}")
    if channel not in CHANNELS:
        raise ValueError(f"unknown metric channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    if limit_frames is not None and limit_frames < 1:
        raise ValueError(f"limit_frames must be >= 1, got {limit_frames}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if scale < 2:
        raise ValueError(f"a {scale}x method cannot be evaluated on a super-resolution benchmark")


def _read_lq(name: str, paths: list[Path], gt: torch.Tensor, scale: int) -> torch.Tensor:
    """Published LR frames of a clip as ``(t, 3, h, w)`` float in [0, 1], checked against ``gt``."""
    if len(paths) != gt.shape[0]:
        raise ValueError(f"{name}: {len(paths)} LR frames for {gt.shape[0]} ground-truth frames")
    lq = read_frames(paths).float() / 255
    if tuple(lq.shape[-2:]) != (gt.shape[-2] // scale, gt.shape[-1] // scale):
        raise ValueError(f"{name}: LR frames are {tuple(lq.shape[-2:])}, expected 1/{scale} of {tuple(gt.shape[-2:])}")
    return lq


def evaluate(
    gt_root: str | os.PathLike,
    method: Method,
    degradation: str = "bi",
    channel: str = "y",
    crop_border: int = 0,
    limit_frames: int | None = None,
    clips: Iterable[str] | None = None,
    lq_root: str | os.PathLike | None = None,
    method_name: str = "",
    progress: bool = False,
    bd_offset: float = degradations.BD_OFFSET,
) -> EvalResult:
    """Evaluate a method on every clip of a dataset with the papers' protocol (module docstring).

    Args:
        gt_root: folder of clip folders of ground-truth frames (or one clip folder).
        method: see :func:`bicubic_method` and :func:`model_method`; its ``scale`` attribute
            (default 4) is the super-resolution factor.
        degradation: ``"bi"`` or ``"bd"`` — how the LR input is made from the ground truth.
        channel: ``"y"`` or ``"rgb"`` (see :func:`frame_metrics`).
        crop_border: border pixels ignored by the metrics (the papers: 0).
        limit_frames: score only the first N frames of each clip (the method sees only those).
        clips: names of the clips to evaluate (default: all).
        lq_root: read the LR frames from this folder of clip folders instead of degrading the
            ground truth (e.g. published BDx4 files); same clip names and frame counts.
        method_name: shown in the table.
        progress: show a tqdm bar (clips) on stderr.
        bd_offset: BD's sampling phase in GT pixels (:func:`~vsvsrpp.tools.degradations.blur_downsample`):
            0 makes the official Vid4 BDx4 frames, 1.5 (``BD_OFFSET_CENTRED``) what BasicSR's BD
            checkpoint was trained on.

    Returns:
        An :class:`EvalResult`.

    Raises:
        FileNotFoundError: missing folders or clips.
        ValueError: bad arguments, or LR/GT frames that do not match in number or size.
    """
    from tqdm import tqdm

    scale = int(getattr(method, "scale", 4))
    _check_arguments(degradation, channel, limit_frames, crop_border, scale)
    if not 0 <= bd_offset < scale:
        raise ValueError(f"bd_offset must be in [0, {scale}) GT pixels, got {bd_offset}")
    found = find_clips(gt_root)
    names = list(found) if clips is None else list(clips)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise FileNotFoundError(f"clip(s) not found in {gt_root}: {', '.join(unknown)}; found: {', '.join(found)}")
    lq_clips = find_clips(lq_root) if lq_root is not None else None

    results: dict[str, ClipResult] = {}
    for name in tqdm(names, desc="eval", unit="clip", disable=not progress, file=sys.stderr):
        paths = list_frames(found[name])[:limit_frames]
        gt = mod_crop(read_frames(paths), scale)
        if lq_clips is not None:
            if name not in lq_clips:
                raise FileNotFoundError(f"clip {name} not found in {lq_root}")
            lq = _read_lq(name, list_frames(lq_clips[name])[:limit_frames], gt, scale)
        else:
            lq = degradations.degrade(gt.to(torch.float64) / 255, degradation, scale, bd_offset=bd_offset).float()
        out = to_uint8(method(lq))
        if out.shape != gt.shape:
            raise ValueError(f"{name}: the method returned {tuple(out.shape)}, expected {tuple(gt.shape)}")
        fp, fs = [], []
        for o, g in zip(out, gt):
            p, s = frame_metrics(o, g, channel, crop_border)
            fp.append(p)
            fs.append(s)
        results[name] = ClipResult(float(np.mean(fp)), float(np.mean(fs)), len(paths), fp, fs)
    return EvalResult(
        clips=results,
        method=method_name,
        degradation=degradation,
        channel=channel,
        crop_border=crop_border,
        scale=scale,
        dataset=str(gt_root),
        bd_offset=float(bd_offset),
    )
