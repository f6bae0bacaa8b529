"""The segment task: what one worker does for one segment of one file.

It opens the source itself (the path must be readable on every worker), builds the filter over
the *whole* clip with the run's fixed plan (window, overlap, tile), requests only the segment's
output frames, and encodes them to ``segment-N.mkv`` in the work directory: under a temporary
name, checked (frame count), renamed, then recorded in a manifest
(:mod:`vsvsrpp.cluster.workdir`). A segment already done is skipped, so running a task twice
(a retry, a resumed run) costs nothing and changes nothing. No Ray import: the driver wraps
:func:`run_segment` in a Ray task.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Cancelled, OutputError
from ..pipeline.spec import LOSSLESS, Encoding
from ..runtime.segments import Segment
from . import workdir as wd

#: Seconds between progress reports of a running segment to the driver.
REPORT_INTERVAL = 0.5
#: Seconds between a running segment's questions to the driver whether to stop.
STOP_POLL = 0.5


@dataclass(frozen=True)
class SegmentJob:
    """Everything a worker needs for one segment (plain data: it travels to the worker).

    Attributes:
        key: the file's position in the run (for progress).
        input: absolute path of the source, readable on every worker.
        workdir: absolute path of the file's work directory (shared storage).
        segment: the output frames to compute.
        filter_kwargs: filter arguments with the plan fixed (window, overlap, tile, device...).
        encoding: how the segment file is encoded.
        threads: torch and VapourSynth threads on the worker.
        sar: the source's sample aspect ratio ``(num, den)``, written into the segment (the
            join keeps it), or None for square pixels.
    """

    key: int
    input: str
    workdir: str
    segment: Segment
    filter_kwargs: dict[str, Any] = field(default_factory=dict)
    encoding: Encoding = LOSSLESS
    threads: int = 1
    sar: tuple[int, int] | None = None


class _Reporter:
    """A :func:`vsvsrpp.runtime.control.add_listener` listener that sends the segment's frames
    computed so far to ``send(frames)``, at most every :data:`REPORT_INTERVAL` seconds."""

    def __init__(self, send):
        self.send, self.frames, self.last = send, 0.0, 0.0
        self.lock = threading.Lock()

    def __call__(self, frames: float) -> None:
        with self.lock:
            self.frames += frames
            now = time.monotonic()
            if now - self.last < REPORT_INTERVAL:
                return
            self.last = now
            value = self.frames
        with contextlib.suppress(Exception):  # progress is best effort; the result is what counts
            self.send(value)


class _StopWatch:
    """A thread that asks ``stop_asked()`` every :data:`STOP_POLL` seconds and, once it says
    True, cancels this process's passes (:func:`vsvsrpp.runtime.control.cancel`): they end at
    their next step."""

    def __init__(self, stop_asked):
        from ..runtime import control

        self.ended = threading.Event()

        def watch() -> None:
            while not self.ended.wait(STOP_POLL):
                if stop_asked():
                    control.cancel()
                    return

        self.thread = threading.Thread(target=watch, name="vsvsrpp-stop-watch", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.ended.set()
        self.thread.join()


def run_segment(job: SegmentJob, send_progress=None, stop_asked=None) -> dict[str, Any]:
    """Compute one segment into its file in the work directory, unless it is already done.

    Args:
        job: the segment and how to compute it.
        send_progress: called with the segment's frames computed so far (float), now and then.
        stop_asked: called now and then (from another thread); once it returns True the
            segment is abandoned: the pass stops at its next step, nothing is kept of it, and
            :class:`vsvsrpp.errors.Cancelled` is raised. Asked once before anything starts.

    Returns:
        ``{"key", "index", "computed": bool, "pid", "host", "seconds"}``.

    Raises:
        vsvsrpp.errors.VsvsrppError: the source, the network or ffmpeg failed (the message says
            which); nothing is left under the segment's final name.
        vsvsrpp.errors.Cancelled: ``stop_asked`` said so.
    """
    import vapoursynth as vs

    from ..pipeline import ffmpeg
    from ..pipeline.encode import atomic_output, encode
    from ..pipeline.source import network_clip
    from ..runtime import control
    from ..runtime.device import set_cpu_threads

    started = time.monotonic()
    workdir, seg = Path(job.workdir), job.segment
    result = {"key": job.key, "index": seg.index, "pid": os.getpid(), "host": socket.gethostname()}
    if wd.is_done(workdir, seg):  # a retry of an attempt that finished, intact (sha256 checked)
        return result | {"computed": False, "seconds": time.monotonic() - started}
    if stop_asked is not None and stop_asked():
        raise Cancelled(f"segment {seg.index}: the run was stopped before it started")
    marker = wd.marker_path(workdir, seg.index, os.getpid())
    marker.touch()
    final = wd.segment_path(workdir, seg.index)
    reporter = _Reporter(send_progress) if send_progress is not None else None
    done = False
    watch = None
    try:
        set_cpu_threads(job.threads)
        vs.core.num_threads = job.threads
        control.reset()
        if stop_asked is not None:
            watch = _StopWatch(stop_asked)
        _, out, colors = network_clip(Path(job.input), job.filter_kwargs, check_rate=False)
        clip = ffmpeg.for_ffmpeg(out)[seg.start : seg.end]
        tags = ffmpeg.clip_color_args(out, colors)
        streams = ffmpeg.SourceStreams(Path(job.input), sar=job.sar)  # no audio: the join adds it
        if reporter is not None:
            control.add_listener(reporter)
        with atomic_output(final) as tmp:
            encode(clip, ffmpeg.encode_command(clip, tags, job.encoding, ffmpeg.file_url(tmp), streams, container="matroska"), progress=False)
            found = ffmpeg.count_frames(tmp)
            if found != seg.frames:
                raise OutputError(f"segment {seg.index}: ffmpeg wrote {found} frames, expected {seg.frames}")
        wd.record_done(workdir, seg, final, {"pid": os.getpid(), "host": result["host"]})
        done = True
    except Exception as e:
        if control.cancelled() and not isinstance(e, Cancelled):  # the pass's own error says less
            raise Cancelled(f"segment {seg.index}: the run was stopped") from None
        raise
    finally:
        if watch is not None:
            watch.close()
        if reporter is not None:
            control.remove_listener(reporter)
        # this worker's marker; once the segment is done, those of workers that died on it too
        for m in [marker, *(wd.markers(workdir, seg.index) if done else ())]:
            with contextlib.suppress(FileNotFoundError):
                m.unlink()
    return result | {"computed": True, "seconds": time.monotonic() - started}
