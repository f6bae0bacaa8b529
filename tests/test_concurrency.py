"""Parallel load, memory and early stops: each window once, no deadlock, bounded memory."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from clips import clip_from_array, frame_to_array, moving_frames
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.plugin.graph import WindowGraph, cut_flags
from vsvsrpp.runtime.engine import Engine
from vsvsrpp.runtime.windows import WindowPlan

core = vs.core
ROOT = Path(__file__).resolve().parents[1]
T, H, W = 30, 16, 24
WINDOW, OVERLAP = 5, 2


@pytest.fixture(autouse=True)
def threads():
    saved = core.num_threads
    yield
    core.num_threads = saved


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine(load_descriptor(tiny_checkpoint), "cpu")


def runner(engine, frames):
    clip = clip_from_array(frames)
    return WindowGraph(clip, engine, WINDOW, OVERLAP, cut_flags(clip, True, 0.1))


def like_vspipe(clip, requests: int) -> np.ndarray:
    """Request frames in order with up to ``requests`` outstanding, as vspipe does."""
    out, pending, n = {}, deque(), 0
    while n < clip.num_frames or pending:
        while n < clip.num_frames and len(pending) < requests:
            pending.append((n, clip.get_frame_async(n)))
            n += 1
        i, fut = pending.popleft()
        out[i] = frame_to_array(fut.result())
    return np.stack([out[i] for i in range(clip.num_frames)])


@pytest.fixture(scope="module")
def reference(engine):
    frames = moving_frames(T, H, W, seed=4)
    r = runner(engine, frames)
    return frames, np.stack([frame_to_array(r.node.get_frame(n)) for n in range(T)])


@pytest.mark.parametrize("num_threads", [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(4, marks=pytest.mark.slow),
                                         pytest.param(16, marks=pytest.mark.slow)])  # fmt: skip
def test_parallel_ordered_requests_compute_each_window_once(engine, reference, num_threads):
    frames, expected = reference
    core.num_threads = num_threads
    r = runner(engine, frames)
    np.testing.assert_array_equal(like_vspipe(r.node, requests=num_threads), expected)
    assert r.windows_computed == len(WindowPlan(T, WINDOW, OVERLAP)), "a window was computed twice"
    assert len(r.results) <= 2


@pytest.mark.slow
@pytest.mark.parametrize("num_threads", [2, 16])
def test_random_seeks_give_identical_frames(engine, reference, num_threads):
    frames, expected = reference
    core.num_threads = num_threads
    r = runner(engine, frames)
    order = list(range(T)) * 2
    random.Random(num_threads).shuffle(order)
    for n in order:
        np.testing.assert_array_equal(frame_to_array(r.node.get_frame(n)), expected[n])
    assert len(r.results) <= 2 + 4  # finished + partially delivered windows: bounded


MEMORY_SCRIPT = """
import dataclasses, sys, numpy as np, torch, vapoursynth as vs, vsvsrpp
import vsvsrpp.plugin.entry
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime.engine import Engine
sys.path.insert(0, {tests!r})
from clips import clip_from_array
core = vs.core

class Nearest4x(torch.nn.Module):  # the plumbing under test, without SPyNet's cost
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
    def forward(self, x, **_):
        return torch.nn.functional.interpolate(x[0], scale_factor=4, mode="nearest")[None] * self.w

descriptor = dataclasses.replace(load_descriptor({weights!r}), model=Nearest4x(), fp32_modules=())
vsvsrpp.plugin.entry.load_engine = lambda *args, **kwargs: Engine(descriptor, "cpu")
core.num_threads = 2
rng = np.random.default_rng(0)
base = rng.random((3, 16 + 2100, 16), dtype=np.float32)
frames = np.stack([base[:, i : i + 16, :] for i in range(2000)])  # a slow vertical pan
out = vsvsrpp.BasicVSRPP(clip_from_array(frames), weights={weights!r}, window=24, overlap=4)
def rss():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024
for n in range(2000):
    out.get_frame(n)
    if n == 99:
        first = rss()
print(first[0], first[1], *rss())
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_clip_length(tiny_checkpoint, tmp_path):
    """Resident memory after 2,000 frames stays within a fixed bound of that after 100.

    Runs the real filter (planner, scene-cut probes, window cache, frame transfer) in a fresh
    process with a trivial 4x network in place of BasicVSR++: the network's own memory is
    bounded by the window by construction, and SPyNet would make 2,000 frames take minutes.
    """
    script = tmp_path / "mem.py"
    script.write_text(MEMORY_SCRIPT.format(tests=str(ROOT / "tests"), weights=str(tiny_checkpoint)))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rss_100, peak_100, rss_2000, peak_2000 = map(int, res.stdout.split()[-4:])
    print(f"RSS after 100 frames {rss_100} MiB (peak {peak_100}), after 2000 frames {rss_2000} MiB (peak {peak_2000})")
    assert peak_2000 - peak_100 < 64, f"peak RSS grew from {peak_100} to {peak_2000} MiB"
    assert rss_2000 - rss_100 < 64


VPY = """
import sys, numpy as np, vapoursynth as vs, vsvsrpp
sys.path.insert(0, {tests!r})
from clips import clip_from_array, moving_frames
clip = clip_from_array(moving_frames(400, 16, 16))
out = vsvsrpp.BasicVSRPP(clip, weights={weights!r}, window=8, overlap=2)
vs.core.resize.Point(out, format=vs.YUV444P8, matrix=1).set_output()
"""


@pytest.fixture
def vpy(tmp_path, tiny_checkpoint):
    path = tmp_path / "stop.vpy"
    path.write_text(VPY.format(tests=str(ROOT / "tests"), weights=str(tiny_checkpoint)))
    return path


def vspipe():
    return shutil.which("vspipe", path=str(Path(sys.executable).parent)) or "vspipe"


@pytest.mark.slow
def test_vspipe_end_frame_stops_promptly(vpy):
    t0 = time.monotonic()
    res = subprocess.run([vspipe(), "-c", "y4m", "-e", "20", str(vpy), "-"], capture_output=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    assert res.stdout.count(b"FRAME") == 21
    assert time.monotonic() - t0 < 120


@pytest.mark.slow
def test_vspipe_exits_when_the_reader_goes_away(vpy):
    proc = subprocess.Popen([vspipe(), "-c", "y4m", str(vpy), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    head = proc.stdout.read(100_000)  # a few frames, then hang up like `| head -c`
    proc.stdout.close()
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("vspipe kept running after its reader closed the pipe")
    assert head.startswith(b"YUV4MPEG2") and proc.returncode != 0
