"""Engines shared between filters: one pass at a time per network, reloads of replaced files."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, clip_to_array, frame_to_array, moving_frames
from conftest import make_checkpoint
from vsvsrpp.arch.basicvsrpp import BasicVSRPPConfig
from vsvsrpp.arch.realbasicvsr import RealBasicVSRConfig
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime.engine import Engine, load_engine

core = vs.core
T, H, W = 8, 16, 24


@pytest.fixture(autouse=True)
def threads():
    saved = core.num_threads
    yield
    core.num_threads = saved


def one_pass(path, frames):
    """The network of ``path`` over all of ``frames`` at once, as the engine runs it, clamped."""
    return Engine(load_descriptor(path), "cpu")(torch.from_numpy(frames)).numpy()


@pytest.mark.slow
def test_two_filters_on_one_checkpoint_never_run_two_passes_at_once(tiny_checkpoint, tmp_path, monkeypatch):
    path = shutil.copy(tiny_checkpoint, tmp_path / "shared.pth")  # an engine of its own in the cache
    engine = load_engine(path, "cpu", "fp32")
    real_forward = engine.model.forward
    state = {"active": 0, "peak": 0, "passes": 0}
    guard = threading.Lock()

    def counting_forward(*args, **kwargs):
        with guard:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            state["passes"] += 1
        try:
            time.sleep(0.05)  # widen the window in which a second pass could start
            return real_forward(*args, **kwargs)
        finally:
            with guard:
                state["active"] -= 1

    monkeypatch.setattr(engine.model, "forward", counting_forward)
    core.num_threads = 16
    clips = [clip_from_array(moving_frames(T, H, W, seed=s)) for s in (1, 2)]
    filters = [vsvsrpp.BasicVSRPP(c, weights=path, device="cpu", precision="fp32", window=2, overlap=1, scene_detect=False) for c in clips]
    futures = [(i, n, f.get_frame_async(n)) for n in range(T) for i, f in enumerate(filters)]  # interleaved, all at once
    got = {(i, n): frame_to_array(fut.result()) for i, n, fut in futures}
    assert state["passes"] == 2 * (T // 2), "each window once per filter"
    assert state["peak"] == 1, f"{state['peak']} passes ran on one network at the same time"
    for i, c in enumerate(clips):  # and the frames are right
        sequential = clip_to_array(vsvsrpp.BasicVSRPP(c, weights=path, device="cpu", precision="fp32", window=2, overlap=1, scene_detect=False))
        np.testing.assert_array_equal(np.stack([got[i, n] for n in range(T)]), sequential)


@pytest.mark.parametrize("how", ["renamed over", "rewritten in place"])
def test_a_checkpoint_replaced_on_disk_is_reloaded(tmp_path, how):
    frames = moving_frames(3, H, W, seed=3)
    path = make_checkpoint(tmp_path / "model.pth", BasicVSRPPConfig(8, 1, True), seed=1)
    first = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=path, window=3))
    np.testing.assert_array_equal(first, one_pass(path, frames))
    if how == "renamed over":
        other = make_checkpoint(tmp_path / "fine-tuned.pth", BasicVSRPPConfig(8, 1, True), seed=2)
        os.replace(other, path)
    else:
        data = torch.load(make_checkpoint(tmp_path / "x.pth", BasicVSRPPConfig(8, 1, True), seed=2), weights_only=True)
        torch.save(data, path)
    second = clip_to_array(vsvsrpp.BasicVSRPP(clip_from_array(frames), weights=path, window=3))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, one_pass(path, frames))


def test_a_checkpoint_replaced_by_another_family_is_read_as_that_family(tmp_path):
    clip = clip_from_array(moving_frames(2, H, W, seed=4))
    path = make_checkpoint(tmp_path / "model.pth", BasicVSRPPConfig(8, 1, True))
    vsvsrpp.BasicVSRPP(clip, weights=path, window=2).get_frame(0)
    os.replace(make_checkpoint(tmp_path / "real.pth", RealBasicVSRConfig(8, 1, 1)), path)
    with pytest.raises(vs.Error, match=r"^BasicVSRPP: model.pth holds a RealBasicVSR network; use vsvsrpp.RealBasicVSR"):
        vsvsrpp.BasicVSRPP(clip, weights=path, window=2)
    out = vsvsrpp.RealBasicVSR(clip, weights=path, window=2)
    assert out.get_frame(1).width == 4 * W


def test_engines_of_other_tile_sizes_share_the_network_and_its_lock(tiny_checkpoint, tmp_path, native_bf16):
    path = shutil.copy(tiny_checkpoint, tmp_path / "tiles.pth")
    whole, tiled = load_engine(path, "cpu", "fp32"), load_engine(path, "cpu", "fp32", tile=64)
    assert whole is load_engine(path, "cpu", "auto")  # auto is fp32 on the CPU: the same key
    assert tiled is not whole and tiled.tile == 64 and whole.tile is None
    assert tiled.model is whole.model and tiled.lock is whole.lock
    bf16 = load_engine(path, "cpu", "bf16")
    assert bf16.model is not whole.model and bf16.lock is not whole.lock


def test_a_network_is_not_placed_twice_in_different_dtypes(tiny_checkpoint, native_bf16):
    descriptor = load_descriptor(tiny_checkpoint)
    Engine(descriptor, "cpu", "fp32")
    assert Engine(descriptor, "cpu", "fp32").lock is Engine(descriptor, "cpu", "fp32").lock
    with pytest.raises(ValueError, match="already runs on cpu in torch.float32"):
        Engine(descriptor, "cpu", "bf16")


def test_results_can_stay_on_the_device(tiny_checkpoint):
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu")
    frames = torch.from_numpy(moving_frames(2, H, W, seed=5))
    on_device, on_host = engine(frames, to_host=False), engine(frames)
    assert on_device.device == engine.device and on_device.dtype == torch.float32
    torch.testing.assert_close(on_device.cpu(), on_host, rtol=0, atol=0)
