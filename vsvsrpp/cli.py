"""Command line interface: ``download``, ``upscale``, ``eval``, ``train`` and ``bench``.

``upscale`` decodes a video with BestSource, runs :func:`vsvsrpp.BasicVSRPP` on it (the filter
converts to RGB with the source's colour metadata and back to the source's format family and bit
depth; float sources come out as 16-bit), and encodes it with ffmpeg (fed as Y4M, or raw planar RGB for RGB sources). The output
file is written atomically: ffmpeg writes a hidden temporary file next to it that is renamed on
success and deleted on any failure. With ``-`` as OUTPUT the container goes to stdout and every
message, warning and the progress bar go to stderr.

Exit codes: 0 success, 1 failure while processing, 2 bad command line, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .catalogue import DEFAULT_MODEL
from .formats import MATRIX_BT709, ColorInfo

log = logging.getLogger("vsvsrpp.cli")

DEFAULT_STDOUT_FORMAT = "matroska"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

class CliError(Exception):
    """A failure reported to the user as one message, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code


def rgb_pix_fmt(bits: int) -> str:
    """ffmpeg's planar GBR pixel format for ``bits`` per sample (VapourSynth writes >8 bit as
    16-bit little-endian words)."""
    if bits == 8:
        return "gbrp"
    if bits in (9, 10, 12, 14, 16):
        return f"gbrp{bits}le"
    raise CliError(f"RGB sources with {bits} bits per sample are not supported")


