"""The ffmpeg end of ``vsvsrpp upscale``: the command line that encodes a clip, and feeding it.

The clip goes to ffmpeg's stdin as Y4M (or raw planar GBR for RGB clips); ffmpeg's stderr is
drained on a thread and its tail reported on failure. ffmpeg-python builds the command line.
The frames are fed from a thread; the main thread handles signals, watches ffmpeg and the
output pipe, and cancels the running network pass when the output can no longer be written.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..runtime import control
from .errors import EXIT_BROKEN_PIPE, CliError

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
    # -xerror: ffmpeg otherwise exits 0 after a failed write (a full disk: a cut-short file
    # reported as success; a FIFO whose reader left: the run goes on to the end).
    return ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", loglevel, "-xerror", "-y", *ffmpeg.get_args(node)]


def partial_path(output: Path) -> Path:
    """A fresh hidden temporary name next to ``output`` with the same extension."""
    return output.with_name(f".{output.stem}.partial-{secrets.token_hex(4)}{output.suffix}")


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Write ``output`` atomically: yields a temporary path next to it (:func:`partial_path`),
    renamed to ``output`` when the block ends normally, deleted when it raises (or is
    interrupted), so that ``output`` is either complete or untouched.

    Raises:
        CliError: the block ended normally but wrote nothing to the temporary path.
    """
    tmp = partial_path(output)
    try:
        yield tmp
        if not tmp.is_file():
            raise CliError(f"nothing was written to {output}")
        os.replace(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class _Progress:
    """The frame counter on stderr: output frames delivered to ffmpeg, or more while a pass runs
    (the passes report their steps through :mod:`vsvsrpp.runtime.control`), so the bar and its
    ETA move during the first window too."""

    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.lock = threading.Lock()
        self.computed = 0.0
        self.bar = tqdm(
            total=total,
            unit="frame",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]",
        )

    def _show(self, value: float) -> None:
        value = min(value, self.bar.total)
        with self.lock:
            if value > self.bar.n:
                self.bar.update(value - self.bar.n)

    def computed_frames(self, frames: float) -> None:
        """A :func:`vsvsrpp.runtime.control.add_listener` listener."""
        with self.lock:
            self.computed += frames
            value = self.computed
        self._show(value)

    def delivered(self, done: int, total: int) -> None:
        """``progress_update`` of ``VideoNode.output``."""
        self._show(float(done))

    def close(self) -> None:
        self.bar.close()


class _Feeder(threading.Thread):
    """Writes the clip into ffmpeg's stdin (``VideoNode.output``) on its own thread, so the main
    thread stays free to handle signals and to watch ffmpeg and the output pipe."""

    def __init__(self, clip, stdin, progress: _Progress):
        super().__init__(daemon=True, name="vsvsrpp-feeder")
        self.clip, self.stdin, self.progress = clip, stdin, progress
        self.error: Exception | None = None
        # Waited on instead of join(): a signal handler raising inside Thread.join() makes the
        # Thread believe it has ended (CPython's bpo-45274 handling), and a later join() returns
        # at once while the thread still runs.
        self.done = threading.Event()

    def run(self) -> None:
        import vapoursynth as vs

        try:
            self.clip.output(self.stdin, y4m=self.clip.format.color_family != vs.RGB, progress_update=self.progress.delivered)
        except Exception as e:  # a broken pipe when ffmpeg ends, a cancelled pass, a filter's error
            self.error = e
        finally:
            with contextlib.suppress(OSError):
                self.stdin.close()
            self.done.set()


def reader_gone(fd: int) -> bool:
    """True when ``fd`` is the write end of a pipe whose reader has closed it (POLLERR)."""
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
    try:
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except OSError:
        return False


#: Seconds the main thread waits between checks of ffmpeg and of the output pipe.
POLL_INTERVAL = 0.2
#: Seconds to wait, after a cancellation, for the running pass to reach its next step.
STOP_GRACE = 60.0


def encode(clip, cmd: list[str], progress: bool, *, watch_stdout: bool = False) -> None:
    """Run ffmpeg with ``cmd`` and stream ``clip`` into its stdin (Y4M, or raw planar GBR for RGB
    clips).

    The frames are fed from a thread while this one watches: if ffmpeg ends early, or (with
    ``watch_stdout``) the reader of file descriptor 1 (where ffmpeg's ``pipe:1`` goes) goes
    away, or a signal arrives, the running network pass is cancelled
    (:func:`vsvsrpp.runtime.control.cancel`) and stops at its next step; ffmpeg is killed and
    reaped on any exception.

    Raises:
        CliError: ffmpeg failed (with its stderr tail), processing failed, or (exit code 141)
            the reader of stdout went away.
    """
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise CliError("ffmpeg not found; install it and make sure it is on PATH") from None
    reader = _StderrReader(proc.stderr)
    reader.start()
    bar = _Progress(clip.num_frames, progress)
    control.add_listener(bar.computed_frames)
    feeder = _Feeder(clip, proc.stdin, bar)
    gone = False
    try:
        feeder.start()
        while not feeder.done.wait(POLL_INTERVAL):
            gone = gone or (watch_stdout and reader_gone(1))
            if gone or proc.poll() is not None:
                control.cancel()  # nobody will take the frames: stop the pass at its next step
        rc = proc.wait()
    except BaseException:  # a signal (Interrupted, KeyboardInterrupt): stop everything, then unwind
        control.cancel()
        proc.kill()
        proc.wait()
        feeder.done.wait(STOP_GRACE)
        raise
    finally:
        control.remove_listener(bar.computed_frames)
        bar.close()
        reader.join(timeout=5)
    if gone or (watch_stdout and reader_gone(1)):
        raise CliError("the reader of the output pipe went away; stopped", EXIT_BROKEN_PIPE)
    if rc != 0:
        tail = reader.tail()
        if "Broken pipe" in tail or rc == -signal.SIGPIPE:  # a FIFO or device output whose reader went away
            raise CliError("the reader of the output went away (broken pipe); stopped", EXIT_BROKEN_PIPE)
        raise CliError(f"ffmpeg failed (exit code {rc})" + (f":\n{tail}" if tail else ""))
    if feeder.error is not None:
        log.debug("frame output failed", exc_info=feeder.error)
        raise CliError(f"processing failed: {feeder.error}")
