"""The work directory of a distributed run: one per output file, on storage every worker sees.

Layout (``N`` is the segment's index, six digits)::

    job.json                 what the segments were computed with (see :func:`open_job`)
    segment-N.mkv            the segment's frames, encoded (complete: renamed into place)
    segment-N.json           its manifest: output frame range, frame count, size, sha256
    segment-N.pid-P          a marker left by worker process P while it computes segment N
    .segment-N.partial-*.mkv a segment being written (never read; removed on resume)

A segment counts as done only when its manifest matches its file, sha256 included (:func:`is_done`), so a worker
that dies at any moment leaves nothing that a later run would take as done. Every file is
written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ..hub.download import sha256_of
from ..runtime.segments import Segment

JOB_FILE = "job.json"


def segment_path(workdir: Path, index: int) -> Path:
    return workdir / f"segment-{index:06d}.mkv"


def manifest_path(workdir: Path, index: int) -> Path:
    return workdir / f"segment-{index:06d}.json"


def marker_path(workdir: Path, index: int, pid: int) -> Path:
    """The file a worker process holds while it computes a segment (its PID in the name)."""
    return workdir / f"segment-{index:06d}.pid-{pid}"


def markers(workdir: Path, index: int) -> list[Path]:
    """The markers of segment ``index`` (one per worker process that started it and has not
    removed its marker: running, or died)."""
    return list(workdir.glob(f"segment-{index:06d}.pid-*"))


def running(workdir: Path) -> dict[int, list[int]]:
    """Segments whose markers exist: ``{index: [worker PIDs]}`` (for progress and tests)."""
    out: dict[int, list[int]] = {}
    for p in workdir.glob("segment-*.pid-*"):
        index, pid = p.name.removeprefix("segment-").split(".pid-")
        out.setdefault(int(index), []).append(int(pid))
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in the same directory, renamed)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(workdir: Path, segment: Segment) -> bool:
    """True when the segment's file exists and matches its manifest (range, frame count, size
    and sha256): a complete, intact result that a run may keep. The driver checks every
    segment when a run starts, and a worker checks its segment again before skipping it, so a
    file damaged after it was written (same size, other bytes) is computed again, never kept."""
    m = read_json(manifest_path(workdir, segment.index))
    path = segment_path(workdir, segment.index)
    if m is None or (m.get("start"), m.get("end"), m.get("frames")) != (segment.start, segment.end, segment.frames):
        return False
    try:
        return path.stat().st_size == m.get("bytes") and sha256_of(path) == m.get("sha256")
    except OSError:
        return False


def record_done(workdir: Path, segment: Segment, path: Path, extra: dict[str, Any]) -> None:
    """Write the manifest of a segment whose file ``path`` is complete and in place."""
    manifest = {
        "index": segment.index,
        "start": segment.start,
        "end": segment.end,
        "frames": segment.frames,
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
    }
    write_json(manifest_path(workdir, segment.index), manifest | extra)


def stored_job(workdir: Path, resume: bool) -> dict[str, Any] | None:
    """The settings stored in ``workdir`` by an earlier run (None if there is none).

    Raises:
        FileExistsError: there is one and ``resume`` is False.
    """
    stored = read_json(workdir / JOB_FILE)
    if stored is not None and not resume:
        raise FileExistsError(f"{workdir} holds an earlier run; give --resume to continue it, or remove it")
    return stored


def open_job(workdir: Path, settings: dict[str, Any], resume: bool) -> None:
    """Create ``workdir`` for a run with ``settings`` (a JSON-able dict of everything that
    decides the segments' content), or reopen it.

    A run without ``resume`` refuses an existing work directory (an interrupted run's
    segments would be lost or, worse, mixed with another run's); with ``resume`` the settings
    must equal the stored ones. Temporary files and markers of dead workers are removed.

    Raises:
        FileExistsError: the directory holds a run and ``resume`` is False.
        ValueError: ``resume`` and the stored settings differ (the message names them).
    """
    stored = stored_job(workdir, resume)
    if stored is not None:
        changed = sorted(k for k in stored.keys() | settings.keys() if stored.get(k) != settings.get(k))
        if changed:
            raise ValueError(
                f"{workdir} was made with other settings ({', '.join(changed)} differ); run with the same "
                "options to resume, or remove it to start again"
            )
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in [*workdir.glob(".segment-*"), *workdir.glob("segment-*.pid-*"), *workdir.glob(".job.json.*")]:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    if stored is None:
        write_json(workdir / JOB_FILE, settings)
