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

from .encode import DEFAULT_STDOUT_FORMAT, atomic_output, encode, ffmpeg_command, ffmpeg_path, has_audio
from .errors import EXIT_OK, EXIT_USAGE, CliError
from .options import add_overwrite, add_run_options, check_overwrite, in_place, non_negative_int, positive_int, run_kwargs
from .timing import fastest_rate, read_timecodes, retiming_problem

log = logging.getLogger("vsvsrpp.cli")


NAME = "upscale"
HELP = "run a network (BasicVSR++, BasicVSR or RealBasicVSR) on a video file"


#: Output frames per segment of a distributed run (--segment-frames), rounded to whole windows.
DEFAULT_SEGMENT_FRAMES = 240


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        usage="%(prog)s [options] INPUT OUTPUT\n       %(prog)s [options] INPUT [INPUT ...] -o DIR",
        description="Decode INPUT, run the network of --model or --weights (any family) and encode the result "
        "to OUTPUT ('-' for stdout); with -o DIR, each INPUT to DIR/NAME.mkv. Audio streams are copied; colour "
        "metadata is kept. A file OUTPUT is written atomically and an existing one is replaced only with "
        "--overwrite; a FIFO or device is written in place. SIGINT, SIGTERM and SIGHUP stop the run within "
        "seconds, leaving no partial output (exit 130, 143, 129). Variable frame rate sources are refused (the "
        "error says how to convert them). With --ray, the files are cut into segments on window borders and "
        "computed by a Ray cluster; the output equals a single run's frame for frame.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", type=Path, help="INPUT OUTPUT, or the INPUTs when -o DIR is given")
    p.add_argument("-o", "--output-dir", type=Path, default=None, metavar="DIR", help="write each INPUT to DIR/NAME.mkv (created if missing)")
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
    ray = p.add_argument_group("distributed runs (Ray; pip install 'vsvsrpp[ray]')")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on the Ray cluster at ADDRESS ('auto': the one started with `ray start` here); "
                     "without ADDRESS, on a local cluster of this machine's GPUs, or its CPUs")  # fmt: skip
    ray.add_argument("--segment-frames", type=positive_int, default=DEFAULT_SEGMENT_FRAMES, metavar="N",
                     help="output frames per task, rounded down to whole windows (default: %(default)s)")  # fmt: skip
    ray.add_argument("--segment-codec", choices=("ffv1", "final"), default="ffv1",
                     help="ffv1: lossless segments, encoded once more with --codec when joined (default; exact, "
                     "needs disk space); final: segments encoded with --codec and joined without re-encoding")  # fmt: skip
    ray.add_argument("--resume", action="store_true", help="continue an interrupted run: keep the segments it finished")
    ray.add_argument("--work-dir", type=Path, default=None, metavar="DIR",
                     help="where segments are kept while the run lasts, on storage every worker can read and write "
                     "(default: next to each OUTPUT)")  # fmt: skip
    ray.add_argument("--keep-work", action="store_true", help="keep the segments after the output is written")
    ray.add_argument("--cpus-per-task", type=positive_int, default=1, metavar="N",
                     help="CPUs (torch threads) per task on a cluster without GPUs (default: %(default)s)")  # fmt: skip
    ray.add_argument("--retries", type=non_negative_int, default=3, metavar="N",
                     help="times a segment is tried again when its worker dies (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=run)


def run_network(clip, **kwargs):
    """Apply the network of the checkpoint, whatever its family (:func:`vsvsrpp.plugin.entry.apply`)."""
    from ..plugin import entry

    return entry.apply(clip, **kwargs)


def pairs(args: argparse.Namespace) -> list[tuple[Path, Path | str]]:
    """The ``(input, output)`` pairs of the command line, checked (:func:`validate`).

    Raises:
        CliError: (exit code 2) a wrong number of paths, two inputs with one name under
            ``-o DIR``, or a pair :func:`validate` refuses.
    """
    paths: list[Path] = args.paths
    if args.output_dir is None:
        if len(paths) != 2:
            raise CliError(f"give INPUT OUTPUT, or the inputs and -o DIR (got {len(paths)} paths)", EXIT_USAGE)
        out: list[tuple[Path, Path | str]] = [(paths[0], "-" if str(paths[1]) == "-" else paths[1])]
    else:
        names = [p.stem + ".mkv" for p in paths]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CliError(f"two inputs would both be written to {args.output_dir / twice[0]}; give them different names", EXIT_USAGE)
        if not args.output_dir.is_dir():
            if not args.output_dir.parent.is_dir():
                raise CliError(f"output directory's parent does not exist: {args.output_dir.parent}", EXIT_USAGE)
            args.output_dir.mkdir(exist_ok=True)
        out = [(p, args.output_dir / n) for p, n in zip(paths, names)]
    if args.ray and args.ray not in ("auto", "local") and ":" not in args.ray:
        raise CliError(
            f"--ray ADDRESS must be 'auto', HOST:PORT or ray://HOST:PORT, got {args.ray!r} (write --ray=ADDRESS, or "
            "put --ray after the paths when it has no ADDRESS)",
            EXIT_USAGE,
        )
    if args.ray is None and (args.resume or args.keep_work or args.work_dir is not None):
        raise CliError("--resume, --keep-work and --work-dir apply to distributed runs; add --ray", EXIT_USAGE)
    for inp, output in out:
        validate(args, inp, output)
    return out


def validate(args: argparse.Namespace, inp: Path, output: Path | str) -> None:
    """Checks that need no decoding; raise :class:`CliError` with exit code 2."""
    if not inp.exists():
        raise CliError(f"input file not found: {inp}", EXIT_USAGE)
    if not inp.is_file():
        raise CliError(f"input is not a file: {inp}", EXIT_USAGE)
    if args.weights is not None and not args.weights.is_file():
        raise CliError(f"weights file not found: {args.weights}", EXIT_USAGE)
    if args.ray is not None and (output == "-" or in_place(Path(output))):
        raise CliError("--ray writes regular files; give a file name as OUTPUT", EXIT_USAGE)
    if output == "-":
        return
    out = Path(output)
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


def network_clip(path: Path, kwargs: dict, fmt=None, check_rate: bool = True):
    """Decode ``path`` and run the network on it (:func:`run_network`, which converts formats).

    Args:
        path: the input video file.
        kwargs: filter arguments (:func:`~vsvsrpp.cli.options.run_kwargs`: model or weights,
            device, window, overlap, tile, family options).
        fmt: the output's VapourSynth format (``None``: :func:`output_format` of the source's).
        check_rate: refuse a variable frame rate source (see :func:`open_source`).

    Returns:
        ``(source clip, network output clip, Colors of the source)``.

    Raises:
        CliError: for a source that cannot be used or a network that cannot be set up.
    """
    from ..plugin.colors import MATRIX_BT709, Colors

    src = open_source(path, check_rate)
    try:
        # The CLI must produce output: an untagged YUV file of a non-standard size is taken as BT.709.
        colors = Colors.from_video(src, fallback_matrix=MATRIX_BT709)
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None
    if colors.matrix_guessed:
        name = "BT.709" if colors.matrix == MATRIX_BT709 else "BT.601 (SMPTE 170M)"
        log.info("%s has no colour matrix tag; assuming %s for %dx%d", path.name, name, src.width, src.height)
    log.debug("source %s %dx%d %d frames %s/%s fps, %s", src.format.name, src.width, src.height, src.num_frames, src.fps_num, src.fps_den, colors)
    fixed = {"output_format": (fmt or output_format(src.format)).id, "dither": "error_diffusion"}
    if colors.matrix_guessed:
        fixed["matrix"] = colors.matrix
    try:
        out = run_network(src, **kwargs, **fixed)
    except Exception as e:  # unknown model, unreadable checkpoint, bad device, bad window...
        log.debug("setting up the network failed", exc_info=True)
        raise CliError(f"cannot set up the network: {str(e).removeprefix('vsvsrpp: ')}") from None
    return src, out, colors


def for_ffmpeg(clip):
    """``clip`` as ffmpeg reads it: planes G,B,R for RGB (VapourSynth's are R,G,B)."""
    import vapoursynth as vs

    if clip.format.color_family == vs.RGB:
        clip = vs.core.std.ShufflePlanes(clip, [1, 2, 0], vs.RGB)
    return clip


def prepare_clip(args: argparse.Namespace):
    """The network's output for ffmpeg (:func:`for_ffmpeg`); returns ``(clip, Colors)``."""
    _, out, colors = network_clip(args.input, run_kwargs(args))
    return for_ffmpeg(out), colors


def run(args: argparse.Namespace) -> int:
    todo = pairs(args)
    if args.ray is not None:
        from ..cluster import driver

        report = driver.run([(i, Path(o)) for i, o in todo], args, run_kwargs(args))
        log.info("%d segments: %d computed, %d kept from an earlier run (%.1f s)", report["segments"], report["computed"],
                 report["kept"], report["seconds"])  # fmt: skip
        return EXIT_OK
    for inp, output in todo:
        args.input, args.output = inp, str(output)
        upscale_file(args)
    return EXIT_OK


def upscale_file(args: argparse.Namespace) -> None:
    """Upscale ``args.input`` to ``args.output`` in this process (see the module's description)."""
    progress = not args.no_progress
    clip, colors = prepare_clip(args)
    audio_from = args.input if has_audio(args.input) else None
    if args.output == "-":
        encode(clip, ffmpeg_command(clip, colors, args, "pipe:1", audio_from), progress, watch_stdout=True)
        return

    output = Path(args.output)
    if in_place(output):
        encode(clip, ffmpeg_command(clip, colors, args, ffmpeg_path(output), audio_from), progress)
        log.info("wrote %s (%dx%d, %d frames)", output, clip.width, clip.height, clip.num_frames)
        return
    with atomic_output(output) as tmp:
        encode(clip, ffmpeg_command(clip, colors, args, ffmpeg_path(tmp), audio_from), progress)
    log.info("wrote %s (%dx%d, %d frames)", output, clip.width, clip.height, clip.num_frames)
