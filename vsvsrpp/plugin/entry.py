"""The VapourSynth filters: ``BasicVSRPP``, ``BasicVSR``, ``IconVSR`` and ``RealBasicVSR``.

Each entry point is made by :func:`make_entry_point` from its family's architecture and the one
argument list of :mod:`vsvsrpp.plugin.args`, so they share every argument, its validation and
its documentation; :func:`apply` runs whatever family a checkpoint holds (the command line and
the benchmark use it). A call validates everything up front, then wires the pieces:

    clip --(colors.to_rgb)--> RGB --(graph: windows, cuts, engine)--> RGB --(colors.from_rgb)--> out

or, on CUDA with CuPy (the plane transfer, :mod:`vsvsrpp.plugin.transfer`), with the colour
conversions on the device inside the graph:

    clip --(graph: upload planes, to RGB, windows, cuts, engine, to the output format)--> out
"""

from __future__ import annotations

import inspect
import logging
import textwrap
from collections.abc import Callable
from typing import Any

import torch
import vapoursynth as vs

from .. import arch
from ..arch import Architecture, CheckpointError
from ..arch.blocks import FLOW_BATCH_PIXELS
from ..hub import registry
from ..hub.checkpoint import Checkpoint, call_options, resolve
from ..hub.download import DownloadError
from ..runtime import memory
from ..runtime.device import PRECISIONS, free_memory
from ..runtime.engine import Engine, load_engine
from ..runtime.windows import DEFAULT_WINDOW
from . import args as arguments
from . import transfer as transfers
from .colors import Colors, format_problem, from_rgb, to_rgb
from .graph import WindowGraph, cut_flags

__all__ = ["BasicVSR", "BasicVSRPP", "IconVSR", "RealBasicVSR", "apply", "make_entry_point"]

log = logging.getLogger("vsvsrpp")

class _Errors:
    """Builds ``vs.Error("<Filter>: ...")`` for the entry point in use."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, msg: str) -> vs.Error:
        return vs.Error(f"{self.name}: {msg}")


def _check_clip(clip: Any, error: _Errors) -> None:
    if not isinstance(clip, vs.VideoNode):
        raise error(f"clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.format.id == vs.NONE or clip.width == 0 or clip.height == 0:
        raise error(
            "variable format or frame size is not supported; make them constant first, e.g. "
            "core.resize.Bicubic(clip, width, height, format=vs.YUV420P8)"
        )
    if clip.num_frames < 1:
        raise error("the clip has no frames")
    problem = format_problem(clip.format)
    if problem:
        raise error(f"{problem}; convert it first, e.g. core.resize.Point(clip, format=vs.YUV444P16)")


def _load(a: arguments.FilterArgs, family: Architecture | None, error: _Errors) -> tuple[Checkpoint, Engine]:
    """Resolve the checkpoint and the shared engine; refuse a family other than the entry point's."""
    try:
        checkpoint = resolve(a.source, fallback=not a.named, family=family.id if family is not None else None)
    except DownloadError as e:  # its message names the URL, the cause and the manual fix
        raise error(str(e)) from None
    except (TypeError, ValueError, FileNotFoundError) as e:
        raise error(str(e)) from None
    try:
        engine = load_engine(
            checkpoint.path, a.device, a.precision, a.tile, bool(a.offload), False if a.exact_tiles is False else None
        )
        # (True is checked below, once the family is known, with an error that says why)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        if checkpoint.pretrained is not None and isinstance(e, CheckpointError):
            raise error(
                f"the cached checkpoint {checkpoint.path} cannot be read, so it is damaged or incomplete: run "
                f"`vsvsrpp download {checkpoint.pretrained.name} --force` (or delete it) to download it again"
            ) from None
        raise error(f"cannot load {checkpoint.path}: {e}") from None
    found = engine.descriptor.architecture
    if family is not None and found is not family:
        article = "an" if found.name[0] in "AEIOU" else "a"
        raise error(f"{checkpoint.label} holds {article} {found.name} network; use vsvsrpp.{found.entry_point}(clip, weights=...)")
    if a.exact_tiles and not engine.exact_tiles:
        raise error(f"exact_tiles=True: {engine.descriptor.name} has no step-wise tiles; use exact_tiles=False or None")
    return checkpoint, engine


