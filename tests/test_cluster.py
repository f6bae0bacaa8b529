"""Distributed runs on a local Ray cluster (``vsvsrpp upscale --ray``): output identical to a
single-process run, a killed worker, an interrupted run resumed, a batch of files.

The cluster (2 CPUs) is started once for the module; the network is a tiny generated
BasicVSR++ on a 40-frame 64x64 clip with a scene cut at frame 23. On the CPU, torch's results
depend on its thread count, so the single-process reference runs with the tasks' one thread.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import media
import pytest

from vsvsrpp import cli
from vsvsrpp.cluster import workdir as wd
from vsvsrpp.cluster.driver import work_dir_for
from vsvsrpp.runtime.segments import plan_segments

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

RUN = ["--window", "8", "--overlap", "2", "--device", "cpu", "--codec", "ffv1", "--no-progress"]
#: 40 frames with window 8 and 16-frame segments: borders 16, 32 (3 segments).
SEGMENT = ["--segment-frames", "16"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def frame_hashes(path: Path) -> list[str]:
    """The MD5 of every decoded video frame (ffmpeg's framemd5)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def has_audio(path: Path) -> bool:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return "audio" in out


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cluster-clips")
    cut = d / "cut.mp4"  # 23 frames of one pattern, a cut, 17 of another; with audio
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=24:duration=1", "-f", "lavfi", "-i", "mandelbrot=size=64x64:rate=24",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.7",
            "-filter_complex", "[0:v]trim=end_frame=23[a];[1:v]trim=end_frame=17,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]",
            "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", str(cut))  # fmt: skip
    other = d / "other.mp4"  # 20 frames, no audio
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-frames:v", "20", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(other))
    return {"cut": cut, "other": other}


@pytest.fixture(scope="module")
def single(clips, tiny_checkpoint, tmp_path_factory) -> dict[str, list[str]]:
    """Frame hashes of single-process runs, each in a fresh process with one torch thread, as
    each task has (oneDNN keeps the threading its primitives were created with, so a process
    that already ran the network with two threads would not do as reference)."""
    d = tmp_path_factory.mktemp("single")
    out = {}
    for name, src in clips.items():
        cmd = [sys.executable, "-m", "vsvsrpp", "upscale", str(src), str(d / f"{name}.mkv"), "--weights", str(tiny_checkpoint), *RUN]
        subprocess.run(cmd, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, capture_output=True)
        out[name] = frame_hashes(d / f"{name}.mkv")
    return out


