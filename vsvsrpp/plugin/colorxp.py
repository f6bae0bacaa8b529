"""Colour arithmetic of the CUDA path, written once over an array namespace and checked on the CPU.

This module converts a frame's planes, in the clip's own format, to the network's float32 RGB
and back, with the same arithmetic as VapourSynth's ``core.resize`` (zimg) uses for
:func:`vsvsrpp.plugin.colors.to_rgb` / :func:`~vsvsrpp.plugin.colors.from_rgb`. Every function
takes and returns arrays of one namespace ``xp``: NumPy arrays on the CPU, CuPy arrays on the
GPU (chosen from the arrays themselves, :func:`array_namespace`; CuPy is imported only when a
CuPy array is passed, so importing this module never needs it). The plane transfer
(:class:`vsvsrpp.plugin.transfer.PlaneTransfer`) calls it on device buffers; the CPU filter path
keeps ``core.resize``.
``tests/test_colorxp.py`` checks it against ``core.resize`` on the CPU.

Conventions, all read in zimg's source (github.com/sekrit-twc/zimg, ``src/zimg``):

* **Sample values** (``depth/quantize.h``, ``integer_offset``/``integer_range``/
  ``get_scale_offset``): an integer sample ``x`` of depth ``d`` is read as
  ``(x - offset) / range``: luma/RGB/GRAY limited ``offset = 16 << (d-8)``,
  ``range = 219 << (d-8)``; full ``offset = 0``, ``range = 2**d - 1``; chroma
  ``offset = 1 << (d-1)`` and ``range = 224 << (d-8)`` limited (219 for YCgCo), ``2**d - 1``
  full. Float samples are taken as they are (luma in [0, 1], chroma in [-0.5, 0.5]); range does
  not apply to them. Scale and offset are float32 and applied in float32
  (``depth/depth_convert.cpp``, ``integer_to_float``).
* **Integer output** (``depth/dither.cpp``, ``dither_ordered`` with ``NoneDitherTable`` for
  ``dither="none"``): ``x * range + offset`` in float32, clamped to ``[0, 2**d - 1]``, rounded
  to nearest with ties to even (``lrint``).
* **Resampling in float**: zimg resizes chroma in float32 both ways here
  (``graph/graphbuilder.cpp``, ``choose_resize_format``: byte is never a resize format and the
  float 4:4:4 side is the larger one), so chroma is converted to float first on input, and
  quantized last on output.
* **Resampling filter** (``resize/filter.cpp``, ``compute_filter``, ``BicubicFilter``): bicubic
  with ``b = 0, c = 0.5`` (``core.resize.Bicubic``'s default); output sample ``i`` sits at
  ``pos = (i + 0.5) / scale + shift`` on the input grid (input sample ``j`` centred at
  ``j + 0.5``); the taps are the ``2 * ceil(support / min(scale, 1))`` input samples from
  ``round_halfup(pos - taps/2) + 0.5`` on (support 2), weighted by ``f((x - pos) * min(scale, 1))``
  (the filter widened by the factor when downscaling) and normalised to sum 1; taps beyond an
  edge are mirrored about the edge including the edge sample (``-1 -> 0``, ``n -> n - 1``), then
  clamped. A dimension whose size and shift do not change is not filtered
  (``resize/resize.cpp``, ``ResizeConversion::create``).
* **Chroma siting** (``graph/graphbuilder.cpp``, ``chroma_offset_w``/``chroma_offset_h``/
  ``apply_pixel_siting``/``resize_plane``): with ``s`` = chroma size / luma size, a chroma
  plane's active window starts at ``-offset`` chroma samples, ``offset_w = -0.5 + 0.5 s`` for
  left sited chroma (0 for centre), ``offset_h = -0.5 + 0.5 s`` for top, ``0.5 - 0.5 s`` for
  bottom (0 for centre). Upsampling uses ``shift = -offset``, downsampling
  ``shift = offset * luma / chroma`` (``shift = src.active_left - dst.active_left / scale``).
  VapourSynth's ``_ChromaLocation`` 0..5 are left, center, top-left, top, bottom-left, bottom.
* **Matrices** (``colorspace/colorspace_param.cpp``, ``ncl_rgb_to_yuv_matrix``; constants in
  ``colorspace_param.h``): ``Y = Kr R + Kg G + Kb B``, ``U = (B - Y) / (2 - 2 Kb)``,
  ``V = (R - Y) / (2 - 2 Kr)``; YUV to RGB is its inverse (double precision, applied in float32,
  ``colorspace/operation_impl.cpp``). ``Kr, Kb``: BT.709 (1) 0.2126, 0.0722 (ITU-R BT.709-6
  item 3.2); FCC (4) 0.30, 0.11; BT.470BG (5) and SMPTE 170M (6) 0.299, 0.114 (ITU-R BT.601-7
  item 2.5.1); SMPTE 240M (7) 0.212, 0.087; BT.2020 NCL (9) 0.2627, 0.0593 (ITU-R BT.2020-2
  table 4). YCgCo (8) is the fixed matrix of H.273 (``[[1/4, 1/2, 1/4], [-1/4, 1/2, -1/4],
  [1/2, 0, -1/2]]``).

* **Float arithmetic**: zimg's x86 kernels fuse multiply-adds (``_fma``: the matrix, the
  integer/float conversions, and each resampling pass as two FMA sums over even and odd taps);
  this module does the same (a float32 product is exact in float64, so ``_fma`` rounds once
  more only on rare ties). Measured against ``core.resize`` on an AVX-512 machine, every format
  and matrix of the tests is bit-exact; zimg's plain C kernels (no FMA) would differ by float32
  ulps and, at ties, one code value.

Not supported here (:class:`UnsupportedConversion`; the caller converts on the host with
``core.resize`` instead): the constant-luminance, chromaticity-derived and ICtCp matrices (10,
12, 13, 14), which go through linear light; the ``random`` and ``error_diffusion`` dithers
(``"none"``, rounding to nearest, and ``"ordered"`` are done here); interlaced (field) siting. RGB output is not clamped, as ``core.resize`` does not clamp float output (bicubic
overshoot and out-of-gamut YUV give values slightly outside [0, 1]).
"""