# ---------------------------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsvsrpp",
        description="BasicVSR++ video super-resolution and restoration (VapourSynth + PyTorch).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages on stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("download", help="download pretrained weights", description="Download pretrained weights into the cache and print their paths.")
    p.add_argument("names", nargs="*", metavar="NAME", help="model names (default: the default model)")
    p.add_argument("--all", action="store_true", help="download every model in the catalogue")
    p.add_argument("--force", action="store_true", help="download again even if the file is cached")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser(
        "upscale",
        help="run BasicVSR++ on a video file",
        description="Decode INPUT, run BasicVSR++ and encode the result to OUTPUT ('-' for stdout). "
        "Audio streams are copied; colour metadata is kept.",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="input video file")
    p.add_argument("output", metavar="OUTPUT", help="output video file, or '-' to write the container to stdout")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, metavar="NAME", help=f"pretrained model name (default: {DEFAULT_MODEL})")
    src.add_argument("--weights", type=Path, default=None, metavar="PATH", help="checkpoint file to use instead of a named model")
    p.add_argument("--device", default=None, metavar="DEV", help="torch device, e.g. cuda, cuda:1, cpu (default: automatic)")
    p.add_argument("--window", type=positive_int, default=None, metavar="N", help="output frames per network pass (>= 1; default: the filter's)")
    p.add_argument("--overlap", type=non_negative_int, default=None, metavar="N", help="context frames run on each side of a window and discarded (>= 0; default: the filter's)")
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
    p.set_defaults(func=cmd_upscale)
    add_eval_parser(sub)
    add_train_parser(sub)
    add_bench_parser(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    level = logging.INFO if verbosity <= 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vsvsrpp: %(message)s" if verbosity <= 1 else "%(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger("vsvsrpp")
    for old in list(root.handlers):
        if getattr(old, "_vsvsrpp_cli", False):
            root.removeHandler(old)
    handler._vsvsrpp_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vsvsrpp`` console script and ``python -m vsvsrpp``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    setup_logging(args.verbose)
    try:
        return args.func(args)
    except CliError as e:
        _error(str(e))
        return e.code
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


def _error(message: str) -> None:
    sys.stderr.write(f"vsvsrpp: error: {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------------------------


def cmd_download(args: argparse.Namespace) -> int:
    from . import catalogue, weights

    if args.all:
        names = list(catalogue.MODELS)
    elif args.names:
        names = list(dict.fromkeys(args.names))
    else:
        names = [catalogue.DEFAULT_MODEL]
    unknown = [n for n in names if n not in catalogue.MODELS]
    if unknown:
        raise CliError(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(catalogue.MODELS)}")
    failed = 0
    for name in names:
        try:
            path = weights.download(catalogue.MODELS[name], force=args.force)
        except weights.DownloadError as e:
            _error(f"{name}: {e}")
            failed += 1
            continue
        print(path)
        sys.stdout.flush()
    return EXIT_FAILURE if failed else EXIT_OK


# ---------------------------------------------------------------------------------------------
# upscale
# ---------------------------------------------------------------------------------------------


def run_network(clip, **kwargs):
    """Apply BasicVSR++; looked up at call time so tests can substitute ``vsvsrpp.BasicVSRPP``."""
    import vsvsrpp

    return vsvsrpp.BasicVSRPP(clip, **kwargs)


def network_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user gave, for :func:`vsvsrpp.BasicVSRPP` (others keep its defaults)."""
    kwargs: dict[str, Any] = {}
    if args.model is not None:
        kwargs["model"] = args.model
    if args.weights is not None:
        kwargs["weights"] = args.weights
    for name in ("device", "window", "overlap"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def validate_upscale_args(args: argparse.Namespace) -> None:
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


class _StderrReader(threading.Thread):
    """Keeps ffmpeg's stderr drained (so it cannot block) and remembers its tail."""

    def __init__(self, stream, limit: int = 64 * 1024):
        super().__init__(daemon=True)
        self.stream = stream
        self.limit = limit
        self.data = bytearray()

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.data += chunk
            if len(self.data) > self.limit:
                del self.data[: len(self.data) - self.limit]

    def tail(self, lines: int = 20) -> str:
        text = self.data.decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-lines:])


def ffmpeg_path(path: Path) -> str:
    """``path`` as an ffmpeg URL that cannot be mistaken for an option or a protocol."""
    return "file:" + str(Path(path).absolute())


def has_audio(path: Path) -> bool:
    import ffmpeg

    try:
        info = ffmpeg.probe(ffmpeg_path(path))
    except ffmpeg.Error as e:
        log.warning("ffprobe failed on %s, audio is not copied: %s", path, (e.stderr or b"").decode("utf-8", "replace").strip())
        return False
    except FileNotFoundError:
        log.warning("ffprobe not found, audio is not copied")
        return False
    return any(s.get("codec_type") == "audio" for s in info.get("streams", []))


def ffmpeg_command(clip, color: ColorInfo, args: argparse.Namespace, target: str, audio_from: Path | None) -> list[str]:
    """The ffmpeg command line encoding ``clip`` (fed on stdin) to ``target``."""
    import ffmpeg
    import vapoursynth as vs

    fps = f"{clip.fps_num}/{clip.fps_den}"
    fmt = clip.format
    if fmt.color_family == vs.RGB:
        video_in = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt=rgb_pix_fmt(fmt.bits_per_sample), s=f"{clip.width}x{clip.height}", framerate=fps)
    else:
        video_in = ffmpeg.input("pipe:0", format="yuv4mpegpipe")
    streams = [video_in["v"]]
    out_opts: dict[str, Any] = {"vcodec": args.codec, "r": fps}
    if args.crf is not None:
        out_opts["crf"] = args.crf
    if args.preset:
        out_opts["preset"] = args.preset
    if args.pix_fmt:
        out_opts["pix_fmt"] = args.pix_fmt
    subsampled = fmt.color_family == vs.YUV and (fmt.subsampling_w or fmt.subsampling_h)
    out_opts.update(color.ffmpeg_args(subsampled=bool(subsampled)))
    if audio_from is not None:
        streams.append(ffmpeg.input(ffmpeg_path(audio_from))["a"])
        out_opts["acodec"] = "copy"
    if args.format:
        out_opts["format"] = args.format
    elif target == "pipe:1":
        out_opts["format"] = DEFAULT_STDOUT_FORMAT
    node = ffmpeg.output(*streams, target, **out_opts)
    loglevel = "warning" if args.verbose else "error"
    return ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", loglevel, "-y", *ffmpeg.get_args(node)]


def partial_path(output: Path) -> Path:
    """A fresh hidden temporary name next to ``output`` with the same extension."""
    return output.with_name(f".{output.stem}.partial-{secrets.token_hex(4)}{output.suffix}")


