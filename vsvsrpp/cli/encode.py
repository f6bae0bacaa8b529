"""The ffmpeg end of ``vsvsrpp upscale``: the command line that encodes a clip, and feeding it.

The clip goes to ffmpeg's stdin as Y4M (or raw planar GBR for RGB clips); ffmpeg's stderr is
drained on a thread and its tail reported on failure. ffmpeg-python builds the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .errors import CliError

log = logging.getLogger("vsvsrpp.cli")

#: Container written to stdout when OUTPUT is '-' and no --format is given.
DEFAULT_STDOUT_FORMAT = "matroska"


def rgb_pix_fmt(bits: int) -> str:
    """ffmpeg's planar GBR pixel format for ``bits`` per sample (VapourSynth writes >8 bit as
    16-bit little-endian words)."""
    if bits == 8:
        return "gbrp"
    if bits in (9, 10, 12, 14, 16):
        return f"gbrp{bits}le"
    raise CliError(f"RGB sources with {bits} bits per sample are not supported")


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


def ffmpeg_command(clip, colors, args: argparse.Namespace, target: str, audio_from: Path | None) -> list[str]:
    """The ffmpeg command line encoding ``clip`` (fed on stdin) to ``target``, tagged with
    ``colors`` (a :class:`vsvsrpp.plugin.colors.Colors`) and copying ``audio_from``'s audio."""
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
    out_opts.update(colors.ffmpeg_args(subsampled=bool(subsampled)))
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
