"""Colour handling: frame properties (ITU-T H.273 codes) to ``core.resize`` arguments and ffmpeg
tags (pure functions over a frame-props mapping), and the conversions between any clip and the
network's float RGB (these use VapourSynth).

``_Range`` (R74+) and zimg count 0 = limited, 1 = full; the deprecated ``_ColorRange`` counts the
other way round and is read as a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# VapourSynth / ITU-T H.273 codes -> ffmpeg option values.
FFMPEG_COLORSPACE = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 14: "ictcp",
}
FFMPEG_PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22",
}
FFMPEG_TRANSFER = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}
FFMPEG_CHROMALOC = {0: "left", 1: "center", 2: "topleft", 3: "top", 4: "bottomleft", 5: "bottom"}

MATRIX_UNSPECIFIED = 2
MATRIX_BT709 = 1
MATRIX_BT601 = 6  # SMPTE 170M
RANGE_LIMITED = 0  # VapourSynth's _Range and zimg's range: 0 limited, 1 full
RANGE_FULL = 1
CHROMALOC_LEFT = 0


def _prop_int(props: Mapping[str, Any], key: str) -> int | None:
    value = props.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def guess_matrix(width: int, height: int) -> int:
    """The matrix to assume for untagged YUV in the command line: :func:`standard_matrix`, and
    BT.709 for the non-standard sizes in between."""
    return standard_matrix(width, height) or MATRIX_BT709


def source_matrix(props: Mapping[str, Any], width: int, height: int, is_rgb: bool = False) -> tuple[int | None, bool]:
    """The YUV matrix of a source: ``(matrix, guessed)``.

    RGB sources have no matrix: ``(None, False)``. A missing or unspecified (2) ``_Matrix`` is
    replaced by :func:`guess_matrix` and ``guessed`` is True.
    """
    if is_rgb:
        return None, False
    matrix = _prop_int(props, "_Matrix")
    if matrix is None or matrix == MATRIX_UNSPECIFIED:
        return guess_matrix(width, height), True
    return matrix, False


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
    if value is not None and value in FFMPEG_CHROMALOC:
        return value
    return CHROMALOC_LEFT


@dataclass(frozen=True)
class ColorInfo:
    """How a source's pixels are to be interpreted (and re-encoded)."""

    is_rgb: bool
    matrix: int | None  # None for RGB
    matrix_guessed: bool
    range: int  # 0 limited, 1 full
    chromaloc: int
    primaries: int | None  # None when unknown/unspecified
    transfer: int | None

    @classmethod
    def from_props(cls, props: Mapping[str, Any], width: int, height: int, is_rgb: bool) -> ColorInfo:
        matrix, guessed = source_matrix(props, width, height, is_rgb)
        primaries = _prop_int(props, "_Primaries")
        transfer = _prop_int(props, "_Transfer")
        return cls(
            is_rgb=is_rgb,
            matrix=matrix,
            matrix_guessed=guessed,
            range=source_range(props, is_rgb),
            chromaloc=source_chromaloc(props),
            primaries=primaries if primaries in FFMPEG_PRIMARIES else None,
            transfer=transfer if transfer in FFMPEG_TRANSFER else None,
        )

    def ffmpeg_args(self, subsampled: bool = True) -> dict[str, str]:
        """ffmpeg output options tagging the encoded stream's colours.

        RGB sources get no ``colorspace``/``color_range``: ffmpeg may convert them to YUV for
        encoders without RGB support, and the tags would then be wrong.
        """
        args: dict[str, str] = {}
        if not self.is_rgb:
            if self.matrix in FFMPEG_COLORSPACE:
                args["colorspace"] = FFMPEG_COLORSPACE[self.matrix]
            args["color_range"] = "pc" if self.range == RANGE_FULL else "tv"
            if subsampled:
                args["chroma_sample_location"] = FFMPEG_CHROMALOC[self.chromaloc]
        if self.primaries is not None:
            args["color_primaries"] = FFMPEG_PRIMARIES[self.primaries]
        if self.transfer is not None:
            args["color_trc"] = FFMPEG_TRANSFER[self.transfer]
        return args


# ---------------------------------------------------------------------------------------------
# Conversions between any VapourSynth clip and the network's float RGB (these use VapourSynth)
# ---------------------------------------------------------------------------------------------

#: Resize kernels: Bicubic (b=0, c=0.5, zimg's default) for chroma resampling and matrices.
DITHER_TYPES = ("none", "ordered", "random", "error_diffusion")


#: H.273 matrix codes that zimg converts YUV with: BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M,
#: YCgCo, BT.2020 NCL/CL, chromaticity-derived NCL/CL, ICtCp (0, "RGB", is not a YUV matrix).
SUPPORTED_MATRICES = (1, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14)


def standard_matrix(width: int, height: int) -> int | None:
    """The matrix implied by a standard frame size, for untagged YUV: BT.601 (6) for SD
    (at most 1024x576), BT.709 (1) for HD and larger (at least 1280 wide or 720 tall), ``None``
    for sizes in between, where guessing would be a coin toss."""
    if width <= 1024 and height <= 576:
        return MATRIX_BT601
    if width >= 1280 or height >= 720:
        return MATRIX_BT709
    return None


