"""The one argument list of the filter entry points, as plain data.

:data:`PARAMS` lists every argument the entry points share (after ``clip`` and ``model``), with
its default, documentation and how the command line reads it: :mod:`vsvsrpp.plugin.entry`
builds each entry point's signature and docstring from it, :mod:`vsvsrpp.plugin.args`
validates a call against it, and :mod:`vsvsrpp.cli.options` generates the command line's run
options from it. Nothing here imports torch, numpy or VapourSynth, so ``--help`` stays quick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW, MIN_STEP_TILE, MIN_TILE

__all__ = ["DEFAULT_SCENE_THRESHOLD", "DITHER_TYPES", "PARAMS", "PRECISION_NAMES", "Param"]

#: Mean absolute difference of consecutive frames' luma (0..1, on a copy at most 256 px wide)
#: above which the detector declares a scene cut; the value misc.SCDetect uses.
DEFAULT_SCENE_THRESHOLD = 0.1
#: Dither types of ``core.resize`` for integer outputs; "none" rounds to nearest.
DITHER_TYPES = ("none", "ordered", "random", "error_diffusion")
#: Precision names (``"auto"``: fp16 on CUDA, fp32 on the CPU); :data:`vsvsrpp.runtime.device.PRECISIONS`
#: maps the others to dtypes.
PRECISION_NAMES = ("auto", "fp32", "fp16", "bf16")


def integer(minimum: int) -> Callable[[str], int]:
    """A parser of whole numbers ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def fraction(text: str) -> float:
    """A number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise ValueError(f"expected a number in (0, 1], got {text}")
    return value


def yes_no(text: str) -> bool:
    """``yes``/``true``/``1`` or ``no``/``false``/``0``."""
    word = text.strip().lower()
    if word in ("yes", "true", "1", "on"):
        return True
    if word in ("no", "false", "0", "off"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A parser accepting one of ``choices``."""

    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


@dataclass(frozen=True)
class Param:
    """One keyword argument of the entry points.

    Attributes:
        name: the keyword (``--name-with-dashes`` on the command line).
        default: the filter's default.
        annotation: the type, as text (for the generated signature).
        doc: what it does, for docstrings and ``--help``.
        parse: how the command line reads its text (raises ``ValueError`` quoting it); None: not
            a command-line option (the command line sets it another way).
        metavar: the value's name in ``--help``.
    """

    name: str
    default: Any
    annotation: str
    doc: str
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None


PARAMS: tuple[Param, ...] = (
    Param("weights", None, "str | os.PathLike | None",
          "path of a checkpoint to use instead of ``model`` (official or custom, mmediting layout or a bare "
          "state dict; the architecture is read from the state dict)."),
    Param("device", None, "str | int | None",
          "torch device: ``\"cpu\"``, ``\"cuda\"``, ``\"cuda:1\"`` or a CUDA index; default CUDA when available, "
          "else the CPU.", str, "DEV"),
    Param("window", None, "int | None",
          f"output frames per network pass (>= 1). Memory grows linearly with ``window + 2 * overlap``; longer "
          f"windows give propagation more frames. ``None``: the longest window up to {DEFAULT_WINDOW} that fits "
          "the device's free memory (:mod:`vsvsrpp.runtime.memory`); pass a number for output independent of the "
          "machine. ``window >= clip.num_frames`` runs the whole clip in one pass.", integer(1), "N"),
    Param("overlap", DEFAULT_OVERLAP, "int",
          "context frames run on each side of a window and discarded (>= 0), so frames at window boundaries "
          "still see neighbours on both sides.", integer(0), "N"),
    Param("scene_detect", True, "bool",
          "where a frame carries neither ``_SceneChangePrev`` nor (on the frame before) ``_SceneChangeNext``, "
          "detect cuts from the luma difference of consecutive frames. Windows never propagate across a cut.",
          yes_no, "yes|no"),
    Param("scene_threshold", DEFAULT_SCENE_THRESHOLD, "float",
          "detector threshold: mean absolute luma difference of consecutive frames, in (0, 1].", fraction, "F"),
    Param("matrix", None, "int | None", "YUV matrix (H.273 code) overriding the clip's ``_Matrix``.", integer(0), "CODE"),
    Param("output_format", None, "int | vs.VideoFormat | None",
          "result format (a ``vs.PresetVideoFormat`` or format id; YUV, RGB or GRAY at 8-16 bit integer or "
          "16/32 bit float); default the input's own format, converted back with the source's matrix, range and "
          "chroma location."),
    Param("dither", "none", "str",
          "for integer outputs: ``\"none\"`` (round to nearest), ``\"ordered\"``, ``\"random\"`` or "
          "``\"error_diffusion\"``.", one_of(DITHER_TYPES), "|".join(DITHER_TYPES)),
    Param("precision", "auto", "str",
          "``\"auto\"`` (fp16 on CUDA, fp32 on the CPU), ``\"fp32\"``, ``\"fp16\"`` or ``\"bf16\"``. Flow, sampling "
          "grids and deformable offsets stay float32 in all modes.", one_of(PRECISION_NAMES), "|".join(PRECISION_NAMES)),
    Param("tile", None, "int | None",
          f"process frames in tiles of at most this many input pixels a side (>= {MIN_STEP_TILE}; an independent "
          f"tile's pass still runs on at least {MIN_TILE} px); chosen automatically when not even a short window fits "
          "in memory, and halved after a CUDA out-of-memory error. See ``exact_tiles``.", integer(MIN_STEP_TILE), "N"),
    Param("exact_tiles", None, "bool | None",
          "``True``: step-wise tiles, every stage of the network run tile by tile on whole-frame features "
          "(BasicVSR++ only; the output equals whole frames; only the transients shrink). ``False``: independent "
          "tiles, each a pass of its own with a context margin of the network's reach and flow from whole frames "
          "(the least memory; propagation differs slightly near tile edges). ``None``: step-wise where the family "
          "has them when ``tile`` is given, else as the memory plan chooses.", yes_no, "yes|no"),
    Param("offload", None, "bool | None",
          "``True``: keep each pass's per-frame features in host memory between uses, bringing them back to the "
          "device when needed (exact: the output is the same; bounded device memory for long windows, more "
          "transfers; changes nothing on the CPU). ``False``: keep them on the device. ``None``: as the memory "
          "plan chooses (never when ``window`` is given).", yes_no, "yes|no"),
)
