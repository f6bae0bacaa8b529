"""Colour: how a clip's pixels are to be read, and the conversions to and from the network's RGB.

One class, :class:`Colors`, holds a clip's matrix, range, chroma location, primaries and
transfer (ITU-T H.273 codes, read from frame properties); one guesser,
:func:`guess_matrix`, supplies the matrix of untagged YUV from the frame size. The filter and
the file pipeline both use them; :mod:`vsvsrpp.pipeline.ffmpeg` turns them into ffmpeg's tags.

``_Range`` (R74+) and zimg count 0 = limited, 1 = full; the deprecated ``_ColorRange`` counts the
other way round and is read as a fallback. ``core.resize`` lets frame properties override its
``matrix_in``/``range_in``/``chromaloc_in`` arguments, so the conversions write the resolved
colours into the properties (:func:`tag`) before converting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

from .params import DITHER_TYPES  # noqa: F401  (re-exported: the dither types of core.resize)

#: H.273 colour primaries and transfer codes the package passes on (unspecified, reserved and
#: unknown codes are dropped); :mod:`vsvsrpp.pipeline.ffmpeg` names each for ffmpeg.
PRIMARIES_CODES = frozenset({1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 22})
TRANSFER_CODES = frozenset({1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})

MATRIX_RGB = 0
MATRIX_BT709 = 1
MATRIX_UNSPECIFIED = 2
MATRIX_BT601 = 6  # SMPTE 170M
RANGE_LIMITED = 0  # VapourSynth's _Range and zimg's range: 0 limited, 1 full
RANGE_FULL = 1
CHROMALOC_LEFT = 0
TRANSFER_PQ, TRANSFER_HLG = 16, 18

#: H.273 matrix codes that zimg converts YUV with: BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M,
#: YCgCo, BT.2020 NCL/CL, chromaticity-derived NCL/CL, ICtCp (0, "RGB", is not a YUV matrix).
SUPPORTED_MATRICES = (1, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14)


def _prop_int(props: Mapping[str, Any], key: str) -> int | None:
    value = props.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def guess_matrix(width: int, height: int) -> int | None:
    """The matrix implied by a standard frame size, for untagged YUV: BT.601 (6) for SD
    (at most 1024x576), BT.709 (1) for HD and larger (at least 1280 wide or 720 tall), ``None``
    for sizes in between, where guessing would be a coin toss."""
    if width <= 1024 and height <= 576:
        return MATRIX_BT601
    if width >= 1280 or height >= 720:
        return MATRIX_BT709
    return None


def source_range(props: Mapping[str, Any], is_rgb: bool = False) -> int:
    """The pixel range in ``_Range``/zimg convention (0 limited, 1 full).

    Reads ``_Range``; falls back to the deprecated ``_ColorRange``, whose values are the other
    way round (0 full, 1 limited); defaults to full for RGB and limited otherwise.
    """
    value = _prop_int(props, "_Range")
    if value in (RANGE_LIMITED, RANGE_FULL):
        return value
    legacy = _prop_int(props, "_ColorRange")
    if legacy == 0:
        return RANGE_FULL
    if legacy == 1:
        return RANGE_LIMITED
    return RANGE_FULL if is_rgb else RANGE_LIMITED


def source_chromaloc(props: Mapping[str, Any]) -> int:
    """The chroma location (``_ChromaLocation``, 0..5); left (0, MPEG-2 style) when absent."""
    value = _prop_int(props, "_ChromaLocation")
    if value is not None and 0 <= value <= 5:  # H.273 chroma sample locations (left .. bottom)
        return value
    return CHROMALOC_LEFT


def output_matrix(colors: "Colors", width: int, height: int) -> int:
    """The matrix a YUV output of ``width`` x ``height`` is written with: ``colors``' own, else
    (a source that was not YUV) the one of the standard size (:func:`guess_matrix`), else BT.709."""
    return colors.matrix if colors.matrix is not None else guess_matrix(width, height) or MATRIX_BT709


def check_matrix(matrix: int, transfer: int | None, primaries: int | None) -> None:
    """Raise ``ValueError`` (saying what to set) unless zimg can convert YUV of ``matrix``.

    The constant-luminance and chromaticity-derived matrices convert through linear light:
    BT.2020 CL (10) needs the transfer, chromaticity-derived NCL (12) the primaries, CL (13)
    both, and ICtCp (14) a PQ (16) or HLG (18) transfer.
    """
    if matrix not in SUPPORTED_MATRICES:
        raise ValueError(
            f"matrix {matrix} is not a YUV matrix zimg can convert (supported: {', '.join(map(str, SUPPORTED_MATRICES))}); "
            "set the right one with matrix=N or core.std.SetFrameProps(clip, _Matrix=N)"
        )
    needs = []
    if matrix in (10, 13) and transfer is None:
        needs.append("its transfer characteristics (_Transfer)")
    if matrix in (12, 13) and primaries is None:
        needs.append("its primaries (_Primaries)")
    if matrix == 14 and transfer not in (TRANSFER_PQ, TRANSFER_HLG):
        needs.append(f"a PQ (16) or HLG (18) transfer (_Transfer, got {transfer})")
    if needs:
        raise ValueError(
            f"matrix {matrix} converts through linear light and needs {' and '.join(needs)}; set them with "
            "core.std.SetFrameProps(clip, _Transfer=..., _Primaries=...)"
        )


def format_problem(fmt: vs.VideoFormat | None) -> str | None:
    """Why a format cannot be converted to or from the network's RGB, or ``None`` if it can:
    YUV, RGB and GRAY at 8-16 bit integer or 16/32 bit float."""
    if fmt is None or fmt.id == vs.NONE or fmt.color_family not in (vs.YUV, vs.RGB, vs.GRAY):
        name = "a variable format" if fmt is None or fmt.id == vs.NONE else fmt.name
        return f"{name} is not a constant YUV, RGB or GRAY format"
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        return f"{fmt.name} has {fmt.bits_per_sample}-bit integer samples; 8 to 16 bits are supported"
    if fmt.sample_type == vs.FLOAT and fmt.bits_per_sample not in (16, 32):
        return f"{fmt.name} has {fmt.bits_per_sample}-bit float samples; 16 or 32 bits are supported"
    return None


@dataclass(frozen=True)
class Colors:
    """How a clip's pixels are read into RGB and written back (H.273 codes).

    Attributes:
        family: ``vs.YUV``, ``vs.RGB`` or ``vs.GRAY``.
        matrix: the YUV matrix, ``None`` for RGB and GRAY.
        range: 0 limited, 1 full (``_Range`` convention).
        chromaloc: ``_ChromaLocation`` of subsampled YUV (0 = left).
        primaries, transfer: ``_Primaries``/``_Transfer`` when specified, else ``None``.
        matrix_guessed: the matrix came from :func:`guess_matrix` (or the fallback), not a
            property or an explicit argument.
    """

    family: vs.ColorFamily
    matrix: int | None
    range: int
    chromaloc: int
    primaries: int | None = None
    transfer: int | None = None
    matrix_guessed: bool = False

    @classmethod
    def from_props(
        cls,
        props: Mapping[str, Any],
        family: vs.ColorFamily,
        width: int,
        height: int,
        matrix: int | None = None,
        fallback_matrix: int | None = None,
    ) -> Colors:
        """Read colours from frame properties.

        Args:
            props: the properties of a frame (the first, for a clip).
            family: the clip's colour family.
            width, height: the frame size (decides the guessed matrix of untagged YUV).
            matrix: an explicit matrix that overrides ``_Matrix``.
            fallback_matrix: the matrix to assume for untagged YUV of a size
                :func:`guess_matrix` does not decide (``None``: raise instead).

        Raises:
            ValueError: an untagged YUV matrix that cannot be guessed, or a matrix zimg cannot
                convert (the message says what to pass).
        """
        primaries, transfer = _prop_int(props, "_Primaries"), _prop_int(props, "_Transfer")
        primaries = primaries if primaries in PRIMARIES_CODES else None
        transfer = transfer if transfer in TRANSFER_CODES else None
        if family != vs.YUV:
            return cls(family, None, source_range(props, is_rgb=family == vs.RGB), CHROMALOC_LEFT, primaries, transfer)
        guessed = False
        if matrix is None:
            matrix = _prop_int(props, "_Matrix")
            if matrix is None or matrix == MATRIX_UNSPECIFIED:
                matrix, guessed = guess_matrix(width, height) or fallback_matrix, True
                if matrix is None:
                    raise ValueError(
                        f"the clip's matrix is unspecified (no _Matrix property) and {width}x{height} "
                        "is not a standard SD or HD size; pass matrix=1 (BT.709), 6 (BT.601) or 9 (BT.2020), "
                        "or set the property with core.std.SetFrameProps(clip, _Matrix=1)"
                    )
        check_matrix(matrix, transfer, primaries)
        return cls(family, matrix, source_range(props), source_chromaloc(props), primaries, transfer, guessed)

    @classmethod
    def from_video(cls, clip: vs.VideoNode, matrix: int | None = None, fallback_matrix: int | None = None) -> Colors:
        """:meth:`from_props` with the properties of the clip's first frame.

        Raises:
            ValueError: see :meth:`from_props`.
        """
        return cls.from_props(
            clip.get_frame(0).props, clip.format.color_family, clip.width, clip.height, matrix, fallback_matrix
        )


# ---------------------------------------------------------------------------------------------
# Conversions between any VapourSynth clip and the network's float RGB
# ---------------------------------------------------------------------------------------------


def tag(clip: vs.VideoNode, matrix: int | None, range_: int, chromaloc: int | None) -> vs.VideoNode:
    """Write the colour properties ``core.resize`` will read onto every frame.

    ``core.resize`` lets frame properties override its ``matrix_in``/``range_in``/
    ``chromaloc_in`` arguments, so an interpretation that differs from the properties (an
    explicit matrix, a guessed one for ``_Matrix = 2``, the legacy ``_ColorRange``) must be
    written into the properties to take effect. ``None`` leaves a property untouched.
    """
    props: dict[str, int] = {"_Range": range_}
    if matrix is not None:
        props["_Matrix"] = matrix
    if chromaloc is not None:
        props["_ChromaLocation"] = chromaloc
    return vs.core.std.SetFrameProps(vs.core.std.RemoveFrameProps(clip, "_ColorRange"), **props)


def to_rgb(clip: vs.VideoNode, colors: Colors) -> vs.VideoNode:
    """Convert any constant-format clip to the network's RGB: RGBH stays RGBH, all else RGBS.

    YUV is converted with the clip's matrix, range and chroma location (bicubic chroma
    upsampling); GRAY is repeated into three planes; integer RGB is scaled to [0, 1]. Frame
    properties are carried over, with the colour ones rewritten for RGB by ``core.resize``.
    """
    core = vs.core
    fmt = clip.format
    if fmt.id in (vs.RGBS, vs.RGBH):
        rgb = clip
    elif fmt.color_family == vs.GRAY:
        gray = core.std.RemoveFrameProps(clip, ["_Matrix", "_ChromaLocation"])
        gray = core.resize.Point(tag(gray, None, colors.range, None), format=vs.GRAYS, range=RANGE_FULL)
        rgb = core.std.ShufflePlanes([gray] * 3, [0, 0, 0], vs.RGB)
    elif fmt.color_family == vs.RGB:
        rgb = core.resize.Point(tag(clip, 0, colors.range, None), format=vs.RGBS, range=RANGE_FULL)
    else:
        rgb = core.resize.Bicubic(tag(clip, colors.matrix, colors.range, colors.chromaloc), format=vs.RGBS)
    # whatever the input claimed, the RGB stage is described as RGB (zimg refuses RGB frames
    # that carry a YUV matrix when converting the result)
    return core.std.SetFrameProps(core.std.RemoveFrameProps(rgb, ["_ChromaLocation", "_ColorRange"]), _Matrix=0, _Range=RANGE_FULL)


def from_rgb(clip: vs.VideoNode, fmt: vs.VideoFormat, colors: Colors, dither: str = "none") -> vs.VideoNode:
    """Convert the network's float RGB output to ``fmt`` (a VapourSynth format).

    YUV outputs use ``colors`` (the source's matrix, range and chroma location; BT.709/BT.601
    by size when the source was not YUV); GRAY outputs the mean of R, G and B, in the source's
    range, with no ``_Matrix`` (a GRAY clip has none). Integer RGB is full range, as
    ``core.resize`` makes it from YUV, unless the source was RGB of another range (kept). Integer
    outputs are rounded to nearest (``dither="none"``) or dithered, never truncated.
    """
    core = vs.core
    if clip.format.id == fmt.id:
        return clip
    if fmt.color_family == vs.GRAY:
        planes = [core.std.ShufflePlanes(clip, p, vs.GRAY) for p in range(3)]
        mean = core.std.Expr(planes, "x y + z + 3 /", format=vs.GRAYS)
        gray = core.resize.Point(mean, format=fmt.id, range_in=RANGE_FULL, range=colors.range, dither_type=dither)
        return core.std.RemoveFrameProps(gray, ["_Matrix", "_ChromaLocation"])
    if fmt.color_family == vs.RGB:
        keep = fmt.sample_type == vs.INTEGER and colors.family == vs.RGB
        rng = colors.range if keep else RANGE_FULL
        return core.resize.Point(clip, format=fmt.id, range_in=RANGE_FULL, range=rng, dither_type=dither)
    matrix = output_matrix(colors, clip.width, clip.height)
    return core.resize.Bicubic(
        clip, format=fmt.id, matrix=matrix, range=colors.range, chromaloc=colors.chromaloc, dither_type=dither
    )