def encode(clip, cmd: list[str], progress: bool) -> None:
    """Run ffmpeg with ``cmd`` and stream ``clip`` into its stdin (Y4M, or raw planar GBR for RGB
    clips); raise :class:`CliError` with ffmpeg's stderr tail on failure."""
    import vapoursynth as vs
    from tqdm import tqdm

    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise CliError("ffmpeg not found; install it and make sure it is on PATH") from None
    reader = _StderrReader(proc.stderr)
    reader.start()
    bar = tqdm(total=clip.num_frames, unit="frame", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if done > bar.n:
            bar.update(done - bar.n)

    feed_error: Exception | None = None
    try:
        try:
            clip.output(proc.stdin, y4m=clip.format.color_family != vs.RGB, progress_update=update)
        except Exception as e:  # a broken pipe when ffmpeg fails, or an error from a filter
            feed_error = e
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        rc = proc.wait()
    except BaseException:  # KeyboardInterrupt: stop ffmpeg before the caller removes its file
        proc.kill()
        proc.wait()
        raise
    finally:
        bar.close()
        reader.join(timeout=5)
    if rc != 0:
        tail = reader.tail()
        raise CliError(f"ffmpeg failed (exit code {rc})" + (f":\n{tail}" if tail else ""))
    if feed_error is not None:
        log.debug("frame output failed", exc_info=feed_error)
        raise CliError(f"processing failed: {feed_error}")


def prepare_clip(args: argparse.Namespace):
    """Decode and run the network (the filter converts formats); returns ``(clip, ColorInfo)``."""
    import vapoursynth as vs

    core = vs.core
    try:
        src = core.bs.VideoSource(str(args.input))
    except vs.Error as e:
        raise CliError(f"cannot decode {args.input}: {e}") from None
    fmt = src.format
    if fmt is None or src.width == 0 or src.height == 0:
        raise CliError(f"{args.input}: variable format or size is not supported")
    if src.fps_num == 0:
        raise CliError(f"{args.input}: variable frame rate is not supported")
    props = src.get_frame(0).props
    color = ColorInfo.from_props(props, src.width, src.height, is_rgb=fmt.color_family == vs.RGB)
    if color.matrix_guessed:
        name = "BT.709" if color.matrix == MATRIX_BT709 else "BT.601 (SMPTE 170M)"
        log.info("%s has no colour matrix tag; assuming %s for %dx%d", args.input.name, name, src.width, src.height)
    log.debug("source %s %dx%d %d frames %s/%s fps, %s", fmt.name, src.width, src.height, src.num_frames, src.fps_num, src.fps_den, color)
    # The filter converts to the network's RGB and back to the source's format itself (with the
    # source's matrix, range and chroma location); only the matrix guess is the CLI's, so that
    # untagged files of unusual sizes still get one (logged above).
    fixed = {"output_format": output_format(fmt).id, "dither": "error_diffusion"}
    if color.matrix is not None and color.matrix_guessed:
        fixed["matrix"] = color.matrix
    try:
        out = run_network(src, **network_kwargs(args), **fixed)
    except Exception as e:  # unknown model, unreadable checkpoint, bad device, bad window...
        log.debug("BasicVSRPP failed", exc_info=True)
        raise CliError(f"cannot set up BasicVSR++: {e}") from None
    if out.format.color_family == vs.RGB:
        out = core.std.ShufflePlanes(out, [1, 2, 0], vs.RGB)  # R,G,B -> ffmpeg's planar G,B,R
    return out, color


def cmd_upscale(args: argparse.Namespace) -> int:
    validate_upscale_args(args)
    to_stdout = args.output == "-"
    progress = not args.no_progress
    clip, color = prepare_clip(args)
    audio_from = args.input if has_audio(args.input) else None
    if to_stdout:
        encode(clip, ffmpeg_command(clip, color, args, "pipe:1", audio_from), progress)
        return EXIT_OK

    output = Path(args.output)
    tmp = partial_path(output)
    cmd = ffmpeg_command(clip, color, args, ffmpeg_path(tmp), audio_from)
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


# ---------------------------------------------------------------------------------------------
# eval and train (thin wrappers over vsvsrpp.evaluate and vsvsrpp.train)
# ---------------------------------------------------------------------------------------------


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return value


def add_eval_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="score bicubic or a model on a benchmark (PSNR/SSIM, the papers' protocol)",
        description="Degrade the ground truth of every clip in GT_DIR (BI: MATLAB bicubic x4; BD: Gaussian "
        "blur sigma 1.6 + every 4th pixel), upscale it with bicubic or a model (run window by window like "
        "the filter), round to 8 bits and score it: PSNR and SSIM on the BT.601 Y channel (or RGB), "
        "averaged per clip, then over clips.",
    )
    p.add_argument("gt_dir", metavar="GT_DIR", type=Path, help="folder of clip folders of ground-truth frames (or one clip folder)")
    p.add_argument("--lq", type=Path, default=None, metavar="DIR", help="read the low-resolution frames from this folder of clip folders instead of degrading GT_DIR")
    p.add_argument("--method", choices=("bicubic", "model"), default=None, help="'bicubic' (MATLAB imresize) or 'model' (default: model)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, metavar="NAME", help=f"pretrained model name (default: {DEFAULT_MODEL})")
    src.add_argument("--weights", type=Path, default=None, metavar="PATH", help="checkpoint file to evaluate")
    p.add_argument("--degradation", choices=("bi", "bd"), default="bi", help="how the LR input is made (default: %(default)s)")
    p.add_argument("--metric-channel", choices=("y", "rgb"), default="y", help="Y of BT.601 (Vid4, UDM10, Vimeo-90K-T) or RGB (REDS4) (default: %(default)s)")
    p.add_argument("--crop-border", type=non_negative_int, default=0, metavar="N", help="border pixels ignored by the metrics (default: %(default)s, as the OpenMMLab configs)")
    p.add_argument("--limit-frames", type=positive_int, default=None, metavar="N", help="use only the first N frames of each clip")
    p.add_argument("--clips", default=None, metavar="A,B", help="comma-separated clip names (default: all)")
    p.add_argument("--window", type=positive_int, default=None, metavar="N", help="output frames per network pass (default: the filter's, 24)")
    p.add_argument("--overlap", type=non_negative_int, default=None, metavar="N", help="context frames on each side of a window (default: the filter's, 4)")
    p.add_argument("--device", default=None, metavar="DEV", help="torch device for the model (default: automatic)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a 4x BasicVSR++ model",
        description="Train a 4x BasicVSR++ network on ground-truth sequences with the paper's recipe "
        "(Charbonnier loss, Adam, cosine annealing, SPyNet frozen at first, BI/BD degradation made on the fly). "
        "Checkpoints (official layout, loadable by --weights) and a resumable state go to WORK_DIR.",
    )
    p.add_argument("train_dir", metavar="TRAIN_DIR", type=Path, help="folder of sequence folders of ground-truth frames")
    p.add_argument("work_dir", metavar="WORK_DIR", type=Path, help="folder for checkpoints and the training state")
    p.add_argument("--val-dir", type=Path, default=None, metavar="DIR", help="folder of clip folders of ground truth for periodic validation")
    p.add_argument("--degradation", choices=("bi", "bd"), default="bi", help="(default: %(default)s)")
    p.add_argument("--iterations", type=positive_int, default=600_000, metavar="N", help="total iterations (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="sequences per iteration (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=30, metavar="N", help="frames per training sequence (default: %(default)s)")
    p.add_argument("--patch-size", type=positive_int, default=64, metavar="N", help="LR patch side in pixels (default: %(default)s)")
    p.add_argument("--mid-channels", type=positive_int, default=None, metavar="N", help="feature channels (default: 64, or those of --init)")
    p.add_argument("--num-blocks", type=positive_int, default=None, metavar="N", help="residual blocks per branch (default: 7, or those of --init)")
    p.add_argument("--init", default=None, metavar="NAME|PATH", help="fine-tune from a catalogue model or checkpoint")
    p.add_argument("--spynet", default=None, metavar="NAME|PATH", help="take the initial SPyNet weights from this catalogue model or checkpoint")
    p.add_argument("--lr", type=positive_float, default=1e-4, help="learning rate of the network (default: %(default)s)")
    p.add_argument("--spynet-lr", type=non_negative_float, default=2.5e-5, help="learning rate of SPyNet (default: %(default)s)")
    p.add_argument("--min-lr", type=non_negative_float, default=1e-7, help="learning rate at the end of the cosine schedule (default: %(default)s)")
    p.add_argument("--spynet-fix-iters", type=non_negative_int, default=5000, metavar="N", help="SPyNet is frozen for the first N iterations (default: %(default)s)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto", help="mixed precision on CUDA (default: %(default)s)")
    p.add_argument("--checkpoint-interval", type=positive_int, default=5000, metavar="N", help="(default: %(default)s)")
    p.add_argument("--val-interval", type=non_negative_int, default=5000, metavar="N", help="(default: %(default)s; 0: never)")
    p.add_argument("--val-frames", type=positive_int, default=None, metavar="N", help="validate on the first N frames of each clip")
    p.add_argument("--seed", type=non_negative_int, default=0, help="(default: %(default)s)")
    p.add_argument("--workers", type=non_negative_int, default=min(8, os.cpu_count() or 1), metavar="N", help="data loader processes (default: %(default)s)")
    p.add_argument("--device", default=None, metavar="DEV", help="torch device (default: automatic)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="STATE", help="continue from WORK_DIR's training state (or the given state file)")
    p.add_argument("--stop-at", type=positive_int, default=None, metavar="N", help="stop (and save) after N iterations in total; resume later")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluate

    if not args.gt_dir.is_dir():
        raise CliError(f"ground-truth folder not found: {args.gt_dir}", EXIT_USAGE)
    if args.lq is not None and not args.lq.is_dir():
        raise CliError(f"LR folder not found: {args.lq}", EXIT_USAGE)
    if args.method == "bicubic" and (args.model is not None or args.weights is not None):
        raise CliError("--method bicubic takes no --model or --weights", EXIT_USAGE)
    if args.weights is not None and not args.weights.is_file():
        raise CliError(f"weights file not found: {args.weights}", EXIT_USAGE)
    window = args.window if args.window is not None else evaluate.DEFAULT_WINDOW
    overlap = args.overlap if args.overlap is not None else evaluate.DEFAULT_OVERLAP
    if args.method == "bicubic":
        method, name = evaluate.bicubic_method(4), "bicubic"
    else:
        from .engine import Engine
        from .loading import load_model

        source = args.weights if args.weights is not None else (args.model or DEFAULT_MODEL)
        try:
            engine = Engine(load_model(source), args.device)
        except Exception as e:  # unknown name, bad checkpoint, failed download, bad device
            raise CliError(f"cannot load {source}: {e}") from None
        if engine.scale != 4:
            raise CliError(f"{source} is a {engine.scale}x model; the benchmarks are 4x super-resolution", EXIT_USAGE)
        method, name = evaluate.model_method(engine, window, overlap), str(source)
    try:
        result = evaluate.evaluate(
            args.gt_dir,
            method,
            degradation=args.degradation,
            channel=args.metric_channel,
            crop_border=args.crop_border,
            limit_frames=args.limit_frames,
            clips=[c for c in args.clips.split(",") if c] if args.clips else None,
            lq_root=args.lq,
            method_name=name,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    print(result.to_json() if args.json else result.format_table())
    sys.stdout.flush()
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from . import train as training

    if not args.train_dir.is_dir():
        raise CliError(f"training folder not found: {args.train_dir}", EXIT_USAGE)
    if args.val_dir is not None and not args.val_dir.is_dir():
        raise CliError(f"validation folder not found: {args.val_dir}", EXIT_USAGE)
    config = training.TrainConfig(
        train_dir=str(args.train_dir),
        work_dir=str(args.work_dir),
        val_dir=str(args.val_dir) if args.val_dir is not None else None,
        degradation=args.degradation,
        iterations=args.iterations,
        batch_size=args.batch_size,
        num_frames=args.frames,
        patch_size=args.patch_size,
        mid_channels=args.mid_channels,
        num_blocks=args.num_blocks,
        init=args.init,
        spynet_init=args.spynet,
        lr=args.lr,
        spynet_lr=args.spynet_lr,
        min_lr=args.min_lr,
        spynet_fix_iters=args.spynet_fix_iters,
        amp=args.amp,
        checkpoint_interval=args.checkpoint_interval,
        val_interval=args.val_interval,
        val_frames=args.val_frames,
        seed=args.seed,
        num_workers=args.workers,
        device=args.device,
    )
    try:
        config.validate()
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    try:
        result = training.train(config, resume=args.resume, progress=not args.no_progress, stop_at=args.stop_at)
    except (FileNotFoundError, ValueError, FloatingPointError, RuntimeError) as e:
        log.debug("training failed", exc_info=True)
        raise CliError(f"training failed: {e}") from None
    print(f"iterations  {result.iteration}")
    if result.losses:
        tail = result.losses[-10:]
        print(f"loss        {result.losses[-1]:.6f} (mean of the last {len(tail)}: {sum(tail) / len(tail):.6f})")
    if result.val_history:
        it, psnr = result.val_history[-1]
        print(f"val PSNR    {psnr:.4f} dB (iteration {it})")
    if result.checkpoint is not None:
        print(f"checkpoint  {result.checkpoint}")
    sys.stdout.flush()
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# bench (a thin wrapper over vsvsrpp.bench)
# ---------------------------------------------------------------------------------------------


def add_bench_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time the network alone, through vspipe, and (optionally) the reference vsbasicvsrpp",
        description="Time BasicVSR++ on a synthetic clip for each size and precision: one model forward "
        "(after a warm-up), the same clip end to end through vspipe to /dev/null (vspipe start-up "
        "subtracted), and with --reference the vsbasicvsrpp network in a throwaway venv. Prints a table "
        "(or JSON) on stdout; progress goes to stderr. Random c64n7 weights unless --weights.",
    )
    p.add_argument("--sizes", default="180x320", metavar="HxW[,HxW...]", help="input sizes, height x width (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=10, metavar="N", help="frames per clip (default: %(default)s)")
    p.add_argument("--device", default=None, metavar="DEV", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    p.add_argument("--precision", default="fp32", metavar="P[,P...]", help="fp32, fp16 and/or bf16, comma-separated (default: %(default)s)")
    p.add_argument("--model-only", action="store_true", help="skip the end-to-end (vspipe) runs")
    p.add_argument(
        "--reference",
        nargs="?",
        const="",
        default=None,
        metavar="VENV_DIR",
        help="also time the reference vsbasicvsrpp network, installed into VENV_DIR "
        "(default: <user cache>/vsvsrpp/reference-venv; created on first use, needs PyPI)",
    )
    p.add_argument("--weights", type=Path, default=None, metavar="PATH", help="checkpoint to time (default: random weights)")
    p.add_argument("--mid-channels", type=positive_int, default=64, metavar="N", help="channels of the random network (default: %(default)s)")
    p.add_argument("--num-blocks", type=positive_int, default=7, metavar="N", help="residual blocks per branch of the random network (default: %(default)s)")
    p.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="model-only and reference runs, the fastest kept (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    try:
        options = bench.BenchOptions(
            sizes=bench.parse_sizes(args.sizes),
            frames=args.frames,
            device=args.device,
            precisions=bench.parse_precisions(args.precision),
            model_only=args.model_only,
            reference=args.reference is not None,
            reference_venv=Path(args.reference) if args.reference else None,
            weights=args.weights,
            mid_channels=args.mid_channels,
            num_blocks=args.num_blocks,
            repeat=args.repeat,
        )
        options.validate()
    except bench.BenchError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    result = bench.run_benchmark(options)
    print(result.to_json() if args.json else result.format_table())
    sys.stdout.flush()
    measured = [r for r in result.rows if r.model is not None or r.end_to_end is not None]
    return EXIT_OK if measured else EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