from __future__ import annotations

import dataclasses

import functools
import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import vapoursynth as vs

from .colors import RANGE_FULL, Colors, output_matrix

__all__ = [
    "GPU_MATRICES",
    "UnsupportedConversion",
    "array_namespace",
    "check_supported",
    "planes_to_rgb",
    "rgb_to_planes",
    "resample_weights",
]

#: The H.273 matrices converted here: BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M, YCgCo and
#: BT.2020 NCL, each a fixed 3x3 matrix on non-linear values.
GPU_MATRICES = (1, 4, 5, 6, 7, 8, 9)
MATRIX_YCGCO = 8

#: ``(Kr, Kb)`` of the Kr/Kb matrices (zimg ``colorspace_param.h``).
_KR_KB = {
    1: (0.2126, 0.0722),  # ITU-R BT.709
    4: (0.30, 0.11),  # FCC (47 CFR 73.682)
    5: (0.299, 0.114),  # ITU-R BT.470 System B/G = BT.601
    6: (0.299, 0.114),  # SMPTE 170M = BT.601
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # ITU-R BT.2020 non-constant luminance
}

#: The dithers done here: rounding to nearest, and zimg's ordered (Bayer 16x16) dither.
DITHERS = ("none", "ordered")

# _ChromaLocation -> (horizontal, vertical) siting: -1 left/top, 0 centre, +1 bottom.
_SITING = {0: (-1, 0), 1: (0, 0), 2: (-1, -1), 3: (0, -1), 4: (-1, 1), 5: (0, 1)}


class UnsupportedConversion(ValueError):
    """A conversion this module does not do; the caller converts on the host with ``core.resize``."""


def array_namespace(*arrays: Any) -> ModuleType:
    """The array module of ``arrays``: ``cupy`` if any is a CuPy array, else ``numpy``.

    Duck typing on the array's type (as ``cupy.get_array_module`` does), so CuPy is imported
    only when one of its arrays is passed.
    """
    for a in arrays:
        if type(a).__module__.split(".", 1)[0] == "cupy":
            import cupy  # noqa: PLC0415  (optional: only when a CuPy array is passed)

            return cupy
    return np


# ---------------------------------------------------------------------------------------------
# Resampling (zimg resize/filter.cpp)
# ---------------------------------------------------------------------------------------------


