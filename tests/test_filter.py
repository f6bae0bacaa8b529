"""The VapourSynth filter: windowing invariants, concurrency, properties and errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.plugin.graph import WindowGraph
from vsvsrpp.runtime.engine import Engine
from vsvsrpp.runtime.windows import WindowPlan

from clips import clip_from_array, clip_to_array, clip_to_array_async, moving_frames

core = vs.core
T, H, W = 11, 40, 48  # under 64 px: the network pads and crops


@pytest.fixture(scope="module")
def frames():
    return moving_frames(T, H, W, seed=1)


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_descriptor(tiny_checkpoint)


def direct(descriptor, arr):
    """One network pass over ``arr`` (t, 3, h, w) as the engine runs it (the fast path on the
    CPU), clamped like the filter."""
    return Engine(descriptor, "cpu")(torch.from_numpy(arr)).numpy()


@pytest.fixture(autouse=True)
def threads():
    saved = core.num_threads
    yield
    core.num_threads = saved


def test_window_covering_clip_equals_one_network_pass(frames, model, tiny_checkpoint):
    out = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=tiny_checkpoint, window=T, overlap=3))
    assert out.shape == (T, 3, 4 * H, 4 * W)
    np.testing.assert_array_equal(out, direct(model, frames))


def test_windowed_frames_equal_their_own_pass_with_overlap(frames, model, tiny_checkpoint):
    window, overlap = 4, 2
    out = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=tiny_checkpoint, window=window, overlap=overlap))
    plan = WindowPlan(T, window, overlap)
    assert plan[-1].emit_end - plan[-1].emit_start == 3  # last window short
    for w in plan:
        expected = direct(model, frames[w.start : w.end])[w.emitted]
        np.testing.assert_array_equal(out[w.emit_start : w.emit_end], expected)
    # the overlap matters: without context the boundary frames differ
    no_ctx = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=tiny_checkpoint, window=window, overlap=0))
    assert not np.array_equal(no_ctx[window - 1 : window + 1], out[window - 1 : window + 1])


@pytest.mark.parametrize(
    ("num_threads", "seeds"),
    [(2, 1), pytest.param(1, 3, marks=pytest.mark.slow), pytest.param(2, 3, marks=pytest.mark.slow)],
)
def test_any_request_order_gives_identical_frames(frames, tiny_checkpoint, num_threads, seeds):
    core.num_threads = num_threads
    make = lambda: vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=tiny_checkpoint, window=3, overlap=2)
    reference = clip_to_array(make())
    order = list(range(T))
    for seed in range(seeds):
        random.Random(seed).shuffle(order)
        np.testing.assert_array_equal(clip_to_array(make(), order), reference)
        np.testing.assert_array_equal(clip_to_array_async(make(), order), reference)
    np.testing.assert_array_equal(clip_to_array_async(make(), list(reversed(range(T)))), reference)


@pytest.mark.parametrize("num_threads", [1, 2])
def test_each_window_computed_once_in_sequential_and_parallel_access(frames, tiny_checkpoint, num_threads):
    core.num_threads = num_threads
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu")
    plan = WindowPlan(T, 3, 1)
    runner = WindowGraph(clip_from_array(frames), engine, 3, 1)
    clip_to_array_async(runner.node, range(T))
    assert runner.windows_computed == len(plan)
    assert len(runner.results) <= 2  # memory bounded: finished windows are evicted


def test_format_length_fps_and_props_preserved(frames, tiny_checkpoint):
    src = core.std.SetFrameProps(clip_from_array(frames, fps=(30000, 1001)), _SARNum=10, _SARDen=11, Custom="x")
    out = vsvsrpp.BasicVSRPP(src, weights=tiny_checkpoint, window=5, overlap=1)
    assert (out.format.id, out.num_frames, out.fps) == (vs.RGBS, T, src.fps)
    assert (out.width, out.height) == (4 * W, 4 * H)
    for n in (0, 7, T - 1):
        props = out.get_frame(n).props
        assert props["Index"] == n and props["Custom"] == "x"
        assert (props["_SARNum"], props["_SARDen"]) == (10, 11)


def test_rgbh_in_rgbh_out(frames, model, tiny_checkpoint):
    src = clip_from_array(frames, fmt=vs.RGBH)
    out = vsvsrpp.BasicVSRPP(src, weights=tiny_checkpoint, window=T)
    assert out.format.id == vs.RGBH
    got = clip_to_array(out)
    expected = direct(model, frames.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(got, expected.astype(np.float16).astype(np.float32))


def test_restoration_model_keeps_size(tiny_checkpoint_x1):
    arr = moving_frames(3, 30, 50, seed=2)
    out = vsvsrpp.BasicVSRPP(clip_from_array(arr), weights=tiny_checkpoint_x1)
    assert (out.width, out.height) == (50, 30)
    np.testing.assert_array_equal(clip_to_array(out), direct(load_descriptor(tiny_checkpoint_x1), arr))


def test_single_frame_clip(tiny_checkpoint):
    arr = moving_frames(1, 16, 16)
    out = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(arr), weights=tiny_checkpoint))
    assert out.shape == (1, 3, 64, 64) and np.isfinite(out).all()


# -- errors ---------------------------------------------------------------------------------


def expect_error(match, **kwargs):
    clip = kwargs.pop("clip", None) or clip_from_array(moving_frames(2, 16, 16))
    with pytest.raises(vs.Error, match=f"^BasicVSRPP: .*{match}"):
        vsvsrpp.BasicVSRPP(clip, **kwargs)


def test_variable_size_error(tiny_checkpoint):
    a = core.std.BlankClip(format=vs.RGBS, width=32, height=32, length=1)
    b = core.std.BlankClip(format=vs.RGBS, width=48, height=32, length=1)
    expect_error("variable", clip=core.std.Splice([a, b], mismatch=True), weights=tiny_checkpoint)


@pytest.mark.parametrize("kwargs, match", [
    ({"window": 0}, "window must be an integer >= 1, got 0"),
    ({"window": 2.5}, "window must be an integer >= 1, got 2.5"),
    ({"overlap": -1}, "overlap must be an integer >= 0, got -1"),
    ({"overlap": True}, "overlap must be an integer"),
])
def test_bad_window_or_overlap(tiny_checkpoint, kwargs, match):
    expect_error(match, weights=tiny_checkpoint, **kwargs)


@pytest.mark.parametrize("value", [-1, 2**70])
def test_output_format_out_of_range_is_a_clear_error(tiny_checkpoint, value):
    """Issue 26, item 9: VapourSynth raised a raw OverflowError for these."""
    expect_error(f"output_format {value} is not a VapourSynth format", weights=tiny_checkpoint, output_format=value)


def test_unknown_model_lists_names():
    expect_error("unknown model 'nope'.*reds4", model="nope")


def test_missing_weights_file(tmp_path):
    expect_error("checkpoint file not found", weights=tmp_path / "missing.pth")


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"generator.foo": torch.zeros(1)}}, bad)
    expect_error("not a BasicVSR\\+\\+ state dict", weights=bad)


def test_missing_catalogue_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("VSVSRPP_HOME", str(tmp_path))
    monkeypatch.setenv("VSVSRPP_URL_BASE", "http://127.0.0.1:9/")  # discard port: refused
    expect_error(f"could not download the 'reds4' checkpoint.*place it by hand at {tmp_path}", model="reds4")
    assert not any(tmp_path.iterdir())


def test_damaged_cached_checkpoint_says_how_to_repair(tmp_path, monkeypatch):
    from vsvsrpp.hub import download, registry

    monkeypatch.setenv("VSVSRPP_HOME", str(tmp_path))
    cached = download.checkpoint_path(registry.MODELS["reds4"])
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(vs.Error, match=r"vsvsrpp download reds4 --force") as info:
        vsvsrpp.BasicVSRPP(clip_from_array(moving_frames(2, 16, 16)), model="reds4")
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one message, no chained traceback


def test_cuda_requested_without_cuda(tiny_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    expect_error("CUDA is not available", weights=tiny_checkpoint, device="cuda")


def test_network_failure_is_a_clear_frame_error(frames, tiny_checkpoint):
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu")

    class Broken:
        lock = engine.lock

        def __call__(self, frames, **options):
            raise RuntimeError("out of memory (simulated)")

    runner = WindowGraph(clip_from_array(frames), engine, 4, 1)
    runner.engine = Broken()
    with pytest.raises(vs.Error, match=r"BasicVSRPP: the network failed on frames 3-8: RuntimeError: out of memory"):
        runner.node.get_frame(5)


def test_engine_process_sequence_matches_filter(frames, tiny_checkpoint):
    """The VapourSynth-free path (used by evaluation) produces exactly the filter's frames."""
    out = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=tiny_checkpoint, window=4, overlap=2))
    seq = Engine(load_descriptor(tiny_checkpoint), "cpu").process_sequence(torch.from_numpy(frames), 4, 2)
    np.testing.assert_array_equal(seq.numpy(), out)
