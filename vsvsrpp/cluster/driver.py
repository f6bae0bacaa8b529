"""The driver of a distributed run on Ray: plan, schedule, follow, join.

For each file: the source is opened here (frame count, rate, colours); one Ray task on a worker
asks the filter for its plan (window and tile, from that worker's device memory) unless
``--window`` fixes it; the clip is cut into segments on window borders
(:func:`vsvsrpp.runtime.segments.plan_segments`); the work directory is opened (or, with
``resume``, reopened, keeping every segment that is done). Then the segments still to do, of all
files, are scheduled longest first as Ray tasks (:func:`vsvsrpp.cluster.task.run_segment`), one
GPU each when the cluster has GPUs. Ray retries a task whose worker dies. A file is joined
(:mod:`vsvsrpp.cluster.assemble`) as soon as its last segment is done. On Ctrl-C or a failure
the tasks are asked to stop through the run's board actor (a running one stops at its pass's
next step, one not started yet does not start), and the work directories are kept for
``--resume``. ``ray.cancel`` is not used: cancelling a task while its result is on the way races
with its completion in Ray's core worker, which then aborts the driver ("Tried to complete task
that was not pending"; ray-project/ray#54846, seen here with Ray 2.60).

Every segment runs the filter with the same window, overlap and tile, so the output equals a
single-process run with those settings frame for frame (on workers of one device type and
precision: a GPU and a CPU compute different rounding).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UsageError, VsvsrppError
from ..pipeline.ffmpeg import SourceStreams
from ..pipeline.spec import LOSSLESS, Encoding, RunSpec
from ..runtime.segments import Segment, longest_first, plan_segments
from . import workdir as wd
from .task import SegmentJob, run_segment

log = logging.getLogger("vsvsrpp.cluster")

#: Attempts after the first for a segment whose worker died (Ray's ``max_retries``).
DEFAULT_RETRIES = 3
#: Seconds between progress updates of the driver.
POLL = 0.5
#: Seconds to wait for the board actor when asking it to stop the tasks, or whether to stop.
STOP_TIMEOUT = 5.0


def import_ray():
    """Ray, or a one-line error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise VsvsrppError("--ray needs Ray, which is not installed: pip install 'vsvsrpp[ray]'") from None
    return ray


@dataclass(frozen=True)
class ClusterOptions:
    """How a run is spread over a Ray cluster.

    Attributes:
        address: the cluster (``"auto"``, ``HOST:PORT``, ``ray://HOST:PORT``), ``""`` or None
            for a local cluster started for the run.
        segment_frames: output frames per task, rounded down to whole windows.
        segment_codec: ``"ffv1"`` (lossless segments, encoded once more when joined) or
            ``"final"`` (segments encoded with the run's encoding and joined as they are).
        resume: keep the segments an interrupted run finished.
        keep_work: keep the work directories after the outputs are written.
        work_dir: where work directories go (None: next to each output).
        cpus_per_task: CPUs (torch threads) per task on a cluster without GPUs.
        retries: times a task is tried again when its worker dies.
    """

    address: str | None = None
    segment_frames: int = 240
    segment_codec: str = "ffv1"
    resume: bool = False
    keep_work: bool = False
    work_dir: Path | None = None
    cpus_per_task: int = 1
    retries: int = DEFAULT_RETRIES


@dataclass
class FileJob:
    """One input file of the run and where it stands."""

    key: int
    input: Path
    output: Path
    workdir: Path
    num_frames: int
    fps: tuple[int, int]
    colors_args: dict[str, str]
    streams: SourceStreams
    rgb: bool
    filter_kwargs: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    done: set[int] = field(default_factory=set)


def work_dir_for(output: Path, root: Path | None) -> Path:
    """The work directory of ``output``: ``.NAME.vsvsrpp-work`` next to it, or under ``root``."""
    name = f".{output.name}.vsvsrpp-work"
    return (root / name.lstrip(".")) if root is not None else output.with_name(name)


