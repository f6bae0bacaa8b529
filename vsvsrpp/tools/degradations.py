"""The degradations of the video super-resolution benchmarks, reproduced in torch.

* **BI** (bicubic): MATLAB ``imresize(img, 1/4, 'bicubic')`` — Keys' cubic kernel with
  ``a = -0.5``, widened by ``1/scale`` when downsampling (antialiasing), MATLAB's output-to-input
  index mapping ``u = x/s + 0.5 (1 - 1/s)`` (1-based) and symmetric (half-sample mirror)
  boundary handling. Used by REDS4, Vimeo-90K-T (BI) and Vid4 (BI) in BasicVSR/BasicVSR++.
* **BD** (blur-down): a 13x13 Gaussian blur with sigma 1.6 (``fspecial('gaussian', 13, 1.6)``),
  then every 4th pixel. Used by UDM10, Vimeo-90K-T (BD) and Vid4 (BD). The sampling phase and
  the border handling were fixed by reproducing the official Vid4 ``BDx4`` frames of
  ``calendar`` (see :data:`BD_OFFSET` and :data:`BD_PADDING`). Those files are truncated to 8
  bits (a least-squares fit of them gives this kernel plus a constant -0.50 level); ours are
  rounded by default, ``rounding="floor"`` imitates the files.

Everything here is linear and separable and is computed as two small matrix products in
float64, so results do not depend on the device or on the order of the two passes.

References:
    R. Keys, "Cubic convolution interpolation for digital image processing", IEEE TASSP 1981.
    MATLAB ``imresize`` documentation (``'bicubic'``, ``'Antialiasing'``).
    K. C. K. Chan et al., "BasicVSR" (CVPR 2021) and "BasicVSR++" (CVPR 2022), experiments (datasets).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = [
    "BD_KERNEL_SIZE",
    "BD_OFFSET",
    "BD_OFFSET_CENTRED",
    "BD_PADDING",
    "BD_SIGMA",
    "DEGRADATIONS",
    "blur_downsample",
    "cubic",
    "degrade",
    "gaussian_kernel1d",
    "imresize",
    "imresize_matrix",
    "quantize",
]

#: Names accepted by :func:`degrade`.
DEGRADATIONS = ("bi", "bd")

BD_SIGMA = 1.6
BD_KERNEL_SIZE = 13
#: Position (0-based, in GT pixels) of the kept pixel in each block of 4 after blurring: LR pixel
#: ``i`` is the blurred GT pixel ``4 i``. Found by reproducing the official Vid4 BDx4 calendar
#: frames: the other three phases miss them by tens of levels (tests/test_evaluate.py).
BD_OFFSET = 0
#: The other phase in use: the blur centred on each 4x4 block (``4 i + 1.5``, where MATLAB's
#: ``imresize`` puts an LR pixel too). BasicSR's BasicVSR BD checkpoint was trained on it: on Vid4
#: it scores best at this offset (tried 0 to 2 px, finest steps 1/8 px) and reproduces its
#: published 27.96 dB there (README, Evaluation).
BD_OFFSET_CENTRED = 1.5
#: How the blur sees past the border: the edge pixel repeated. Mirrored borders ("reflect",
#: "symmetric") miss the published frames by tens of levels along the border; "replicate"
#: matches there as well as inside (max 2 levels, the files being truncated, not rounded).
BD_PADDING = "replicate"


def cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (MATLAB ``imresize``'s ``'bicubic'``; ``a = -0.5``).

    ``k(x) = (a+2)|x|^3 - (a+3)|x|^2 + 1`` for ``|x| <= 1``,
    ``a|x|^3 - 5a|x|^2 + 8a|x| - 4a`` for ``1 < |x| <= 2``, and 0 beyond.

    Args:
        x: any float tensor (distances in samples).
        a: the free parameter; -0.5 is MATLAB's (and Keys' third-order accurate choice).

    Returns:
        Tensor of the same shape and dtype.
    """
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _imresize_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    kernel_width = 4.0
    if scale < 1 and antialias:
        # Widen the kernel by 1/scale and lower its height, so it also low-pass filters.
        def kernel(x: torch.Tensor) -> torch.Tensor:
            return scale * cubic(scale * x)

        kernel_width /= scale
    else:
        kernel = cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # input coordinate (1-based) of each output sample
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric boundary: index sequence 1..n, n..1 repeated (the edge sample is duplicated).
    period = 2 * in_len
    idx = torch.remainder(indices.long() - 1, period)
    idx = torch.where(idx < in_len, idx, period - 1 - idx)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    matrix.scatter_add_(1, idx, weights)
    return matrix


