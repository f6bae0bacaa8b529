"""The segment planner and the work directory of distributed runs (no Ray needed)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vsvsrpp import cli
from vsvsrpp.cluster import workdir as wd
from vsvsrpp.runtime.segments import Segment, longest_first, plan_segments
from vsvsrpp.runtime.windows import WindowPlan


@given(
    n=st.integers(0, 300),
    window=st.integers(1, 30),
    overlap=st.integers(0, 8),
    target=st.integers(1, 120),
    cuts=st.lists(st.integers(1, 299), max_size=6),
)
def test_segments_follow_the_window_grid(n, window, overlap, target, cuts):
    plan = WindowPlan(n, window, overlap, cuts)
    segments = plan_segments(n, window, overlap, target, cuts)
    # they tile [0, n) in order
    assert [s.index for s in segments] == list(range(len(segments)))
    assert [s.start for s in segments] == [0, *(s.end for s in segments[:-1])][: len(segments)]
    assert (segments[-1].end if segments else 0) == n
    for s in segments:
        # borders are grid lines, cuts or the clip's end; never longer than needed
        assert s.end == n or s.end % window == 0 or s.end in plan.cuts
        assert s.frames <= max(target, window)
        # every window emitting here emits only here, and reads inside the read range
        runs = [w for w in plan.windows() if w.emit_start < s.end and w.emit_end > s.start]
        assert all(s.start <= w.emit_start and w.emit_end <= s.end for w in runs)
        assert (s.read_start, s.read_end) == (min(w.start for w in runs), max(w.end for w in runs))


def test_segment_length_is_rounded_down_to_whole_windows():
    segments = plan_segments(100, 8, 2, 20)
    # the clip's end is a border: the last segment takes the 4 frames after 96 rather than leave them alone
    assert [(s.start, s.end) for s in segments] == [(0, 16), (16, 32), (32, 48), (48, 64), (64, 80), (80, 100)]
    assert (segments[1].read_start, segments[1].read_end) == (14, 34)  # the overlap context on both sides
    assert (segments[0].read_start, segments[0].read_end) == (0, 18)  # a shot's first window runs window + overlap


def test_a_cut_is_a_border_and_stops_the_context():
    segments = plan_segments(40, 8, 2, 4, cuts=[21])
    assert [(s.start, s.end) for s in segments] == [(0, 8), (8, 16), (16, 21), (21, 24), (24, 32), (32, 40)]
    assert (segments[2].read_start, segments[2].read_end) == (14, 21)  # the context stops at the cut
    assert (segments[3].read_start, segments[3].read_end) == (21, 31)  # a shot's first window: window + overlap
    # a longer target takes the cut inside a segment (it is a window border there too)
    assert [(s.start, s.end) for s in plan_segments(40, 8, 2, 8, cuts=[21])][2] == (16, 24)


def test_longest_first_and_bad_target():
    order = longest_first(plan_segments(100, 8, 2, 20))
    assert [s.frames for s in order] == [20] + [16] * 5
    assert [s.index for s in order[:3]] == [5, 0, 1]  # ties in frame order
    with pytest.raises(ValueError, match="segment_frames must be >= 1, got 0"):
        plan_segments(10, 4, 1, 0)


def _segment_file(tmp_path, seg: Segment, content: bytes = b"frames") -> None:
    path = wd.segment_path(tmp_path, seg.index)
    path.write_bytes(content)
    wd.record_done(tmp_path, seg, path, {"pid": 1})


def test_a_segment_is_done_only_when_its_file_matches_its_manifest(tmp_path):
    seg = Segment(3, 16, 24, 14, 26)
    assert not wd.is_done(tmp_path, seg)
    _segment_file(tmp_path, seg)
    assert wd.is_done(tmp_path, seg)
    assert json.loads(wd.manifest_path(tmp_path, 3).read_text())["frames"] == 8
    assert not wd.is_done(tmp_path, Segment(3, 16, 25, 14, 26))  # another range (another plan)
    wd.segment_path(tmp_path, 3).write_bytes(b"framez")  # same size, other content
    assert not wd.is_done(tmp_path, seg)
    wd.segment_path(tmp_path, 3).unlink()
    assert not wd.is_done(tmp_path, seg)
    wd.manifest_path(tmp_path, 3).write_text("{not json")
    assert not wd.is_done(tmp_path, seg)


def test_open_job_refuses_reuse_without_resume_and_other_settings(tmp_path):
    work = tmp_path / "work"
    settings = {"input": "a.mp4", "filter": {"window": "8"}}
    wd.open_job(work, settings, resume=False)
    seg = Segment(0, 0, 8, 0, 10)
    _segment_file(work, seg)
    (work / ".segment-000001.partial-99.mkv").write_bytes(b"x")
    wd.marker_path(work, 1, 99).touch()
    assert wd.running(work) == {1: [99]}
    with pytest.raises(FileExistsError, match="give --resume"):
        wd.open_job(work, settings, resume=False)
    with pytest.raises(ValueError, match=r"filter differ"):
        wd.open_job(work, settings | {"filter": {"window": "16"}}, resume=True)
    wd.open_job(work, settings, resume=True)
    assert wd.is_done(work, seg)  # kept
    assert wd.running(work) == {} and not list(work.glob(".segment-*"))  # leftovers of dead workers removed


def test_the_worker_recomputes_a_corrupted_segment_of_the_right_size(tiny_checkpoint, tmp_path, restore_threads):
    """Issue 26, item 1: a segment damaged after it was written (same size, other bytes: a flipped
    block, a node crash leaving zeros) is computed again by the worker, not kept."""
    import subprocess

    from vsvsrpp.cluster.task import SegmentJob, run_segment
    from vsvsrpp.hub.download import sha256_of

    clip = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=24", "-frames:v", "4",
                    "-c:v", "ffv1", str(clip)], check=True)  # fmt: skip
    work = tmp_path / "work"
    wd.open_job(work, {}, resume=False)
    # the threads in force: a segment task sets torch's count, and VapourSynth threads that first run
    # torch meanwhile keep it for good, which would change later tests' rounding
    job = SegmentJob(0, str(clip), str(work), Segment(0, 0, 4, 0, 4), {"weights": str(tiny_checkpoint), "device": "cpu", "window": 4},
                     threads=torch.get_num_threads())  # fmt: skip
    assert run_segment(job)["computed"]
    path = wd.segment_path(work, 0)

    def decoded() -> str:  # the frames' MD5 (the container holds random UIDs)
        cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "md5", "-"]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    good, frames = path.read_bytes(), decoded()
    assert not run_segment(job)["computed"]  # done and intact: kept
    middle = len(good) // 2
    path.write_bytes(good[:middle] + bytes(64) + good[middle + 64 :])
    assert run_segment(job)["computed"]  # damaged: computed again
    assert decoded() == frames and sha256_of(path) == wd.read_json(wd.manifest_path(work, 0))["sha256"]


def test_a_segment_asked_to_stop_ends_without_keeping_anything(tiny_checkpoint, tmp_path, restore_threads, monkeypatch):
    """The driver stops its tasks through its board actor, not ray.cancel (which can abort the
    driver when it races with a task's completion): asked before it starts, a segment does not
    start; asked while it runs, its pass ends and nothing of it is kept."""
    import subprocess

    from vsvsrpp.cluster import task
    from vsvsrpp.errors import Cancelled
    from vsvsrpp.runtime import control

    clip = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=24", "-frames:v", "4",
                    "-c:v", "ffv1", str(clip)], check=True)  # fmt: skip
    work = tmp_path / "work"
    wd.open_job(work, {}, resume=False)
    job = task.SegmentJob(0, str(clip), str(work), Segment(0, 0, 4, 0, 4), {"weights": str(tiny_checkpoint), "device": "cpu", "window": 4},
                          threads=torch.get_num_threads())  # fmt: skip
    asked = []

    def before_start() -> bool:
        asked.append(1)
        return True

    with pytest.raises(Cancelled, match="stopped before it started"):
        task.run_segment(job, stop_asked=before_start)
    assert asked == [1] and sorted(p.name for p in work.iterdir()) == ["job.json"]

    monkeypatch.setattr(task, "STOP_POLL", 0.01)
    answers = iter([False])  # go ahead, then stop at the watch's first question

    try:
        with pytest.raises(Cancelled, match="segment 0: the run was stopped"):
            task.run_segment(job, stop_asked=lambda: next(answers, True))
        assert control.cancelled()
    finally:
        control.reset()
    assert sorted(p.name for p in work.iterdir()) == ["job.json"]  # no segment, manifest, marker or temporary file
    assert not wd.is_done(work, job.segment)
    assert task.run_segment(job)["computed"]  # and the segment computes when asked again
    assert wd.is_done(work, job.segment)


def test_the_join_tags_rgb_segments_encoded_as_yuv(tmp_path):
    """Issue 26, item 6, in the Ray join: lossless RGB segments re-encoded with libx264 (which
    takes no RGB) are converted with a known matrix and tagged with it."""
    import subprocess

    from vsvsrpp.cluster.assemble import assemble
    from vsvsrpp.pipeline.ffmpeg import SourceStreams
    from vsvsrpp.pipeline.spec import LOSSLESS, Encoding

    segments = [Segment(0, 0, 3, 0, 3), Segment(1, 3, 6, 3, 6)]
    for s in segments:
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=24", "-frames:v", "3",
                        "-c:v", "ffv1", "-pix_fmt", "gbrp", str(wd.segment_path(tmp_path, s.index))], check=True)  # fmt: skip
    out = tmp_path / "out.mkv"
    assemble(tmp_path, segments, SourceStreams(tmp_path / "src.mkv"), out, 6, (24, 1), {}, LOSSLESS, Encoding(preset="ultrafast"), None, rgb=True)
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=pix_fmt,color_space,color_range", "-of", "json", str(out)]
    stream = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["streams"][0]
    assert (stream["pix_fmt"], stream.get("color_space"), stream.get("color_range")) == ("yuv444p", "bt709", "tv")


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.mp4"
    path.write_bytes(b"not decoded by these tests")
    return path


def test_without_ray_installed_one_line_names_the_extra(source, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert cli.main(["upscale", str(source), str(tmp_path / "o.mkv"), "--weights", str(tiny_checkpoint), "--ray"]) == 1
    err = capsys.readouterr().err
    assert err == "vsvsrpp: error: --ray needs Ray, which is not installed: pip install 'vsvsrpp[ray]'\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ray", "in.mp4"], "--ray ADDRESS must be 'auto', HOST:PORT or ray://HOST:PORT, got 'in.mp4'"),
        (["--resume"], "--resume, --keep-work and --work-dir apply to distributed runs; add --ray"),
        (["--work-dir", "w"], "--resume, --keep-work and --work-dir apply to distributed runs; add --ray"),
    ],
)
def test_distributed_options_are_checked_up_front(source, tmp_path, capsys, extra, message):
    assert cli.main(["upscale", str(source), str(tmp_path / "o.mkv"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_ray_writes_files_only(source, capsys):
    assert cli.main(["upscale", str(source), "-", "--ray"]) == 2
    assert "--ray writes regular files" in capsys.readouterr().err


def test_batch_paths_and_name_clash(source, tmp_path, capsys):
    assert cli.main(["upscale", str(source), str(tmp_path / "a.mkv"), str(tmp_path / "b.mkv")]) == 2
    assert "give INPUT OUTPUT, or the inputs and -o DIR (got 3 paths)" in capsys.readouterr().err
    other = tmp_path / "sub" / "in.mkv"
    other.parent.mkdir()
    other.write_bytes(b"x")
    assert cli.main(["upscale", str(source), str(other), "-o", str(tmp_path / "out")]) == 2
    assert "two inputs would both be written to" in capsys.readouterr().err