def _plan_task(path: str, kwargs: dict[str, Any], threads: int) -> dict[str, Any]:
    """Ray task: the filter's plan for ``path`` on the worker's device."""
    from ..pipeline.source import open_source
    from ..plugin import entry
    from ..runtime.device import set_cpu_threads

    set_cpu_threads(threads)
    return entry.plan(open_source(Path(path), check_rate=False), **kwargs)


def _segment_task(job: SegmentJob, board) -> dict[str, Any]:
    """Ray task: :func:`run_segment`, reporting progress to the driver's board actor and
    stopping when the driver asks it to (or when the board is gone with the driver)."""
    import ray

    key = (job.key, job.segment.index)

    def stop_asked() -> bool:
        try:
            return bool(ray.get(board.stopped.remote(), timeout=STOP_TIMEOUT))
        except ray.exceptions.GetTimeoutError:
            return False  # a slow answer is no answer: ask again
        except ray.exceptions.RayActorError:
            return True  # the board went with the run that started this task

    return run_segment(job, lambda frames: board.set.remote(key, frames), stop_asked)


class _ProgressBoard:
    """Ray actor shared by the driver and its segment tasks: frames computed so far by each
    running segment (a retried segment starts again from 0), and whether the driver asked the
    tasks to stop."""

    def __init__(self):
        self.frames: dict[tuple[int, int], float] = {}
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True

    def stopped(self) -> bool:
        return self.stopping

    def set(self, key: tuple[int, int], frames: float) -> None:
        self.frames[key] = frames

    def get(self) -> dict[tuple[int, int], float]:
        return dict(self.frames)


def _settings(job: FileJob, options: ClusterOptions, encoding: Encoding) -> dict[str, Any]:
    """What decides the content of ``job``'s segments (stored in ``job.json``; resume checks it)."""
    from ..hub.download import sha256_of

    st = job.input.stat()
    kwargs = {k: str(v) for k, v in sorted(job.filter_kwargs.items())}
    weights = job.filter_kwargs.get("weights")
    return {
        "input": str(job.input),
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "frames": job.num_frames,
        "filter": kwargs,
        "plan": job.plan,
        "weights_sha256": sha256_of(weights) if weights else None,
        "segment_frames": options.segment_frames,
        "segment_encoding": vars(encoding) if not encoding.is_lossless else "ffv1",
        "vsvsrpp": __version__,
    }


def _open_file(key: int, source: Path, output: Path, options: ClusterOptions, kwargs: dict[str, Any]) -> FileJob:
    """Read what the driver needs to know of a source (rate, length, colours, what the output
    keeps of it: audio, start offset, aspect ratio)."""
    import vapoursynth as vs

    from ..pipeline.ffmpeg import color_args, probe_source, raw_pix_fmt
    from ..pipeline.source import open_source, output_format, source_colors

    src = open_source(source)
    colors = source_colors(src, source)
    fmt = output_format(src.format)
    raw_pix_fmt(fmt)  # a format ffmpeg cannot take fails here, before any segment runs
    subsampled = fmt.color_family == vs.YUV and bool(fmt.subsampling_w or fmt.subsampling_h)
    workdir = work_dir_for(output, options.work_dir.absolute() if options.work_dir else None)
    return FileJob(key, source.absolute(), output.absolute(), workdir, src.num_frames, (src.fps_num, src.fps_den),
                   color_args(colors, subsampled=subsampled), probe_source(source.absolute()), fmt.color_family == vs.RGB, kwargs)  # fmt: skip


def _connect(ray, address: str | None, verbose: bool) -> bool:
    """Connect to the cluster at ``address`` (None: start a local one); True if started here."""
    from ..pipeline import signals

    if ray.is_initialized():  # a caller (a test, a notebook) connected already
        return False
    started = time.monotonic()
    try:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=verbose, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise VsvsrppError(f"cannot connect to the Ray cluster at {address}: {e}") from None
    finally:
        signals.install()  # ray.init replaces the SIGTERM handler
    res = ray.cluster_resources()
    log.info("Ray %s: %d CPUs, %d GPUs (%.1f s to connect)", address or "local cluster", res.get("CPU", 0), res.get("GPU", 0),
             time.monotonic() - started)  # fmt: skip
    return True