@dataclass(frozen=True)
class ClipColors:
    """How the filter reads a clip into RGB and writes the result back.

    Attributes:
        matrix: YUV matrix (H.273 code) or None for RGB/GRAY sources.
        range: 0 limited, 1 full (``_Range`` convention).
        chromaloc: ``_ChromaLocation`` of subsampled sources (0 = left).
    """

    matrix: int | None
    range: int
    chromaloc: int

    @classmethod
    def of(cls, clip, props: Mapping[str, Any], matrix: int | None = None) -> ClipColors:
        """Read a clip's colours from its first frame's properties.

        Args:
            clip: the source clip (its format and size decide the defaults).
            props: properties of its first frame.
            matrix: an explicit matrix that overrides ``_Matrix``.

        Raises:
            ValueError: a YUV clip whose matrix is unspecified and cannot be guessed from a
                standard frame size (the message says what to pass).
        """
        import vapoursynth as vs

        family = clip.format.color_family
        if family != vs.YUV:
            return cls(None, source_range(props, is_rgb=family == vs.RGB), CHROMALOC_LEFT)
        if matrix is None:
            matrix = _prop_int(props, "_Matrix")
            if matrix is None or matrix == MATRIX_UNSPECIFIED:
                matrix = standard_matrix(clip.width, clip.height)
                if matrix is None:
                    raise ValueError(
                        f"the clip's matrix is unspecified (no _Matrix property) and {clip.width}x{clip.height} "
                        "is not a standard SD or HD size; pass matrix=1 (BT.709), 6 (BT.601) or 9 (BT.2020), "
                        "or set the property with core.std.SetFrameProps(clip, _Matrix=1)"
                    )
        if matrix not in SUPPORTED_MATRICES:
            raise ValueError(
                f"_Matrix = {matrix} is not a YUV matrix zimg can convert (supported: {', '.join(map(str, SUPPORTED_MATRICES))}); "
                "set the right one with matrix=N or core.std.SetFrameProps(clip, _Matrix=N)"
            )
        return cls(matrix, source_range(props), source_chromaloc(props))


def tag(clip, matrix: int | None, range_: int, chromaloc: int | None):
    """Write the colour properties ``core.resize`` will read onto every frame.

    ``core.resize`` lets frame properties override its ``matrix_in``/``range_in``/
    ``chromaloc_in`` arguments, so an interpretation that differs from the properties (an
    explicit matrix, a guessed one for ``_Matrix = 2``, the legacy ``_ColorRange``) must be
    written into the properties to take effect. ``None`` leaves a property untouched.
    """
    import vapoursynth as vs

    props: dict[str, int] = {"_Range": range_}
    if matrix is not None:
        props["_Matrix"] = matrix
    if chromaloc is not None:
        props["_ChromaLocation"] = chromaloc
    return vs.core.std.SetFrameProps(vs.core.std.RemoveFrameProps(clip, "_ColorRange"), **props)


def to_rgb(clip, colors: ClipColors):
    """Convert any constant-format clip to the network's RGB: RGBH stays RGBH, all else RGBS.

    YUV is converted with the clip's matrix, range and chroma location (bicubic chroma
    upsampling); GRAY is repeated into three planes; integer RGB is scaled to [0, 1]. Frame
    properties are carried over, with the colour ones rewritten for RGB by ``core.resize``.
    """
    import vapoursynth as vs

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


def from_rgb(clip, fmt, colors: ClipColors, dither: str = "none"):
    """Convert the network's float RGB output to ``fmt`` (a VapourSynth format).

    YUV outputs use ``colors`` (the source's matrix, range and chroma location; BT.709/BT.601
    by size when the source was not YUV); GRAY outputs the mean of R, G and B. Integer outputs
    are rounded to nearest (``dither="none"``) or dithered, never truncated.
    """
    import vapoursynth as vs

    core = vs.core
    if clip.format.id == fmt.id:
        return clip
    if fmt.color_family == vs.GRAY:
        planes = [core.std.ShufflePlanes(clip, p, vs.GRAY) for p in range(3)]
        mean = core.std.Expr(planes, "x y + z + 3 /", format=vs.GRAYS)
        return core.resize.Point(mean, format=fmt.id, range_in=RANGE_FULL, range=colors.range, dither_type=dither)
    if fmt.color_family == vs.RGB:
        rng = colors.range if fmt.sample_type == vs.INTEGER else RANGE_FULL
        return core.resize.Point(clip, format=fmt.id, range_in=RANGE_FULL, range=rng, dither_type=dither)
    matrix = colors.matrix if colors.matrix is not None else standard_matrix(clip.width, clip.height) or MATRIX_BT709
    return core.resize.Bicubic(
        clip, format=fmt.id, matrix=matrix, range=colors.range, chromaloc=colors.chromaloc, dither_type=dither
    )