def _plan(clip: vs.VideoNode, a: arguments.FilterArgs, checkpoint: Checkpoint, engine: Engine, error: _Errors,
          output_on_device: bool = False) -> tuple[int, Engine]:  # fmt: skip
    """The window, and the engine with the planned tile when ``window`` is None (memory plan;
    ``output_on_device``: the transfer converts the output window on the device)."""
    d = engine.descriptor
    if a.window is not None:  # fixed: only SPyNet's batch is planned
        frames = min(a.window + 2 * a.overlap, clip.num_frames)
        tiled = engine.tile is not None and engine.tile < max(clip.height, clip.width)
        batch = memory.spynet_batch(
            d.memory, frames, *d.size_requirements.padded(clip.height, clip.width), free_memory(a.device),
            PRECISIONS[a.precision].itemsize, on_cpu=a.device.type == "cpu", tile=engine.tile if tiled else None,
            margin=d.reach, exact=engine.exact_tiles, offload=engine.offload, emitted=min(a.window, clip.num_frames),
        )  # fmt: skip
        if batch != FLOW_BATCH_PIXELS:
            engine = load_engine(checkpoint.path, a.device, a.precision, engine.tile, engine.offload, engine.exact_tiles, batch)
            log.info("%s on %s: window %d, SPyNet one pair at a time (its default batch would not fit)", d.name, a.device, a.window)
        return a.window, engine
    host_free = None if a.device.type == "cpu" else free_memory(torch.device("cpu"))
    try:
        chosen = memory.plan(
            d.memory, *d.size_requirements.padded(clip.height, clip.width), free_memory(a.device), a.overlap,
            PRECISIONS[a.precision].itemsize, DEFAULT_WINDOW, clip.num_frames,
            host_free_bytes=host_free, margin=d.reach, offload=a.offload, output_on_device=output_on_device,
        )  # fmt: skip
    except MemoryError as e:
        where = "use the CPU (device='cpu', on the command line --device cpu) or " if a.device.type == "cuda" else ""
        raise error(f"not enough memory on {a.device}: {e}; {where}lower overlap ({a.overlap}) or the frame size") from None
    offload = chosen.offload if a.offload is None else a.offload  # (on the CPU it changes nothing)
    batch = None if chosen.flow_batch == FLOW_BATCH_PIXELS else chosen.flow_batch
    if (chosen.tile is not None and a.tile is None) or offload != engine.offload or batch is not None:
        exact = chosen.exact_tiles if a.tile is None else a.exact_tiles
        engine = load_engine(checkpoint.path, a.device, a.precision, a.tile or chosen.tile, offload, exact, batch)
    (log.warning if chosen.last_resort else log.info)("%s on %s: %s", d.name, a.device, chosen.reason)
    return chosen.window, engine


def _setup(name: str, family: Architecture | None, clip: vs.VideoNode, values: dict[str, Any]):
    """Validate a call and load its network: ``(arguments, colours, engine, call options, window,
    transfer)``."""
    error = _Errors(name)
    _check_clip(clip, error)
    try:
        values = dict(values)
        named = values.pop("named", True)
        a = arguments.validate(values, family.options if family is not None else arch.CALL_OPTIONS, named)
        colors = _colors(clip, a)
    except ValueError as e:
        raise error(str(e)) from None
    checkpoint, engine = _load(a, family, error)
    try:
        options = call_options(engine.descriptor, checkpoint, a.options)
    except ValueError as e:
        raise error(str(e)) from None
    transfer = transfers.choose(a.device, clip.format, colors, a.output_format or clip.format, a.dither)
    window, engine = _plan(clip, a, checkpoint, engine, error, not transfer.to_host)
    return a, colors, engine, options, window, transfer


def _run(name: str, family: Architecture | None, clip: vs.VideoNode, values: dict[str, Any]) -> vs.VideoNode:
    """The one implementation behind every entry point (see :func:`make_entry_point`)."""
    error = _Errors(name)
    a, colors, engine, options, window, transfer = _setup(name, family, clip, values)
    fmt = a.output_format or clip.format
    if not transfer.planes:
        rgb = to_rgb(clip, colors)
        flags = cut_flags(rgb, a.scene_detect, a.scene_threshold) if clip.num_frames > 1 else None
        graph = WindowGraph(rgb, engine, window, a.overlap, flags, error, options, transfer)
        return from_rgb(vs.core.std.CopyFrameProps(graph.node, rgb), fmt, colors, a.dither)
    flags = cut_flags(clip, a.scene_detect, a.scene_threshold, colors) if clip.num_frames > 1 else None
    graph = WindowGraph(clip, engine, window, a.overlap, flags, error, options, transfer, fmt)
    out = vs.core.std.RemoveFrameProps(vs.core.std.CopyFrameProps(graph.node, clip), list(_CONVERTED_PROPS))
    return vs.core.std.SetFrameProps(out, **_output_props(clip, graph.node, fmt, colors, a.dither))


