"""``vsvsrpp upscale``: decode a file, run a network of any family, encode the result.

The source is decoded with BestSource; the filter converts it to RGB with its colour metadata
and back to its format family and bit depth (float sources come out as 16-bit); ffmpeg encodes
it (:mod:`vsvsrpp.cli.encode`), copying audio. The output is written atomically: ffmpeg writes
a hidden temporary file next to it that is renamed on success and deleted on any failure. With
``-`` as OUTPUT the container goes to stdout and every message goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from .encode import DEFAULT_STDOUT_FORMAT, encode, ffmpeg_command, ffmpeg_path, has_audio, partial_path
from .errors import EXIT_OK, EXIT_USAGE, CliError
from .options import add_family_options, add_model_source, family_options, non_negative_int, positive_int

log = logging.getLogger("vsvsrpp.cli")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "upscale",
        help="run a network (BasicVSR++, BasicVSR or RealBasicVSR) on a video file",
        description="Decode INPUT, run the network of --model or --weights (any family) and encode the result "
        "to OUTPUT ('-' for stdout). Audio streams are copied; colour metadata is kept.",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="input video file")
    p.add_argument("output", metavar="OUTPUT", help="output video file, or '-' to write the container to stdout")
    add_model_source(p)
    p.add_argument("--device", default=None, metavar="DEV", help="torch device, e.g. cuda, cuda:1, cpu (default: automatic)")
    p.add_argument("--window", type=positive_int, default=None, metavar="N", help="output frames per network pass (>= 1; default: the filter's)")
    p.add_argument("--overlap", type=non_negative_int, default=None, metavar="N", help="context frames run on each side of a window and discarded (>= 0; default: the filter's)")
    add_family_options(p)
    p.add_argument("--codec", default="libx264", help="ffmpeg video encoder (default: %(default)s)")
    p.add_argument("--crf", type=non_negative_int, default=18, help="encoder CRF (default: %(default)s)")
    p.add_argument("--preset", default="medium", help="encoder preset (default: %(default)s)")
    p.add_argument(
        "--format",
        default=None,
        metavar="CONTAINER",
        help=f"ffmpeg container format; needed when OUTPUT is '-' (default there: {DEFAULT_STDOUT_FORMAT}), "
        "otherwise guessed from OUTPUT's extension",
    )
    p.add_argument("--pix-fmt", default=None, metavar="FMT", help="output pixel format (default: that of the source)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run_network(clip, **kwargs):
    """Apply the network of the checkpoint, whatever its family (:func:`vsvsrpp.plugin.entry.apply`)."""
    from ..plugin import entry

    return entry.apply(clip, **kwargs)


def network_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user gave, for the filter (others keep its defaults)."""
    kwargs: dict[str, Any] = {}
    if args.model is not None:
        kwargs["model"] = args.model
    if args.weights is not None:
        kwargs["weights"] = args.weights
    for name in ("device", "window", "overlap"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    return kwargs | family_options(args)


def validate(args: argparse.Namespace) -> None:
    """Checks that need no decoding; raise :class:`CliError` with exit code 2."""
    inp: Path = args.input
    if not inp.exists():
        raise CliError(f"input file not found: {inp}", EXIT_USAGE)
    if not inp.is_file():
        raise CliError(f"input is not a file: {inp}", EXIT_USAGE)
    if args.weights is not None and not args.weights.is_file():
        raise CliError(f"weights file not found: {args.weights}", EXIT_USAGE)
    if args.output == "-":
        return
    out = Path(args.output)
    parent = out.parent
    if not parent.is_dir():
        raise CliError(f"output directory does not exist: {parent}", EXIT_USAGE)
    if out.is_dir():
        raise CliError(f"output is a directory: {out}", EXIT_USAGE)
    if not out.suffix and args.format is None:
        raise CliError(f"cannot tell the container from {out.name!r} (no extension); give --format", EXIT_USAGE)
    with contextlib.suppress(OSError):
        if out.exists() and out.resolve() == inp.resolve():
            raise CliError("output would overwrite the input", EXIT_USAGE)


def output_format(src_format):
    """The integer format the result is written in: the source's, 16-bit for float sources."""
    import vapoursynth as vs

    fmt = src_format
    if fmt.sample_type == vs.FLOAT:
        fmt = fmt.replace(sample_type=vs.INTEGER, bits_per_sample=16)
    return fmt


def prepare_clip(args: argparse.Namespace):
    """Decode and run the network (the filter converts formats); returns ``(clip, Colors)``."""
    import vapoursynth as vs

    from ..plugin.colors import MATRIX_BT709, Colors

    core = vs.core
    try:
        src = core.bs.VideoSource(str(args.input))
    except vs.Error as e:
        raise CliError(f"cannot decode {args.input}: {e}") from None
    fmt = src.format
    if fmt is None or fmt.id == vs.NONE or src.width == 0 or src.height == 0:
        raise CliError(f"{args.input}: variable format or size is not supported")
    if src.fps_num == 0:
        raise CliError(f"{args.input}: variable frame rate is not supported")
    try:
        # The CLI must produce output: an untagged YUV file of a non-standard size is taken as BT.709.
        colors = Colors.from_video(src, fallback_matrix=MATRIX_BT709)
    except ValueError as e:
        raise CliError(f"{args.input}: {e}") from None
    if colors.matrix_guessed:
        name = "BT.709" if colors.matrix == MATRIX_BT709 else "BT.601 (SMPTE 170M)"
        log.info("%s has no colour matrix tag; assuming %s for %dx%d", args.input.name, name, src.width, src.height)
    log.debug("source %s %dx%d %d frames %s/%s fps, %s", fmt.name, src.width, src.height, src.num_frames, src.fps_num, src.fps_den, colors)
    fixed = {"output_format": output_format(fmt).id, "dither": "error_diffusion"}
    if colors.matrix_guessed:
        fixed["matrix"] = colors.matrix
    try:
        out = run_network(src, **network_kwargs(args), **fixed)
    except Exception as e:  # unknown model, unreadable checkpoint, bad device, bad window...
        log.debug("setting up the network failed", exc_info=True)
        raise CliError(f"cannot set up the network: {str(e).removeprefix('vsvsrpp: ')}") from None
    if out.format.color_family == vs.RGB:
        out = core.std.ShufflePlanes(out, [1, 2, 0], vs.RGB)  # R,G,B -> ffmpeg's planar G,B,R
    return out, colors


def run(args: argparse.Namespace) -> int:
    validate(args)
    progress = not args.no_progress
    clip, colors = prepare_clip(args)
    audio_from = args.input if has_audio(args.input) else None
    if args.output == "-":
        encode(clip, ffmpeg_command(clip, colors, args, "pipe:1", audio_from), progress)
        return EXIT_OK

    output = Path(args.output)
    tmp = partial_path(output)
    cmd = ffmpeg_command(clip, colors, args, ffmpeg_path(tmp), audio_from)
    ok = False
    try:
        encode(clip, cmd, progress)
        if not tmp.is_file():
            raise CliError("ffmpeg reported success but wrote no output")
        os.replace(tmp, output)
        ok = True
    finally:
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    log.info("wrote %s (%dx%d, %d frames)", output, clip.width, clip.height, clip.num_frames)
    return EXIT_OK
