"""The one argument list of the filter entry points, and its validation.

:data:`PARAMS` lists every argument the entry points share (after ``clip`` and ``model``), with
its default and documentation; a family's extra call options (e.g. RealBasicVSR's
``refine_threshold``) come from its architecture (:attr:`~vsvsrpp.arch.Architecture.options`).
:mod:`vsvsrpp.plugin.entry` builds each entry point's signature and docstring from these, and
:func:`validate` checks a call's values up front, before any frame is requested.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import vapoursynth as vs

from ..arch import CallOption
from ..runtime.device import resolve_device, resolve_precision
from ..runtime.memory import MIN_TILE
from ..runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW
from .colors import DITHER_TYPES, format_problem

#: Mean absolute difference of consecutive frames' luma (0..1, on a copy at most 256 px wide)
#: above which the detector declares a scene cut; the value misc.SCDetect uses.
DEFAULT_SCENE_THRESHOLD = 0.1


@dataclass(frozen=True)
class Param:
    """One keyword argument of the entry points: its default, annotation and documentation."""

    name: str
    default: Any
    annotation: str
    doc: str


PARAMS: tuple[Param, ...] = (
    Param("weights", None, "str | os.PathLike | None",
          "path of a checkpoint to use instead of ``model`` (official or custom, mmediting layout or a bare "
          "state dict; the architecture is read from the state dict)."),
    Param("device", None, "str | int | None",
          "torch device: ``\"cpu\"``, ``\"cuda\"``, ``\"cuda:1\"`` or a CUDA index; default CUDA when available, "
          "else the CPU."),
    Param("window", None, "int | None",
          f"output frames per network pass (>= 1). Memory grows linearly with ``window + 2 * overlap``; longer "
          f"windows give propagation more frames. ``None``: the longest window up to {DEFAULT_WINDOW} that fits "
          "the device's free memory (:mod:`vsvsrpp.runtime.memory`); pass a number for output independent of the "
          "machine. ``window >= clip.num_frames`` runs the whole clip in one pass."),
    Param("overlap", DEFAULT_OVERLAP, "int",
          "context frames run on each side of a window and discarded (>= 0), so frames at window boundaries "
          "still see neighbours on both sides."),
    Param("scene_detect", True, "bool",
          "where a frame carries neither ``_SceneChangePrev`` nor (on the frame before) ``_SceneChangeNext``, "
          "detect cuts from the luma difference of consecutive frames. Windows never propagate across a cut."),
    Param("scene_threshold", DEFAULT_SCENE_THRESHOLD, "float",
          "detector threshold: mean absolute luma difference of consecutive frames, in (0, 1]."),
    Param("matrix", None, "int | None", "YUV matrix (H.273 code) overriding the clip's ``_Matrix``."),
    Param("output_format", None, "int | vs.VideoFormat | None",
          "result format (a ``vs.PresetVideoFormat`` or format id; YUV, RGB or GRAY at 8-16 bit integer or "
          "16/32 bit float); default the input's own format, converted back with the source's matrix, range and "
          "chroma location."),
    Param("dither", "none", "str",
          "for integer outputs: ``\"none\"`` (round to nearest), ``\"ordered\"``, ``\"random\"`` or "
          "``\"error_diffusion\"``."),
    Param("precision", "auto", "str",
          "``\"auto\"`` (fp16 on CUDA, fp32 on the CPU), ``\"fp32\"``, ``\"fp16\"`` or ``\"bf16\"``. Flow, sampling "
          "grids and deformable offsets stay float32 in all modes."),
    Param("tile", None, "int | None",
          f"process frames in tiles of at most this many input pixels a side (>= {MIN_TILE}); chosen automatically "
          "when not even a short window fits in memory, and halved after a CUDA out-of-memory error. See "
          "``exact_tiles``."),
    Param("exact_tiles", None, "bool | None",
          "``True``: step-wise tiles, every stage of the network run tile by tile on whole-frame features "
          "(BasicVSR++ only; the output equals whole frames; only the transients shrink). ``False``: independent "
          "tiles, each a pass of its own with a context margin of the network's reach and flow from whole frames "
          "(the least memory; propagation differs slightly near tile edges). ``None``: step-wise where the family "
          "has them when ``tile`` is given, else as the memory plan chooses."),
    Param("offload", None, "bool | None",
          "``True``: keep each pass's per-frame features in host memory between uses, bringing them back to the "
          "device when needed (exact: the output is the same; bounded device memory for long windows, more "
          "transfers; changes nothing on the CPU). ``False``: keep them on the device. ``None``: as the memory "
          "plan chooses (never when ``window`` is given)."),
)


@dataclass(frozen=True)
class FilterArgs:
    """A call's arguments, validated.

    Attributes:
        source: what :func:`vsvsrpp.hub.resolve` takes: the ``weights`` path, else the model name.
        named: the caller named ``model`` or ``weights`` (else ``source`` is the default model,
            which falls back to the shipped model when it cannot be downloaded).
        device: the resolved device.
        precision: the resolved precision name (never ``"auto"``).
        output_format: the requested format, ``None`` for the input's.
        options: the family call options the caller gave (those left at ``None`` omitted).
        The others as in :data:`PARAMS`.
    """

    source: str | os.PathLike
    named: bool
    device: torch.device
    window: int | None
    overlap: int
    scene_detect: bool
    scene_threshold: float
    matrix: int | None
    output_format: vs.VideoFormat | None
    dither: str
    precision: str
    tile: int | None
    exact_tiles: bool | None
    offload: bool | None
    options: dict[str, Any]


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _optional_int(value: Any, name: str, minimum: int) -> int | None:
    return None if value is None else _int(value, name, minimum)


def _optional_bool(value: Any, name: str) -> bool | None:
    if value is not None and not isinstance(value, (bool, numbers.Integral)):
        raise ValueError(f"{name} must be True, False or None, got {value!r}")
    return None if value is None else bool(value)


def _source(model: Any, weights: Any) -> str | os.PathLike:
    if not isinstance(model, str):
        raise ValueError(
            f"model must be a registry name such as 'reds4', got {model!r} ({type(model).__name__}); "
            "pass checkpoint files with weights=PATH"
        )
    if weights is None:
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be the path of a checkpoint file, got {weights!r} ({type(weights).__name__})")
    return Path(weights)


def _output_format(value: Any) -> vs.VideoFormat | None:
    if value is None:
        return None
    try:
        fmt = vs.core.get_video_format(value)
    except (vs.Error, TypeError, ValueError) as e:
        raise ValueError(f"output_format {value!r} is not a VapourSynth format: {e}") from None
    if fmt.id == vs.NONE:
        raise ValueError(f"output_format {value!r} is not a YUV, RGB or GRAY format, e.g. vs.YUV420P10 or vs.RGBS")
    problem = format_problem(fmt)
    if problem:
        raise ValueError(f"output_format: {problem}; e.g. vs.YUV420P10 or vs.RGBS")
    return fmt


def validate(values: Mapping[str, Any], options: tuple[CallOption, ...], named: bool = True) -> FilterArgs:
    """Check a call's values (``model`` and every :data:`PARAMS` name, plus ``options``' names);
    ``named``: the caller gave ``model`` or ``weights``.

    Raises:
        ValueError: naming the first bad argument and quoting its value.
    """
    threshold = values["scene_threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
        raise ValueError(f"scene_threshold must be a number in (0, 1], got {threshold!r}")
    if not isinstance(values["scene_detect"], (bool, numbers.Integral)):
        raise ValueError(f"scene_detect must be True or False, got {values['scene_detect']!r}")
    if values["dither"] not in DITHER_TYPES:
        raise ValueError(f"dither must be one of {', '.join(DITHER_TYPES)}, got {values['dither']!r}")
    device = resolve_device(values["device"])
    given = {o.name: o.validate(values[o.name]) for o in options if values.get(o.name) is not None}
    return FilterArgs(
        source=_source(values["model"], values["weights"]),
        named=named,
        device=device,
        window=_optional_int(values["window"], "window", 1),
        overlap=_int(values["overlap"], "overlap", 0),
        scene_detect=bool(values["scene_detect"]),
        scene_threshold=float(threshold),
        matrix=_optional_int(values["matrix"], "matrix", 0),
        output_format=_output_format(values["output_format"]),
        dither=values["dither"],
        precision=resolve_precision(values["precision"], device),
        tile=_optional_int(values["tile"], "tile", MIN_TILE),
        exact_tiles=_optional_bool(values["exact_tiles"], "exact_tiles"),
        offload=_optional_bool(values["offload"], "offload"),
        options=given,
    )