#: The frame properties the colour conversions write (``core.resize`` also writes ``_Primaries``
#: and ``_Transfer``, 2 "unspecified" where the source had none); the others pass through.
_CONVERTED_PROPS = ("_Matrix", "_Range", "_ColorRange", "_ChromaLocation", "_Primaries", "_Transfer")


def _output_props(clip: vs.VideoNode, out: vs.VideoNode, fmt: vs.VideoFormat, colors: Colors, dither: str) -> dict[str, int]:
    """The colour properties the host path gives the output: those of the source's first frame
    through its conversions (one blank frame of the output's size converted on the host once),
    so that both paths describe frames alike."""
    core = vs.core
    first = to_rgb(clip[0], colors)
    blank = core.std.CopyFrameProps(core.std.BlankClip(first, width=out.width, height=out.height, length=1), first)
    props = from_rgb(blank, fmt, colors, dither).get_frame(0).props
    return {k: int(props[k]) for k in _CONVERTED_PROPS if k in props and k != "_ColorRange"}  # (an alias of _Range)


def _colors(clip: vs.VideoNode, a: arguments.FilterArgs) -> Colors:
    """The clip's colours; float RGB in and out needs no properties (and no frame is read)."""
    if clip.format.id in (vs.RGBS, vs.RGBH) and (a.output_format or clip.format).id == clip.format.id:
        return Colors.from_props({}, clip.format.color_family, clip.width, clip.height)
    return Colors.from_video(clip, a.matrix)


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------

_RETURNS = """Returns:
    A clip of the same length, frame rate and frame properties (colour properties describe the
    output), ``scale`` times wider and taller (4x for super-resolution models, 1x for
    restoration models), RGB values clamped to [0, 1] before conversion. Frame ``n`` is
    identical whatever the request order or thread count; with ``window >= clip.num_frames``
    and no scene cut it equals one network pass over the whole clip.

Raises:
    vapoursynth.Error: ``"{name}: ..."`` for an unsupported, variable or empty clip, an unknown
        model, missing weights, an unreadable checkpoint, a checkpoint of another family, bad
        arguments (each quoted), or (when a frame is produced) NaN/Inf in the input.
"""

_CLIP_DOC = (
    "constant format and size: YUV (4:2:0, 4:2:2, 4:4:4, 4:1:0; 8-16 bit integer or float), RGB "
    "(RGB24/30/48, RGBH, RGBS) or GRAY. YUV is converted to RGB with the matrix, range and chroma location "
    "of its first frame's properties (``_Matrix``, ``_Range`` or the older ``_ColorRange``, "
    "``_ChromaLocation``; defaults limited range, left chroma, and the matrix of the standard size: BT.601 "
    "up to 1024x576, BT.709 from 1280 wide or 720 tall)."
)


def _docstring(family: Architecture, default_model: str) -> str:
    def item(name: str, doc: str) -> str:
        return textwrap.fill(f"{name}: {doc}", 96, initial_indent="    ", subsequent_indent="        ")

    lines = [textwrap.fill(family.summary, 96), "", "Args:", item("clip", _CLIP_DOC)]
    stand_ins = " or else ".join(f"``{m.name!r}``" + (" (shipped in the package)" if m.shipped else f" (with ``{m.carried_by.requirement}`` installed)")
                                for m in registry.offline_models(family.id))  # fmt: skip
    fallback = (f" When no model is named and ``{default_model!r}`` can be neither found in the cache nor downloaded, "
                f"{stand_ins} runs instead, with one warning." if stand_ins else "")  # fmt: skip
    lines.append(item("model", f"pretrained registry name (``vsvsrpp.hub.MODELS``; default ``{default_model!r}``); "
                               f"downloaded and verified on first use.{fallback} Ignored when ``weights`` is given."))
    lines += [item(p.name, p.doc) for p in arguments.PARAMS]
    lines += [item(o.name, o.doc + ".") for o in family.options]
    lines += ["", _RETURNS.format(name=family.entry_point)]
    return "\n".join(lines)


