"""``vsvsrpp upscale``: decode a file, run a network of any family, encode the result.

This module maps the command line to a :class:`~vsvsrpp.pipeline.spec.RunSpec` and checks the
paths; :mod:`vsvsrpp.pipeline.run` (or, with ``--ray``, :mod:`vsvsrpp.cluster`) does the work.
The source is decoded with BestSource; the filter converts it to RGB with its colour metadata
and back to its format family and bit depth (float sources come out as 16-bit); ffmpeg encodes
it, copying audio.

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
from pathlib import Path

from ..errors import EXIT_OK, UsageError
from ..pipeline.encode import in_place
from ..pipeline.ffmpeg import DEFAULT_STDOUT_FORMAT
from ..pipeline.spec import Encoding, RunSpec
from .options import add_overwrite, add_run_options, check_overwrite, check_writable_dir, non_negative_int, positive_int, run_kwargs

log = logging.getLogger("vsvsrpp.cli")


NAME = "upscale"
HELP = "run a network (BasicVSR++, BasicVSR, IconVSR or RealBasicVSR) on a video file"


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
        help=f"ffmpeg container format (default: guessed from OUTPUT's extension; {DEFAULT_STDOUT_FORMAT} when "
        "OUTPUT is '-'); needed for an OUTPUT without extension",
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


def pairs(args: argparse.Namespace) -> list[tuple[Path, Path | str]]:
    """The ``(input, output)`` pairs of the command line, checked (:func:`validate`).

    Raises:
        vsvsrpp.errors.UsageError: a wrong number of paths, two inputs with one name under
            ``-o DIR``, or a pair :func:`validate` refuses.
    """
    paths: list[Path] = args.paths
    if args.output_dir is None:
        if len(paths) != 2:
            raise UsageError(f"give INPUT OUTPUT, or the inputs and -o DIR (got {len(paths)} paths)")
        out: list[tuple[Path, Path | str]] = [(paths[0], "-" if str(paths[1]) == "-" else paths[1])]
    else:
        names = [p.stem + ".mkv" for p in paths]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UsageError(f"two inputs would both be written to {args.output_dir / twice[0]}; give them different names")
        if args.output_dir.exists() and not args.output_dir.is_dir():
            raise UsageError(f"-o {args.output_dir} is a file; give a directory (it is created if missing)")
        if not args.output_dir.is_dir():  # created by run(), once everything is checked
            if not args.output_dir.parent.is_dir():
                raise UsageError(f"output directory's parent does not exist: {args.output_dir.parent}")
            check_writable_dir(args.output_dir.parent)
        out = [(p, args.output_dir / n) for p, n in zip(paths, names)]
    if args.ray and args.ray not in ("auto", "local") and ":" not in args.ray:
        raise UsageError(
            f"--ray ADDRESS must be 'auto', HOST:PORT or ray://HOST:PORT, got {args.ray!r} (write --ray=ADDRESS, or "
            "put --ray after the paths when it has no ADDRESS)"
        )
    if args.ray is None and (args.resume or args.keep_work or args.work_dir is not None):
        raise UsageError("--resume, --keep-work and --work-dir apply to distributed runs; add --ray")
    for inp, output in out:
        validate(args, inp, output)
    return out


def validate(args: argparse.Namespace, inp: Path, output: Path | str) -> None:
    """Checks that need no decoding.

    Raises:
        vsvsrpp.errors.UsageError: naming the path and what to do.
    """
    if not inp.exists():
        raise UsageError(f"input file not found: {inp}")
    if not inp.is_file():
        raise UsageError(f"input is not a file: {inp}")
    if args.weights is not None and not args.weights.is_file():
        raise UsageError(f"weights file not found: {args.weights}")
    if args.ray is not None and (output == "-" or in_place(Path(output))):
        raise UsageError("--ray writes regular files; give a file name as OUTPUT")
    if output == "-":
        return
    out = Path(output)
    parent = out.parent
    to_create = args.output_dir is not None and parent == args.output_dir and not parent.exists()  # checked by pairs()
    if not parent.is_dir() and not to_create:
        raise UsageError(f"output directory does not exist: {parent}")
    if out.is_dir():
        raise UsageError(f"output is a directory: {out}")
    if not out.suffix and args.format is None:
        raise UsageError(f"cannot tell the container from {out.name!r} (no extension); give --format")
    with contextlib.suppress(OSError):
        if out.exists() and out.resolve() == inp.resolve():
            raise UsageError("output would overwrite the input")
    check_overwrite(out, args.overwrite)
    if not in_place(out) and not to_create:
        check_writable_dir(parent)


def spec_of(args: argparse.Namespace, pairs: list[tuple[Path, Path | str]]) -> RunSpec:
    """The :class:`~vsvsrpp.pipeline.spec.RunSpec` of the command line."""
    encoding = Encoding(args.codec, args.crf, args.preset or None, args.pix_fmt)
    return RunSpec(tuple(pairs), run_kwargs(args), encoding, args.format, not args.no_progress, args.verbose > 0)


def cluster_options(args: argparse.Namespace):
    """The ``--ray`` options as :class:`vsvsrpp.cluster.driver.ClusterOptions`."""
    from ..cluster.driver import ClusterOptions

    return ClusterOptions(args.ray, args.segment_frames, args.segment_codec, args.resume, args.keep_work, args.work_dir,
                          args.cpus_per_task, args.retries)  # fmt: skip


@contextlib.contextmanager
def created_dir(directory: Path | None):
    """Create ``directory`` if it is given and missing, and remove it again if the block fails
    while it is still empty (a failed run leaves nothing it made).

    Raises:
        vsvsrpp.errors.UsageError: it cannot be created (the system's reason).
    """
    if directory is None or directory.is_dir():
        yield
        return
    try:
        directory.mkdir()
    except OSError as e:
        raise UsageError(f"cannot create the output directory {directory}: {e.strerror or e}") from None
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            directory.rmdir()  # only if empty: what an earlier file of the batch wrote stays
        raise


def run(args: argparse.Namespace) -> int:
    spec = spec_of(args, pairs(args))
    with created_dir(args.output_dir):
        if args.ray is not None:
            from ..cluster import driver

            report = driver.run(spec, cluster_options(args))
            log.info("%d segments: %d computed, %d kept from an earlier run (%.1f s)", report["segments"], report["computed"],
                     report["kept"], report["seconds"])  # fmt: skip
            return EXIT_OK
        from ..pipeline import run as single

        single.run(spec)
    return EXIT_OK