def run(spec: RunSpec, options: ClusterOptions) -> dict[str, Any]:
    """Upscale each ``(input, output)`` pair of ``spec`` on a Ray cluster (see the module's
    description).

    Args:
        spec: the run: inputs (readable on every worker), outputs (regular files), filter
            arguments, the output's encoding and container, progress.
        options: how the run is spread over the cluster.

    Returns:
        A report: ``segments`` planned, ``computed`` and ``kept`` (done by an earlier run),
        ``tasks`` (each task's result: segment, worker PID and host, seconds), ``seconds``.

    Raises:
        vsvsrpp.errors.VsvsrppError: Ray missing or unreachable, a source or network that
            cannot be used, a work directory of other settings (a UsageError), a segment that
            failed after its retries, or a join that failed. Work directories are kept for
            ``resume``.
    """
    ray = import_ray()
    started = time.monotonic()
    final = spec.encoding
    encoding = LOSSLESS if options.segment_codec == "ffv1" else final
    kwargs = dict(spec.filter_kwargs)
    if "weights" in kwargs:
        kwargs["weights"] = str(Path(kwargs["weights"]).absolute())
    files = [_open_file(k, Path(i), Path(o), options, kwargs) for k, (i, o) in enumerate(spec.pairs)]
    started_here = _connect(ray, options.address, spec.verbose)
    try:
        return _run(ray, files, spec, options, encoding, final) | {"seconds": time.monotonic() - started}
    finally:
        if started_here:
            ray.shutdown()


def _resources(ray, options: ClusterOptions) -> dict[str, Any]:
    """Each task's resources: one GPU when the cluster has GPUs, else ``--cpus-per-task`` CPUs
    (refused up front when no node has that many: the tasks would wait forever)."""
    if ray.cluster_resources().get("GPU", 0) > 0:
        return {"num_gpus": 1, "num_cpus": 1}
    most = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    if options.cpus_per_task > most:
        raise UsageError(f"--cpus-per-task {options.cpus_per_task}: no node of the cluster has more than {most:g} CPUs")
    return {"num_cpus": options.cpus_per_task}


def _run(ray, files: list[FileJob], spec: RunSpec, options: ClusterOptions, encoding: Encoding, final: Encoding) -> dict[str, Any]:  # fmt: skip
    resources = _resources(ray, options)
    threads = int(resources["num_cpus"])
    for f, plan in zip(files, _plans(ray, files, options, resources)):
        f.plan = plan
        f.segments = plan_segments(f.num_frames, plan["window"], plan["overlap"], options.segment_frames)
        try:
            wd.open_job(f.workdir, _settings(f, options, encoding), options.resume)
        except (FileExistsError, ValueError) as e:
            raise UsageError(str(e)) from None
        f.done = {s.index for s in f.segments if wd.is_done(f.workdir, s)}
        log.info("%s: window %d, overlap %d, tile %s on %s (%s); %d segments, %d done already",
                 f.input.name, plan["window"], plan["overlap"], plan["tile"], plan["device"], plan["precision"],
                 len(f.segments), len(f.done))  # fmt: skip
    board = ray.remote(num_cpus=0)(_ProgressBoard).remote()
    task = ray.remote(_segment_task).options(**resources, max_retries=options.retries, retry_exceptions=False)
    todo = longest_first([(f, s) for f in files for s in f.segments if s.index not in f.done], lambda fs: fs[1])
    pending = {}
    for f, s in todo:
        kwargs = f.filter_kwargs | {k: f.plan[k] for k in ("window", "overlap", "tile", "exact_tiles", "offload") if k in f.plan}
        job = SegmentJob(f.key, str(f.input), str(f.workdir), s, kwargs, encoding, threads, f.streams.sar)
        pending[task.remote(job, board)] = (f, s)
    results: list[dict[str, Any]] = []
    try:
        for f in files:
            if len(f.done) == len(f.segments):
                _join(f, encoding, final, spec, options)
        _follow(ray, pending, board, files, results, encoding, final, spec, options)
    except BaseException:
        if pending:  # not ray.cancel: see the module's description
            with contextlib.suppress(Exception):
                ray.get(board.stop.remote(), timeout=STOP_TIMEOUT)
        kept = [str(f.workdir) for f in files if f.workdir.exists()]
        if kept:
            log.info("work kept in %s; run the same command with --resume to continue", ", ".join(kept))
        raise
    planned = sum(len(f.segments) for f in files)
    computed = sum(1 for r in results if r["computed"])
    return {"segments": planned, "computed": computed, "kept": planned - computed, "tasks": results}


