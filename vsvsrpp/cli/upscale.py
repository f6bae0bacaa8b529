"""``vsvsrpp upscale``: decode a file, run a network of any family, encode the result.

The source is decoded with BestSource; the filter converts it to RGB with its colour metadata
and back to its format family and bit depth (float sources come out as 16-bit); ffmpeg encodes
it (:mod:`vsvsrpp.cli.encode`), copying audio.

Where the result goes:

* a regular file (new, or existing with ``--overwrite``): written atomically. ffmpeg writes a
  hidden temporary file next to it, renamed on success and deleted on any failure or signal;
  an existing file is never replaced without ``--overwrite`` (``-y``);
* anything else that exists (a FIFO, a character or block device such as ``/dev/null``):
  written in place, as a stream; the node itself is left as it was;
* ``-``: the container goes to stdout and every message goes to stderr; when the reader goes
  away the run stops within a step of the running pass (exit code 141).

Variable frame rate sources are refused (their timing would be lost): convert them to a
constant frame rate first (the error says how).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
from pathlib import Path

from .encode import DEFAULT_STDOUT_FORMAT, encode, ffmpeg_command, ffmpeg_path, has_audio, partial_path
from .errors import EXIT_OK, EXIT_USAGE, CliError
from .options import add_overwrite, add_run_options, check_overwrite, in_place, non_negative_int, run_kwargs
from .timing import fastest_rate, read_timecodes, retiming_problem

log = logging.getLogger("vsvsrpp.cli")


NAME = "upscale"
HELP = "run a network (BasicVSR++, BasicVSR or RealBasicVSR) on a video file"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Decode INPUT, run the network of --model or --weights (any family) and encode the result "
        "to OUTPUT ('-' for stdout). Audio streams are copied; colour metadata is kept. A file OUTPUT is written "
        "atomically and an existing one is replaced only with --overwrite; a FIFO or device is written in place. "
        "SIGINT, SIGTERM and SIGHUP stop the run within seconds, leaving no partial output (exit 130, 143, 129). "
        "Variable frame rate sources are refused (the error says how to convert them).",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="input video file")
    p.add_argument(
        "output",
        metavar="OUTPUT",
        help="output video file (written atomically), '-' for stdout, or an existing FIFO or device (written in place)",
    )
    add_overwrite(p)
    add_run_options(p)
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
    check_overwrite(out, args.overwrite)
    if not in_place(out) and not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"cannot create files in {parent} (permission denied)", EXIT_USAGE)


def output_format(src_format):
    """The integer format the result is written in: the source's, 16-bit for float sources."""
    import vapoursynth as vs

    fmt = src_format
    if fmt.sample_type == vs.FLOAT:
        fmt = fmt.replace(sample_type=vs.INTEGER, bits_per_sample=16)
    return fmt


def open_source(path: Path, check_rate: bool = True):
    """Decode ``path`` with BestSource; refuse variable format or size, and (with
    ``check_rate``) a variable frame rate.

    Raises:
        CliError: when it cannot be decoded, or its format, size or frame rate varies (a
            variable frame rate would be lost: the error says how to convert it first).
    """
    import tempfile

    import vapoursynth as vs

    with tempfile.TemporaryDirectory(prefix="vsvsrpp-") as tmp:
        timecodes = Path(tmp) / "timecodes.txt"
        try:
            src = vs.core.bs.VideoSource(str(path), timecodes=str(timecodes))
        except vs.Error as e:
            raise CliError(f"cannot decode {path}: {e}") from None
        times = read_timecodes(timecodes) if timecodes.is_file() else []
    if src.format is None or src.format.id == vs.NONE or src.width == 0 or src.height == 0:
        raise CliError(f"{path}: variable format or size is not supported")
    problem = retiming_problem(times, src.fps_num, src.fps_den) if check_rate else None
    if problem is not None:
        raise CliError(
            f"{path}: {problem}. Convert it to a constant frame rate first, e.g. "
            f"ffmpeg -i {shlex.quote(str(path))} -fps_mode cfr -r {fastest_rate(times)} -c:a copy cfr.mkv"
        )
    return src


def network_clip(args: argparse.Namespace, fmt=None, check_rate: bool = True):
    """Decode ``args.input`` and run the network on it (:func:`run_network`, which converts
    formats).

    Args:
        args: the parsed options of :func:`~vsvsrpp.cli.options.add_run_options`, with ``input``.
        fmt: the output's VapourSynth format (``None``: :func:`output_format` of the source's).
        check_rate: refuse a variable frame rate source (see :func:`open_source`).

    Returns:
        ``(source clip, network output clip, Colors of the source)``.

    Raises:
        CliError: for a source that cannot be used or a network that cannot be set up.
    """
    from ..plugin.colors import MATRIX_BT709, Colors

    src = open_source(args.input, check_rate)
    try:
        # The CLI must produce output: an untagged YUV file of a non-standard size is taken as BT.709.
        colors = Colors.from_video(src, fallback_matrix=MATRIX_BT709)
    except ValueError as e:
        raise CliError(f"{args.input}: {e}") from None
    if colors.matrix_guessed:
        name = "BT.709" if colors.matrix == MATRIX_BT709 else "BT.601 (SMPTE 170M)"
        log.info("%s has no colour matrix tag; assuming %s for %dx%d", args.input.name, name, src.width, src.height)
    log.debug("source %s %dx%d %d frames %s/%s fps, %s", src.format.name, src.width, src.height, src.num_frames, src.fps_num, src.fps_den, colors)
    fixed = {"output_format": (fmt or output_format(src.format)).id, "dither": "error_diffusion"}
    if colors.matrix_guessed:
        fixed["matrix"] = colors.matrix
    try:
        out = run_network(src, **run_kwargs(args), **fixed)
    except Exception as e:  # unknown model, unreadable checkpoint, bad device, bad window...
        log.debug("setting up the network failed", exc_info=True)
        raise CliError(f"cannot set up the network: {str(e).removeprefix('vsvsrpp: ')}") from None
    return src, out, colors


def prepare_clip(args: argparse.Namespace):
    """The network's output for ffmpeg (planar G,B,R for RGB); returns ``(clip, Colors)``."""
    import vapoursynth as vs

    _, out, colors = network_clip(args)
    if out.format.color_family == vs.RGB:
        out = vs.core.std.ShufflePlanes(out, [1, 2, 0], vs.RGB)  # R,G,B -> ffmpeg's planar G,B,R
    return out, colors


def run(args: argparse.Namespace) -> int:
    validate(args)
    progress = not args.no_progress
    clip, colors = prepare_clip(args)
    audio_from = args.input if has_audio(args.input) else None
    if args.output == "-":
        encode(clip, ffmpeg_command(clip, colors, args, "pipe:1", audio_from), progress, watch_stdout=True)
        return EXIT_OK

    output = Path(args.output)
    if in_place(output):
        encode(clip, ffmpeg_command(clip, colors, args, ffmpeg_path(output), audio_from), progress)
        log.info("wrote %s (%dx%d, %d frames)", output, clip.width, clip.height, clip.num_frames)
        return EXIT_OK
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
