"""Feeding ffmpeg, and outputs that are complete or absent.

:func:`encode` runs an ffmpeg command (:func:`vsvsrpp.pipeline.ffmpeg.encode_command`) and
streams a clip into its stdin (Y4M, or raw video: RGB, 4:1:0, 4:4:0) from a thread; ffmpeg's
stderr is drained on another and its tail reported on failure. The main thread handles
signals, watches ffmpeg and the output pipe, and cancels the running network pass when the
output can no longer be written. :func:`atomic_output` writes a file under a temporary name and
renames it on success. :func:`request_frame` gets one frame the same way: computed on
VapourSynth's threads while this one waits, so that signals are handled during the pass.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import secrets
import select
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError, ReaderGone, VsvsrppError
from ..runtime import control

log = logging.getLogger("vsvsrpp.pipeline")


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


def partial_path(output: Path) -> Path:
    """A fresh hidden temporary name next to ``output`` with the same extension."""
    return output.with_name(f".{output.stem}.partial-{secrets.token_hex(4)}{output.suffix}")


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Write ``output`` atomically: yields a temporary path next to it (:func:`partial_path`),
    renamed to ``output`` when the block ends normally, deleted when it raises (or is
    interrupted), so that ``output`` is either complete or untouched.

    Raises:
        vsvsrpp.errors.OutputError: the block ended normally but wrote nothing to the temporary
            path, or the rename failed. A failed removal of the temporary path (a read-only file
            system answers EROFS even for a missing file) never hides the block's own error.
    """
    tmp = partial_path(output)
    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError(f"nothing was written to {output}")
        try:
            os.replace(tmp, output)
        except OSError as e:
            raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
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
        from .ffmpeg import raw_pix_fmt

        try:
            y4m = raw_pix_fmt(self.clip.format) is None  # as encode_command told ffmpeg
            self.clip.output(self.stdin, y4m=y4m, progress_update=self.progress.delivered)
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


def request_frame(clip, n: int):
    """Frame ``n`` of ``clip``, computed on VapourSynth's threads while this thread waits in
    steps of :data:`POLL_INTERVAL`: a signal (:mod:`vsvsrpp.pipeline.signals`) ends the wait at
    once, the running network pass is cancelled (:func:`vsvsrpp.runtime.control.cancel`) and
    given :data:`STOP_GRACE` to stop at its next step, and the signal's exception goes on.

    Raises:
        vsvsrpp.errors.VsvsrppError: the frame failed (the filter's message).
    """
    future = clip.get_frame_async(n)
    try:
        while True:
            try:
                return future.result(timeout=POLL_INTERVAL)
            except concurrent.futures.TimeoutError:
                continue
    except Exception as e:
        raise VsvsrppError(f"processing failed: {e}") from None
    except BaseException:  # a signal (Interrupted, KeyboardInterrupt): stop the pass, then unwind
        control.cancel()
        with contextlib.suppress(Exception):
            future.exception(timeout=STOP_GRACE)
        raise


def encode(clip, cmd: list[str], progress: bool, *, watch_stdout: bool = False) -> None:
    """Run ffmpeg with ``cmd`` and stream ``clip`` into its stdin (Y4M, or raw planar GBR for RGB
    clips).

    The frames are fed from a thread while this one watches: if ffmpeg ends early, or (with
    ``watch_stdout``) the reader of file descriptor 1 (where ffmpeg's ``pipe:1`` goes) goes
    away, or a signal arrives, the running network pass is cancelled
    (:func:`vsvsrpp.runtime.control.cancel`) and stops at its next step; ffmpeg is killed and
    reaped on any exception.

    Raises:
        vsvsrpp.errors.OutputError: ffmpeg failed (with its stderr tail) or could not be started.
        vsvsrpp.errors.ReaderGone: the reader of stdout (or of a FIFO) went away.
        vsvsrpp.errors.VsvsrppError: processing failed (the filter's message).
    """
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise OutputError("ffmpeg not found; install it and make sure it is on PATH") from None
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
        raise ReaderGone("the reader of the output pipe went away; stopped")
    if rc != 0:
        tail = reader.tail()
        if "Broken pipe" in tail or rc == -signal.SIGPIPE:  # a FIFO or device output whose reader went away
            raise ReaderGone("the reader of the output went away (broken pipe); stopped")
        raise OutputError(f"ffmpeg failed (exit code {rc})" + (f":\n{tail}" if tail else ""))
    if feeder.error is not None:
        log.debug("frame output failed", exc_info=feeder.error)
        raise VsvsrppError(f"processing failed: {feeder.error}")


def in_place(output: Path) -> bool:
    """True when ``output`` exists and is not a regular file (a FIFO, a device): it is written
    as a stream, not replaced by a renamed temporary file."""
    try:
        mode = Path(output).stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)