def _plans(ray, files: list[FileJob], options: ClusterOptions, resources: dict[str, Any]) -> list[dict[str, Any]]:
    """Each file's plan (window, overlap, tile, device, precision): the one stored in its work
    directory when resuming (free memory may have changed since), else the filter's plan on a
    worker, one task per file, all at once."""
    from ..runtime.windows import DEFAULT_OVERLAP

    try:  # refused before anything is planned
        stored = [wd.stored_job(f.workdir, options.resume) for f in files]
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    ask = [f for f, job in zip(files, stored) if not (job and isinstance(job.get("plan"), dict))]
    task = ray.remote(_plan_task).options(**resources, max_retries=options.retries)
    refs = [task.remote(str(f.input), f.filter_kwargs, int(resources["num_cpus"])) for f in ask]
    started = time.monotonic()
    planned = dict(zip((f.key for f in ask), _get(ray, refs, "planning")))
    if ask:
        log.info("planned %d file(s) on workers in %.1f s (worker start, model load)", len(ask), time.monotonic() - started)
    plans = []
    for f, job in zip(files, stored):
        plan = planned[f.key] | {"overlap": f.filter_kwargs.get("overlap", DEFAULT_OVERLAP)} if f.key in planned else job["plan"]
        plans.append(plan)
    return plans


def _get(ray, refs: list, what: str) -> list:
    """``ray.get`` with a task's error turned into a :class:`~vsvsrpp.errors.VsvsrppError` (its own message)."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None) or e
        raise VsvsrppError(f"{what} failed: {cause}") from None
    except ray.exceptions.RayError as e:
        raise VsvsrppError(f"{what} failed: {type(e).__name__}: {e}") from None


def _follow(ray, pending: dict, board, files: list[FileJob], results: list, encoding: Encoding, final: Encoding,
            spec: RunSpec, options: ClusterOptions) -> None:  # fmt: skip
    """Wait for the segment tasks, show the frames done, join each file when it is complete."""
    import sys

    from tqdm import tqdm

    total = sum(f.num_frames for f in files)
    done_frames = sum(s.frames for f in files for s in f.segments if s.index in f.done)
    bar = tqdm(total=total, initial=done_frames, unit="frame", file=sys.stderr, disable=not spec.progress, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")  # fmt: skip
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL)
            for ref in ready:
                f, s = pending.pop(ref)
                results.append(_get(ray, [ref], f"segment {s.index} (frames {s.start}-{s.end - 1}) of {f.input.name}")[0])
                f.done.add(s.index)
                done_frames += s.frames
                if len(f.done) == len(f.segments):
                    _join(f, encoding, final, spec, options)
            running = {k: v for k, v in _board(ray, board).items() if k[1] not in files[k[0]].done}
            value = min(total, done_frames + sum(running.values()))
            if value > bar.n:
                bar.update(value - bar.n)
    finally:
        bar.close()


def _board(ray, board) -> dict:
    try:
        return ray.get(board.get.remote(), timeout=POLL)
    except Exception:  # progress is best effort
        return {}


def _join(f: FileJob, encoding: Encoding, final: Encoding, spec: RunSpec, options: ClusterOptions) -> None:
    from .assemble import assemble

    assemble(f.workdir, f.segments, f.streams, f.output, f.num_frames, f.fps, f.colors_args, encoding, final, spec.container, f.rgb)
    log.info("wrote %s (%d frames, %d segments)", f.output, f.num_frames, len(f.segments))
    if not options.keep_work:
        shutil.rmtree(f.workdir, ignore_errors=True)