def test_distributed_output_equals_single_run(cluster, clips, single, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "dist.mkv"
    assert cli.main(["upscale", str(clips["cut"]), str(out), "--weights", str(tiny_checkpoint), *RUN, *SEGMENT, "--ray"]) == 0
    hashes = frame_hashes(out)
    assert len(hashes) == 40
    assert hashes == single["cut"]
    assert has_audio(out)
    assert "3 segments: 3 computed, 0 kept" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist.mkv"]  # work directory removed


def test_killed_worker_is_retried_and_output_unchanged(cluster, clips, single, tiny_checkpoint, tmp_path):
    out = tmp_path / "dist.mkv"
    work = work_dir_for(out, None)
    killed: list[tuple[int, int]] = []

    def kill_first_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for index, pids in wd.running(work).items() if work.is_dir() else ():
                if not wd.manifest_path(work, index).exists():  # mid-run: not yet done
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append((index, pids[0]))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    args = ["upscale", str(clips["cut"]), str(out), "--weights", str(tiny_checkpoint), *RUN, *SEGMENT, "--ray", "--keep-work"]
    assert cli.main(args) == 0
    killer.join()
    assert killed, "no running segment was seen"
    index, pid = killed[0]
    manifest = wd.read_json(wd.manifest_path(work, index))
    assert manifest["pid"] != pid  # computed again, by another worker process
    assert wd.running(work) == {}  # the dead worker's marker went with the segment's completion
    assert frame_hashes(out) == single["cut"]


def test_interrupted_run_resumes_with_only_the_missing_segments(cluster, clips, single, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "dist.mkv"
    work = work_dir_for(out, None)
    args = ["upscale", str(clips["cut"]), str(out), "--weights", str(tiny_checkpoint), *RUN, "--segment-frames", "8", "--ray"]
    segments = plan_segments(40, 8, 2, 8)
    assert len(segments) == 5

    def interrupt_after_first_segment():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if work.is_dir() and any(wd.is_done(work, s) for s in segments):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    interrupter = threading.Thread(target=interrupt_after_first_segment)
    interrupter.start()
    assert cli.main(args) == 130
    interrupter.join()
    assert not out.exists()
    done = [s.index for s in segments if wd.is_done(work, s)]
    assert 1 <= len(done) < len(segments)

    assert cli.main(args) == 2  # the work directory is there: refused without --resume
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    # A task of the interrupted run that was already writing may still finish its segment while
    # the resumed run starts (Ray cancels between tasks): that segment is kept, not computed twice.
    m = re.search(r"5 segments: (\d+) computed, (\d+) kept", capsys.readouterr().err)
    assert m is not None
    computed, kept = int(m.group(1)), int(m.group(2))
    assert computed + kept == len(segments) and kept >= len(done)
    assert frame_hashes(out) == single["cut"]
    assert not work.exists()


def test_resume_recomputes_exactly_the_corrupted_segment(cluster, clips, single, tiny_checkpoint, tmp_path, capsys):
    """Issue 26, item 1: bytes flipped in the middle of a kept segment, its size unchanged."""
    out = tmp_path / "dist.mkv"
    work = work_dir_for(out, None)
    args = ["upscale", str(clips["cut"]), str(out), "--weights", str(tiny_checkpoint), *RUN, *SEGMENT, "--ray", "--keep-work"]
    assert cli.main(args) == 0
    path = wd.segment_path(work, 1)
    data = path.read_bytes()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes(2000) + data[middle + 2000 :])
    out.unlink()
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    assert "3 segments: 1 computed, 2 kept" in capsys.readouterr().err
    assert all(wd.is_done(work, s) for s in plan_segments(40, 8, 2, 16))
    assert frame_hashes(out) == single["cut"]


@pytest.mark.parametrize("segment_codec", ["ffv1", "final"])
def test_join_keeps_the_start_offset_and_the_sample_aspect_ratio(cluster, tiny_checkpoint, tmp_path, segment_codec):
    """Issue 26, items 2-3: video 1.023 s after the audio, SAR 4:3; two segments joined."""
    src = media.late_anamorphic_source(tmp_path, size="64x48", frames=12)
    out = tmp_path / "dist.mp4"
    args = ["upscale", str(src), str(out), "--weights", str(tiny_checkpoint), "--window", "8", "--overlap", "2", "--device", "cpu",
            "--preset", "ultrafast", "--no-progress", "--segment-frames", "8", "--ray", "--segment-codec", segment_codec]  # fmt: skip
    assert cli.main(args) == 0
    got = media.streams(out)
    assert int(got["video"]["nb_read_frames"]) == 12
    assert media.video_delay(out) == pytest.approx(media.VIDEO_DELAY, abs=0.5 / 24)  # to the nearest frame
    assert got["video"]["sample_aspect_ratio"] == "4:3"


def test_resume_refuses_other_settings(cluster, clips, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "dist.mkv"
    work = work_dir_for(out, None)
    wd.open_job(work, {"input": "something else"}, resume=False)
    args = ["upscale", str(clips["cut"]), str(out), "--weights", str(tiny_checkpoint), *RUN, "--ray", "--resume"]
    assert cli.main(args) == 2
    assert "was made with other settings" in capsys.readouterr().err
    assert not out.exists()


def test_batch_of_two_files_in_one_schedule(cluster, clips, single, tiny_checkpoint, tmp_path, capsys):
    outdir = tmp_path / "out"
    args = ["upscale", str(clips["cut"]), str(clips["other"]), "-o", str(outdir), "--weights", str(tiny_checkpoint), *RUN, *SEGMENT, "--ray"]
    assert cli.main(args) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["cut.mkv", "other.mkv"]
    assert frame_hashes(outdir / "cut.mkv") == single["cut"]
    assert frame_hashes(outdir / "other.mkv") == single["other"]
    assert "5 segments: 5 computed" in capsys.readouterr().err  # 3 + 2, one run


def test_final_codec_segments_join_without_reencoding(cluster, clips, tiny_checkpoint, tmp_path):
    out = tmp_path / "dist.mp4"
    args = ["upscale", str(clips["cut"]), str(out), "--weights", str(tiny_checkpoint), "--window", "8", "--overlap", "2",
            "--device", "cpu", "--preset", "ultrafast", "--no-progress", *SEGMENT, "--ray", "--segment-codec", "final"]  # fmt: skip
    assert cli.main(args) == 0
    assert len(frame_hashes(out)) == 40
    keyframes = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-skip_frame", "nokey", "-show_entries",
                                "frame=pts", "-of", "csv=p=0", str(out)], check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    assert len(keyframes) >= 3  # each segment starts on a keyframe of its own


def test_more_cpus_per_task_than_any_node_is_refused(cluster, clips, tiny_checkpoint, tmp_path, capsys):
    args = ["upscale", str(clips["cut"]), str(tmp_path / "o.mkv"), "--weights", str(tiny_checkpoint), *RUN, "--ray", "--cpus-per-task", "3"]
    assert cli.main(args) == 2
    assert "--cpus-per-task 3: no node of the cluster has more than 2 CPUs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