def imresize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> torch.Tensor:
    """The 1-D resampling operator of MATLAB ``imresize(..., 'bicubic')`` as a dense matrix.

    Row ``i`` holds the weights that output sample ``i`` gives to each input sample, with the
    mirrored out-of-range taps folded back onto the samples they read (so rows sum to 1).

    Args:
        in_len, out_len: input and output lengths (MATLAB: ``out_len = ceil(scale * in_len)``).
        scale: output/input scale factor used for the kernel and the index mapping.
        antialias: widen the kernel when downsampling (MATLAB's default ``'Antialiasing', true``).

    Returns:
        ``(out_len, in_len)`` float64 tensor (cached; do not modify it in place).
    """
    if in_len < 1 or out_len < 1 or scale <= 0:
        raise ValueError(f"bad resize: {in_len} -> {out_len} at scale {scale}")
    return _imresize_matrix(int(in_len), int(out_len), float(scale), bool(antialias))


def imresize(
    img: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB ``imresize(img, scale, 'bicubic')`` on the last two dimensions.

    Computed in float64 without intermediate rounding (as MATLAB does for ``double`` input);
    the result is not clamped (bicubic over/undershoots). Round with :func:`quantize` to get
    what MATLAB's ``imwrite`` would store.

    Args:
        img: ``(..., h, w)`` float tensor, any range (usually RGB in [0, 1]).
        scale: factor for both dimensions (e.g. ``1/4`` or ``4``); output size
            ``ceil(scale * h) x ceil(scale * w)`` as in MATLAB.
        size: ``(out_h, out_w)`` instead of ``scale``; the per-axis scale is then
            ``out/in`` (MATLAB's behaviour when given an output size).
        antialias: see :func:`imresize_matrix`.

    Returns:
        ``(..., out_h, out_w)`` tensor of ``img``'s dtype on ``img``'s device.

    Raises:
        ValueError: unless exactly one of ``scale`` and ``size`` is given.
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")
    h, w = img.shape[-2:]
    if scale is not None:
        out_h, out_w = math.ceil(scale * h - 1e-9), math.ceil(scale * w - 1e-9)
        sh = sw = float(scale)
    else:
        out_h, out_w = int(size[0]), int(size[1])
        sh, sw = out_h / h, out_w / w
    mh = imresize_matrix(h, out_h, sh, antialias).to(img.device)
    mw = imresize_matrix(w, out_w, sw, antialias).to(img.device)
    x = img.to(torch.float64)
    x = torch.matmul(mh, x)  # (..., out_h, w)
    x = torch.matmul(x, mw.T)  # (..., out_h, out_w)
    return x.to(img.dtype)


def gaussian_kernel1d(size: int = BD_KERNEL_SIZE, sigma: float = BD_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian; its outer product with itself is MATLAB's
    ``fspecial('gaussian', size, sigma)``.

    Returns:
        ``(size,)`` float64 tensor summing to 1.
    """
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


@lru_cache(maxsize=64)
def _blur_down_matrix(in_len: int, scale: int, size: int, sigma: float, offset: float, padding: str) -> torch.Tensor:
    # Each LR sample is a Gaussian centred at scale*i + offset (a fraction of a pixel allowed),
    # over the taps within size/2 of the centre (the size taps of fspecial for a whole offset),
    # normalised per sample.
    out_len = in_len // scale
    centres = torch.arange(out_len, dtype=torch.float64) * scale + offset
    first = torch.ceil(centres - size / 2)
    taps_f = first[:, None] + torch.arange(size + 1, dtype=torch.float64)[None, :]
    inside = (taps_f - centres[:, None]).abs() <= size / 2
    k = torch.exp(-((taps_f - centres[:, None]) ** 2) / (2 * sigma * sigma)) * inside
    k = k / k.sum(dim=1, keepdim=True)
    taps = taps_f.long()
    if padding == "replicate":
        idx = taps.clamp(0, in_len - 1)
    elif padding == "reflect":  # mirror without repeating the edge sample
        period = 2 * (in_len - 1)
        idx = torch.remainder(taps, period)
        idx = torch.where(idx < in_len, idx, period - idx)
    elif padding == "symmetric":  # mirror repeating the edge sample
        period = 2 * in_len
        idx = torch.remainder(taps, period)
        idx = torch.where(idx < in_len, idx, period - 1 - idx)
    elif padding == "zeros":
        idx = taps.clamp(0, in_len - 1)
    else:
        raise ValueError(f"unknown padding {padding!r}")
    w = k
    if padding == "zeros":
        w = w * ((taps >= 0) & (taps < in_len))
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    matrix.scatter_add_(1, idx, w)
    return matrix


def blur_downsample(
    img: torch.Tensor,
    scale: int = 4,
    sigma: float = BD_SIGMA,
    kernel_size: int = BD_KERNEL_SIZE,
    offset: float = BD_OFFSET,
    padding: str = BD_PADDING,
) -> torch.Tensor:
    """BD degradation: Gaussian blur, then keep every ``scale``-th pixel.

    ``out[i, j] = sum_{dy,dx} g[dy] g[dx] img[pad(s*i + offset + dy), pad(s*j + offset + dx)]``
    with ``g`` = :func:`gaussian_kernel1d` (``dy, dx`` in ``-6..6`` for 13 taps) and ``pad`` the
    border rule. The defaults reproduce the official Vid4 BDx4 calendar frames to within 2
    levels after 8-bit quantization (12.5% of values differ when truncated like the files, 49%
    when rounded).

    A fractional ``offset`` samples between pixels: the Gaussian is centred at ``s*i + offset``
    and evaluated at the pixels within ``kernel_size / 2`` of it (14 taps at a half-pixel
    offset), normalised. :data:`BD_OFFSET_CENTRED` (1.5 at 4x) centres it on each block of
    ``scale`` pixels.

    Args:
        img: ``(..., h, w)`` float tensor (usually RGB in [0, 1]).
        scale: subsampling factor.
        sigma, kernel_size: the Gaussian (1.6 and 13 in the benchmarks).
        offset: 0-based position (GT pixels, fractions allowed) of the kept sample within each
            block of ``scale``: :data:`BD_OFFSET` (0, the official Vid4 BDx4 files) or
            :data:`BD_OFFSET_CENTRED` (1.5, BasicSR's BD training data).
        padding: ``"replicate"``, ``"reflect"``, ``"symmetric"`` or ``"zeros"``.

    Returns:
        ``(..., h // scale, w // scale)`` tensor of ``img``'s dtype (not rounded).
    """
    if not 0 <= offset < scale:
        raise ValueError(f"offset must be in [0, {scale}), got {offset}")
    h, w = img.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"image of {h}x{w} is smaller than the scale {scale}")
    mh = _blur_down_matrix(h, scale, kernel_size, float(sigma), float(offset), padding).to(img.device)
    mw = _blur_down_matrix(w, scale, kernel_size, float(sigma), float(offset), padding).to(img.device)
    x = img.to(torch.float64)
    x = torch.matmul(torch.matmul(mh, x), mw.T)
    return x.to(img.dtype)


def quantize(img: torch.Tensor, mode: str = "round") -> torch.Tensor:
    """Bring values in [0, 1] to 8-bit levels, as saving to an 8-bit PNG does.

    Args:
        img: float tensor, nominally in [0, 1] (clamped first).
        mode: ``"round"`` (``round(255 x) / 255``, what MATLAB's ``imwrite`` does) or
            ``"floor"`` (truncation, ``floor(255 x) / 255``, what a bare ``astype(uint8)``
            does; the published Vid4 BDx4 files look truncated, see tests/test_evaluate.py).

    Returns:
        Float tensor of the same shape and dtype with values in ``{0, 1/255, ..., 1}``.
    """
    x = img.clamp(0, 1) * 255
    if mode == "round":
        x = torch.round(x)
    elif mode == "floor":
        x = torch.floor(x)
    else:
        raise ValueError(f"unknown quantization mode {mode!r}; expected 'round' or 'floor'")
    return x / 255


def degrade(img: torch.Tensor, kind: str, scale: int = 4, rounding: str | None = "round", bd_offset: float = BD_OFFSET) -> torch.Tensor:
    """Make the low-resolution input of a benchmark from ground-truth frames.

    Args:
        img: ``(..., h, w)`` float RGB in [0, 1]; ``h`` and ``w`` multiples of ``scale``
            (crop the ground truth first, see :func:`vsvsrpp.tools.evaluate.mod_crop`).
        kind: ``"bi"`` (MATLAB bicubic) or ``"bd"`` (Gaussian blur + subsampling).
        scale: downscaling factor (4 in the benchmarks).
        rounding: ``"round"`` (default) or ``"floor"`` to 8-bit levels (see :func:`quantize`),
            or ``None`` to keep the exact values.
        bd_offset: BD's sampling phase in GT pixels (``offset`` of :func:`blur_downsample`);
            ignored by BI.

    Returns:
        ``(..., h // scale, w // scale)`` float tensor of ``img``'s dtype.

    Raises:
        ValueError: for an unknown ``kind`` or sizes that are not multiples of ``scale``.
    """
    h, w = img.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"frame size {w}x{h} is not a multiple of the scale {scale}; crop it first")
    if kind == "bi":
        out = imresize(img, scale=1 / scale)
    elif kind == "bd":
        out = blur_downsample(img, scale, offset=bd_offset)
    else:
        raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(DEGRADATIONS)}")
    return out if rounding is None else quantize(out, rounding)
