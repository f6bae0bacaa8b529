"""Colour metadata of clips: frame properties (ITU-T H.273 codes) to ``core.resize`` arguments and
ffmpeg tags. Pure functions over a frame-props mapping; no VapourSynth needed.

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
    """The matrix to assume for untagged YUV: BT.709 above SD (wider than 1024 or taller than
    576), else BT.601 (SMPTE 170M)."""
    return MATRIX_BT709 if width > 1024 or height > 576 else MATRIX_BT601


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

    def resize_in_args(self) -> dict[str, int]:
        """Keyword arguments for ``core.resize.*`` reading the source (``matrix_in`` etc.)."""
        args = {"range_in": self.range}
        if not self.is_rgb:
            args["matrix_in"] = self.matrix
            args["chromaloc_in"] = self.chromaloc
        return args

    def resize_out_args(self) -> dict[str, int]:
        """Keyword arguments for ``core.resize.*`` writing the source's format back."""
        args = {"range": self.range}
        if not self.is_rgb:
            args["matrix"] = self.matrix
            args["chromaloc"] = self.chromaloc
        return args

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
