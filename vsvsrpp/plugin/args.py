"""Validation of a call of the filter entry points against the one argument list.

:data:`~vsvsrpp.plugin.params.PARAMS` lists every argument the entry points share; a family's
extra call options (e.g. RealBasicVSR's ``refine_threshold``) come from its architecture
(:attr:`~vsvsrpp.arch.Architecture.options`). :func:`validate` checks a call's values up front,
before any frame is requested.
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
from ..errors import UsageError
from ..runtime.device import resolve_device, resolve_precision
from ..runtime.windows import MIN_STEP_TILE
from .colors import format_problem
from .params import DEFAULT_SCENE_THRESHOLD, DITHER_TYPES, PARAMS, Param  # noqa: F401  (PARAMS, Param re-exported)


@dataclass(frozen=True)
class FilterArgs:
    """A call's arguments, validated.

    Attributes:
        source: what :func:`vsvsrpp.hub.resolve` takes: the ``weights`` path, else the model name.
        named: the caller named ``model`` or ``weights`` (else ``source`` is the default model,
            which falls back to the best offline model when it cannot be downloaded: hub.registry.OFFLINE_MODELS).
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
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _optional_int(value: Any, name: str, minimum: int) -> int | None:
    return None if value is None else _int(value, name, minimum)


def _optional_bool(value: Any, name: str) -> bool | None:
    if value is not None and not isinstance(value, (bool, numbers.Integral)):
        raise UsageError(f"{name} must be True, False or None, got {value!r}")
    return None if value is None else bool(value)


def _source(model: Any, weights: Any) -> str | os.PathLike:
    if not isinstance(model, str):
        raise UsageError(
            f"model must be a registry name such as 'reds4', got {model!r} ({type(model).__name__}); "
            "pass checkpoint files with weights=PATH"
        )
    if weights is None:
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise UsageError(f"weights must be the path of a checkpoint file, got {weights!r} ({type(weights).__name__})")
    return Path(weights)


def _output_format(value: Any) -> vs.VideoFormat | None:
    if value is None:
        return None
    try:
        fmt = vs.core.get_video_format(value)
    except (vs.Error, TypeError, ValueError, OverflowError) as e:  # OverflowError: a negative or huge id
        raise UsageError(f"output_format {value!r} is not a VapourSynth format: {e}") from None
    if fmt.id == vs.NONE:
        raise UsageError(f"output_format {value!r} is not a YUV, RGB or GRAY format, e.g. vs.YUV420P10 or vs.RGBS")
    problem = format_problem(fmt)
    if problem:
        raise UsageError(f"output_format: {problem}; e.g. vs.YUV420P10 or vs.RGBS")
    return fmt


def validate(values: Mapping[str, Any], options: tuple[CallOption, ...], named: bool = True) -> FilterArgs:
    """Check a call's values (``model`` and every :data:`PARAMS` name, plus ``options``' names);
    ``named``: the caller gave ``model`` or ``weights``.

    Raises:
        ValueError: naming the first bad argument and quoting its value.
    """
    threshold = values["scene_threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
        raise UsageError(f"scene_threshold must be a number in (0, 1], got {threshold!r}")
    if not isinstance(values["scene_detect"], (bool, numbers.Integral)):
        raise UsageError(f"scene_detect must be True or False, got {values['scene_detect']!r}")
    if values["dither"] not in DITHER_TYPES:
        raise UsageError(f"dither must be one of {', '.join(DITHER_TYPES)}, got {values['dither']!r}")
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
        tile=_optional_int(values["tile"], "tile", MIN_STEP_TILE),
        exact_tiles=_optional_bool(values["exact_tiles"], "exact_tiles"),
        offload=_optional_bool(values["offload"], "offload"),
        options=given,
    )