def _bicubic(x: np.ndarray, b: float = 0.0, c: float = 0.5) -> np.ndarray:
    """Mitchell-Netravali cubic ``(b, c)`` at ``x`` (zimg ``BicubicFilter``; support 2)."""
    x = np.abs(x)
    near = ((12 - 9 * b - 6 * c) * x**3 + (-18 + 12 * b + 6 * c) * x**2 + (6 - 2 * b)) / 6
    far = ((-b - 6 * c) * x**3 + (6 * b + 30 * c) * x**2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _round_halfup(x: np.ndarray) -> np.ndarray:
    """zimg's ``round_halfup``: keeps ``round(x - 1) == round(x) - 1`` on the pixel grid."""
    return np.where(x < 0, np.floor(x + 0.5), np.floor(x + 0.49999999999999994))


@functools.lru_cache(maxsize=64)
def resample_weights(src: int, dst: int, shift: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The bicubic (b=0, c=0.5) filter from ``src`` samples to ``dst`` samples, as zimg stores it.

    Args:
        src, dst: input and output sizes along the dimension.
        shift: position of the output window's start on the input grid, in input samples.
        width: the input extent the ``dst`` samples cover (``src`` unless cropping).

    Returns:
        ``(left, weight)``: ``(dst,)`` int64 first input index of each output sample's window and
        ``(dst, taps)`` float32 weights over the ``taps`` consecutive inputs from there, for
        ``out[i] = sum_k weight[i, k] * in[left[i] + k]``; host NumPy arrays (cached).

    Source: zimg ``resize/filter.cpp``: ``compute_filter`` (positions, mirrored edges, taps that
    land on one input summed) and ``matrix_to_filter`` (one window width for all rows, windows
    kept inside the input, float32 coefficients rounded with the error carried to the next).
    """
    scale = dst / width
    step = min(scale, 1.0)
    taps = max(math.ceil(2 / step) * 2, 1)
    pos = (np.arange(dst) + 0.5) / scale + shift
    xpos = (_round_halfup(pos - taps / 2) + 0.5)[:, None] + np.arange(taps)
    weight = _bicubic((xpos - pos[:, None]) * step)
    weight /= weight.sum(axis=1, keepdims=True)
    real = np.where(xpos < 0, -xpos, np.where(xpos >= src, 2.0 * src - xpos, xpos))
    index = np.floor(np.clip(real, 0.0, np.nextafter(src, -np.inf))).astype(np.int64)
    span = int((index.max(axis=1) - index.min(axis=1)).max()) + 1
    left = np.minimum(index.min(axis=1), src - span)
    dense = np.zeros((dst, span))
    for k in range(taps):  # in tap order, as zimg adds them
        dense[np.arange(dst), index[:, k] - left] += weight[:, k]
    out = np.empty((dst, span), np.float32)
    err = np.zeros(dst)
    for k in range(span):
        expected = dense[:, k] - err
        out[:, k] = expected
        err = out[:, k].astype(np.float64) - expected
    return left, out


def _resample(plane: Any, axis: int, dst: int, shift: float, width: float, xp: ModuleType) -> Any:
    """Resample float32 ``plane`` (``(..., h, w)``) along ``axis`` (-1 or -2) to ``dst`` samples.

    Accumulates as zimg's x86 float kernels do (``resize/x86/resize_impl_avx512.cpp``,
    ``resize_line_h_fp_avx512``/``resize_line_v_fp_avx512``): even taps and odd taps in two
    float32 sums of fused multiply-adds, added at the end.
    """
    src = plane.shape[axis]
    if src == dst and shift == 0 and width == src:
        return plane
    left, weight = resample_weights(src, dst, float(shift), float(width))
    left = xp.asarray(left)
    sums: list[Any] = [None, None]
    for k in range(weight.shape[1]):
        x = xp.take(plane, left + k, axis=axis)
        c = xp.asarray(weight[:, k] if axis == -1 else weight[:, k, None])
        sums[k % 2] = c * x if sums[k % 2] is None else _fma(c, x, sums[k % 2], xp)
    return sums[0] if sums[1] is None else sums[0] + sums[1]


def _resize(plane: Any, h: int, w: int, shift_h: float, shift_w: float, xp: ModuleType) -> Any:
    """Resample ``plane`` to ``h x w`` (``shift_*``: window start on the input grid), in zimg's
    order of the two passes (``resize/resize.cpp``, ``resize_h_first``: the cheaper first)."""
    xscale, yscale = w / plane.shape[-1], h / plane.shape[-2]
    h_first_cost = max(xscale, 1.0) * 2.0 + xscale * max(yscale, 1.0)
    v_first_cost = max(yscale, 1.0) + yscale * max(xscale, 1.0) * 2.0
    sw, sh = plane.shape[-1], plane.shape[-2]
    if h_first_cost < v_first_cost:
        return _resample(_resample(plane, -1, w, shift_w, sw, xp), -2, h, shift_h, sh, xp)
    return _resample(_resample(plane, -2, h, shift_h, sh, xp), -1, w, shift_w, sw, xp)


def _siting_offsets(chromaloc: int, sub_w: float, sub_h: float) -> tuple[float, float]:
    """Offset of the chroma samples from centred chroma, in chroma samples, ``(w, h)``.

    ``sub_w``, ``sub_h``: chroma size / luma size. Source: zimg ``graph/graphbuilder.cpp``,
    ``chroma_offset_w``/``chroma_offset_h``.
    """
    where_w, where_h = _SITING[chromaloc]
    return where_w * (0.5 - 0.5 * sub_w), where_h * (0.5 - 0.5 * sub_h)


def _chroma_to_luma(plane: Any, luma_h: int, luma_w: int, chromaloc: int, xp: ModuleType) -> Any:
    """Upsample a float chroma plane to the luma grid (zimg ``resize_plane``, 4:4:4 target)."""
    ch, cw = plane.shape[-2:]
    off_w, off_h = _siting_offsets(chromaloc, cw / luma_w, ch / luma_h)
    return _resize(plane, luma_h, luma_w, -off_h, -off_w, xp)


def _luma_to_chroma(plane: Any, chroma_h: int, chroma_w: int, chromaloc: int, xp: ModuleType) -> Any:
    """Downsample a float 4:4:4 chroma plane to the chroma grid (zimg ``resize_plane``)."""
    lh, lw = plane.shape[-2:]
    off_w, off_h = _siting_offsets(chromaloc, chroma_w / lw, chroma_h / lh)
    return _resize(plane, chroma_h, chroma_w, off_h * lh / chroma_h, off_w * lw / chroma_w, xp)


def _fma(a: Any, x: Any, c: Any, xp: ModuleType) -> Any:
    """``a * x + c`` rounded once to float32, as a fused multiply-add (zimg's x86 kernels fuse
    them): the float32 product is exact in float64, so only the sum is rounded (twice, which
    differs from one rounding only on rare ties)."""
    return (xp.asarray(a, dtype=xp.float64) * xp.asarray(x, dtype=xp.float64) + c).astype(xp.float32)


# ---------------------------------------------------------------------------------------------
# Sample values (zimg depth/quantize.h) and matrices (zimg colorspace/colorspace_param.cpp)
# ---------------------------------------------------------------------------------------------


def _scale_offset(bits: int, full: bool, chroma: bool, ycgco: bool = False) -> tuple[float, float]:
    """``(range, offset)`` of integer samples: value = ``(x - offset) / range`` (``quantize.h``)."""
    if full:
        return float(2**bits - 1), float(1 << (bits - 1)) if chroma else 0.0
    if chroma:
        return float((219 if ycgco else 224) << (bits - 8)), float(1 << (bits - 1))
    return float(219 << (bits - 8)), float(16 << (bits - 8))


def _to_float(plane: Any, fmt: vs.VideoFormat, full: bool, chroma: bool, ycgco: bool, xp: ModuleType) -> Any:
    """Integer or float samples as float32 values (luma/RGB [0, 1], chroma [-0.5, 0.5])."""
    if fmt.sample_type == vs.FLOAT:
        return xp.asarray(plane).astype(xp.float32, copy=False)
    rng, off = _scale_offset(fmt.bits_per_sample, full, chroma, ycgco)
    # zimg get_scale_offset: float32 scale and offset, x * scale + offset in float32
    return _fma(np.float32(1.0 / rng), xp.asarray(plane), np.float32(-off / rng), xp)


@functools.lru_cache(maxsize=1)
def _bayer_tables() -> np.ndarray:
    """zimg's ordered dither (``depth/dither.cpp``, ``BayerDitherTable``): ``(4, 16, 16)``
    float32 offsets in (-0.5, 0.5), one table per plane index modulo 4 (as is, mirrored left to
    right, upside down, transposed). The 16x16 Bayer index matrix is built from its 2x2 base
    ``[[0, 3], [2, 1]]``: bit ``k`` of the row and the column picks the base digit at place
    ``4**(3 - k)``; entry ``b`` becomes ``(b + 1) / 257 - 0.5`` in float32."""
    i, j = np.indices((16, 16))
    base = np.array([[0, 3], [2, 1]])
    index = sum(base[(i >> k) & 1, (j >> k) & 1] << (6 - 2 * k) for k in range(4))
    table = (index + 1).astype(np.float32) / np.float32(257) - np.float32(0.5)
    return np.stack([table, table[:, ::-1], table[::-1, :], table.T])


def _from_float(values: Any, fmt: vs.VideoFormat, full: bool, chroma: bool, ycgco: bool, xp: ModuleType,
                dither: str = "none", plane: int = 0) -> Any:  # fmt: skip
    """float32 values as samples of ``fmt``: integers rounded to nearest (ties to even) and
    clamped, after adding the ordered dither of output plane ``plane`` for ``dither="ordered"``."""
    if fmt.sample_type == vs.FLOAT:
        return values.astype(xp.float16 if fmt.bits_per_sample == 16 else xp.float32, copy=False)
    bits = fmt.bits_per_sample
    rng, off = _scale_offset(bits, full, chroma, ycgco)
    x = _fma(np.float32(rng), values, np.float32(off), xp)
    if dither == "ordered":
        h, w = x.shape[-2:]
        pattern = np.tile(_bayer_tables()[plane % 4], (-(-h // 16), -(-w // 16)))[:h, :w]
        x = x + xp.asarray(pattern)
    x = xp.rint(xp.clip(x, np.float32(0), np.float32(2**bits - 1)))
    return x.astype(xp.uint8 if bits <= 8 else xp.uint16)


@functools.lru_cache(maxsize=16)
def rgb_to_yuv_matrix(matrix: int) -> np.ndarray:
    """The ``(3, 3)`` float64 RGB to YUV matrix of H.273 ``matrix`` (zimg ``ncl_rgb_to_yuv_matrix``)."""
    if matrix == MATRIX_YCGCO:
        return np.array([[0.25, 0.5, 0.25], [-0.25, 0.5, -0.25], [0.5, 0.0, -0.5]])
    kr, kb = _KR_KB[matrix]
    kg = 1.0 - kr - kb
    u, v = 1.0 / (2.0 - 2.0 * kb), 1.0 / (2.0 - 2.0 * kr)
    return np.array([[kr, kg, kb], [-kr * u, -kg * u, (1.0 - kb) * u], [(1.0 - kr) * v, -kg * v, -kb * v]])


def _apply_matrix(m: np.ndarray, a: Any, b: Any, c: Any, xp: ModuleType) -> list[Any]:
    """``m @ (a, b, c)`` per pixel with float32 coefficients, in zimg's order: ``m0 a``, then two
    fused multiply-adds (``colorspace/x86/operation_impl_avx2.cpp``, ``matrix_filter_line_avx2``)."""
    m32 = m.astype(np.float32)
    return [_fma(m32[r, 2], c, _fma(m32[r, 1], b, m32[r, 0] * a, xp), xp) for r in range(3)]


# ---------------------------------------------------------------------------------------------
# The conversions
# ---------------------------------------------------------------------------------------------


def check_supported(fmt: vs.VideoFormat, colors: Colors, dither: str = "none") -> None:
    """Raise :class:`UnsupportedConversion` unless this module converts ``fmt`` with ``colors``.

    Supported: YUV of matrix 1, 4, 5, 6, 7, 8 or 9, GRAY and RGB, 8-16 bit integer or 16/32 bit
    float, any subsampling zimg accepts, progressive chroma locations 0-5, ``dither`` one of
    :data:`DITHERS`.
    """
    if fmt.color_family == vs.YUV:
        if colors.matrix not in GPU_MATRICES:
            raise UnsupportedConversion(
                f"matrix {colors.matrix} is converted through linear light (constant luminance, "
                f"chromaticity-derived or ICtCp); only matrices {GPU_MATRICES} are converted on the device: "
                "convert on the host with core.resize"
            )
        if colors.chromaloc not in _SITING:
            raise UnsupportedConversion(f"chroma location {colors.chromaloc} is not one of 0..5")
    elif fmt.color_family not in (vs.RGB, vs.GRAY):
        raise UnsupportedConversion(f"{fmt.name} is not a YUV, RGB or GRAY format")
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        raise UnsupportedConversion(f"{fmt.name}: {fmt.bits_per_sample}-bit integer samples are not supported")
    if dither not in DITHERS:
        raise UnsupportedConversion(
            f'dither="{dither}" is not done on the device (only {", ".join(DITHERS)}): '
            "convert on the host with core.resize"
        )


def planes_to_rgb(planes: Sequence[Any], fmt: vs.VideoFormat, colors: Colors) -> Any:
    """A frame's planes in their own format as the network's RGB (like ``colors.to_rgb``).

    Args:
        planes: the frame's planes, each ``(..., h_p, w_p)`` at its own size (YUV chroma
            subsampled by ``fmt``), dtype uint8 (8 bit), uint16 (9-16 bit), float16 or float32,
            NumPy or CuPy (all of one kind).
        fmt: the planes' VapourSynth format (YUV, RGB or GRAY).
        colors: how to read them: ``matrix`` (YUV), ``range`` (integer samples: 0 limited,
            1 full), ``chromaloc`` (subsampled YUV, ``_ChromaLocation`` 0..5).

    Returns:
        ``(..., 3, h, w)`` float32 RGB of the same namespace, nominally in [0, 1] (not clamped:
        bicubic overshoot and out-of-gamut YUV go slightly beyond, as with ``core.resize``).
        GRAY is repeated into the three channels.

    Raises:
        UnsupportedConversion: see :func:`check_supported`.
    """
    check_supported(fmt, colors)
    xp = array_namespace(*planes)
    full = colors.range == RANGE_FULL
    if fmt.color_family == vs.GRAY:
        y = _to_float(planes[0], fmt, full, False, False, xp)
        return xp.stack([y, y, y], axis=-3)
    if fmt.color_family == vs.RGB:
        return xp.stack([_to_float(p, fmt, full, False, False, xp) for p in planes[:3]], axis=-3)
    ycgco = colors.matrix == MATRIX_YCGCO
    y = _to_float(planes[0], fmt, full, False, ycgco, xp)
    h, w = y.shape[-2:]
    uv = [_chroma_to_luma(_to_float(p, fmt, full, True, ycgco, xp), h, w, colors.chromaloc, xp) for p in planes[1:3]]
    return xp.stack(_apply_matrix(np.linalg.inv(rgb_to_yuv_matrix(colors.matrix)), y, *uv, xp=xp), axis=-3)


def rgb_to_planes(rgb: Any, fmt: vs.VideoFormat, colors: Colors, dither: str = "none") -> list[Any]:
    """The network's RGB as a frame's planes in ``fmt`` (like ``colors.from_rgb``).

    Args:
        rgb: ``(..., 3, h, w)`` float32 RGB (NumPy or CuPy), nominally in [0, 1].
        fmt: the output format: YUV (any subsampling that divides ``h``, ``w``), RGB or GRAY,
            8-16 bit integer or 16/32 bit float.
        colors: the source's colours: YUV output uses its ``matrix`` (BT.601/BT.709 by size when
            ``None``, as ``colors.from_rgb``), ``range`` and ``chromaloc``; integer RGB output is
            full range unless the source was RGB; GRAY output is the mean of R, G and B in the
            source's range.
        dither: ``"none"`` (round to nearest, ties to even, as zimg's ``lrint``) or
            ``"ordered"`` (zimg's Bayer dither added before rounding).

    Returns:
        The planes, each ``(..., h_p, w_p)``: uint8 (8 bit), uint16 (9-16 bit), float16 or
        float32; integer samples clamped to ``[0, 2**bits - 1]``.

    Raises:
        UnsupportedConversion: see :func:`check_supported`.
    """
    xp = array_namespace(rgb)
    h, w = rgb.shape[-2:]
    r, g, b = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    if fmt.color_family == vs.YUV and colors.matrix is None:
        colors = dataclasses.replace(colors, matrix=output_matrix(colors, w, h))
    check_supported(fmt, colors, dither)
    if fmt.color_family == vs.GRAY:
        # colors.from_rgb's std.Expr "x y + z + 3 /" (measured: Expr multiplies by the float32 1/3)
        return [_from_float((r + g + b) * np.float32(1 / 3), fmt, colors.range == RANGE_FULL, False, False, xp, dither)]
    if fmt.color_family == vs.RGB:
        full = colors.range == RANGE_FULL or not (fmt.sample_type == vs.INTEGER and colors.family == vs.RGB)
        return [_from_float(c, fmt, full, False, False, xp, dither, p) for p, c in enumerate((r, g, b))]
    ycgco = colors.matrix == MATRIX_YCGCO
    full = colors.range == RANGE_FULL
    y, u, v = _apply_matrix(rgb_to_yuv_matrix(colors.matrix), r, g, b, xp)
    ch, cw = h >> fmt.subsampling_h, w >> fmt.subsampling_w
    uv = [_luma_to_chroma(c, ch, cw, colors.chromaloc, xp) for c in (u, v)]
    return [_from_float(y, fmt, full, False, ycgco, xp, dither)] + [_from_float(c, fmt, full, True, ycgco, xp, dither, p)
                                                                     for p, c in enumerate(uv, 1)]  # fmt: skip