def _signature(default_model: str | None, options: tuple) -> inspect.Signature:
    P = inspect.Parameter
    params = [P("clip", P.POSITIONAL_OR_KEYWORD, annotation="vs.VideoNode"),
              P("model", P.POSITIONAL_OR_KEYWORD, default=default_model, annotation="str")]  # fmt: skip
    params += [P(p.name, P.KEYWORD_ONLY, default=p.default, annotation=p.annotation) for p in arguments.PARAMS]
    params += [P(o.name, P.KEYWORD_ONLY, default=None, annotation=f"{o.type.__name__} | None") for o in options]
    return inspect.Signature(params, return_annotation="vs.VideoNode")


def _bind(name: str, signature: inspect.Signature, args: tuple, kwargs: dict) -> tuple[Any, dict[str, Any]]:
    """``(clip, values)``: every argument with its default applied, plus ``values["named"]``,
    whether the caller named ``model`` or ``weights``."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        known = ", ".join(p for p in signature.parameters)
        raise vs.Error(f"{name}: {e}; arguments: {known}") from None
    named = "model" in bound.arguments or bound.arguments.get("weights") is not None
    bound.apply_defaults()
    values = dict(bound.arguments)
    return values.pop("clip"), values | {"named": named}


def make_entry_point(family: Architecture) -> Callable[..., vs.VideoNode]:
    """The filter function of a family: the shared arguments plus the family's call options, a
    signature and a docstring built from them (see ``help(vsvsrpp.BasicVSRPP)``)."""
    default_model = registry.default_for(family.id)
    signature = _signature(default_model, family.options)

    def entry_point(*args: Any, **kwargs: Any) -> vs.VideoNode:
        clip, values = _bind(family.entry_point, signature, args, kwargs)
        return _run(family.entry_point, family, clip, values)

    entry_point.__name__ = entry_point.__qualname__ = family.entry_point
    entry_point.__module__ = "vsvsrpp"
    entry_point.__signature__ = signature  # type: ignore[attr-defined]
    entry_point.__doc__ = _docstring(family, default_model)
    return entry_point


_APPLY_SIGNATURE = _signature(registry.DEFAULT_MODEL, arch.CALL_OPTIONS)


def apply(*args: Any, **kwargs: Any) -> vs.VideoNode:
    """Run whatever family the checkpoint holds, with the entry points' arguments (the union
    of the families' call options; one that does not apply to the checkpoint's family is an
    error). Errors read ``"vsvsrpp: ..."``."""
    clip, values = _bind("vsvsrpp", _APPLY_SIGNATURE, args, kwargs)
    return _run("vsvsrpp", None, clip, values)


apply.__signature__ = _APPLY_SIGNATURE  # type: ignore[attr-defined]


def plan(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The window and tile :func:`apply` with the same arguments would run on this machine.

    Returns:
        ``{"window": frames per pass, "tile": tile size in input pixels or None, "exact_tiles":
        bool, "offload": bool, "device": str, "precision": str}``. Passing ``window``,
        ``tile``, ``exact_tiles`` and ``offload`` back fixes the filter's plan, so that other
        machines run the same passes (as :mod:`vsvsrpp.cluster` does).

    Raises:
        vapoursynth.Error: as :func:`apply` does for its arguments (no frame is read).
    """
    clip, values = _bind("vsvsrpp", _APPLY_SIGNATURE, args, kwargs)
    _, _, engine, _, window, _ = _setup("vsvsrpp", None, clip, values)
    return {
        "window": window, "tile": engine.tile, "exact_tiles": engine.exact_tiles, "offload": engine.offload,
        "device": str(engine.device), "precision": engine.precision,
    }  # fmt: skip


BasicVSRPP = make_entry_point(arch.basicvsrpp.ARCH)
BasicVSR = make_entry_point(arch.basicvsr.ARCH)
RealBasicVSR = make_entry_point(arch.realbasicvsr.ARCH)
IconVSR = make_entry_point(arch.iconvsr.ARCH)
