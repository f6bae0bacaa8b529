"""The edges an adversarial user found: each gives a ``vs.Error`` that names the problem, or works."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, moving_frames
from vsvsrpp import arch
from vsvsrpp.arch import CheckpointError
from vsvsrpp.hub.checkpoint import load_descriptor, read_state_dict
from vsvsrpp.plugin import entry
from vsvsrpp.plugin.graph import WindowGraph, cut_flags
from vsvsrpp.runtime.engine import Engine

core = vs.core


@pytest.fixture(scope="module")
def clip():
    return clip_from_array(moving_frames(6, 16, 16, seed=11))


def refused(match, clip, **kwargs):
    with pytest.raises(vs.Error, match=f"^BasicVSRPP: {match}"):
        vsvsrpp.BasicVSRPP(clip, **kwargs)


def yuv(fmt=vs.YUV420P8, **props):
    blank = core.std.BlankClip(format=fmt, width=32, height=32, length=2, color=[100, 120, 140][: core.get_video_format(fmt).num_planes])
    return core.std.SetFrameProps(blank, **props) if props else blank


def damaged(tiny_checkpoint, tmp_path, key, value):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["state_dict"]["generator." + key] = value
    path = tmp_path / "damaged.pth"
    torch.save(ckpt, path)
    return path


# -- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"weights": 123}, r"weights must be the path of a checkpoint file, got 123 \(int\)"),
    ({"model": 123}, r"model must be a registry name such as 'reds4', got 123 \(int\)"),
    ({"model": "nope", "weights": None}, r"unknown model 'nope'; available: reds4, .*; or pass a checkpoint file"),
    ({"device": "mps"}, r"device 'mps' is not supported: the networks run on 'cpu' or 'cuda\[:N\]'"),
    ({"device": "meta"}, r"device 'meta' is not supported"),
    ({"device": "gpu0"}, r"invalid device 'gpu0'"),
    ({"device": 1.5}, r"device must be a name such as 'cpu', 'cuda' or 'cuda:1', got 1.5 \(float\)"),
    ({"precision": None}, r"precision must be one of auto, fp32, fp16, bf16; got None"),
    ({"window": "3"}, r"window must be an integer >= 1, got '3'"),
    ({"tile": True}, r"tile must be an integer >= 16, got True"),
    ({"scene_threshold": True}, r"scene_threshold must be a number in \(0, 1\], got True"),
    ({"windows": 3}, r"got an unexpected keyword argument 'windows'; arguments: clip, model, weights"),
])
def test_bad_arguments_are_named(clip, tiny_checkpoint, kwargs, match):
    refused(match, clip, **{"weights": tiny_checkpoint, **kwargs})


def test_a_cuda_index_without_cuda(clip, tiny_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    refused(r"device 0 requested but CUDA is not available; use the CPU: device='cpu'", clip, weights=tiny_checkpoint, device=0)
    refused(r"device 'cuda:1' requested but CUDA is not available", clip, weights=tiny_checkpoint, device="cuda:1")


def test_device_objects_and_indices_work(clip, tiny_checkpoint):
    out = vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, device=torch.device("cpu"), window=6)
    assert out.get_frame(0).width == 64


# -- formats and colours ---------------------------------------------------------------------


def test_32_bit_integer_formats_are_refused_up_front(clip, tiny_checkpoint):
    refused(r"output_format: Gray32 has 32-bit integer samples; 8 to 16 bits are supported", clip,
            weights=tiny_checkpoint, output_format=vs.GRAY32)
    gray32 = core.std.BlankClip(format=vs.GRAY32, width=16, height=16, length=2)
    refused(r"Gray32 has 32-bit integer samples; 8 to 16 bits are supported; convert it first", gray32, weights=tiny_checkpoint)


@pytest.mark.parametrize("matrix, props, match", [
    (10, {}, r"matrix 10 converts through linear light and needs its transfer characteristics \(_Transfer\)"),
    (14, {}, r"matrix 14 converts through linear light and needs a PQ \(16\) or HLG \(18\) transfer"),
    (12, {}, r"matrix 12 .* needs its primaries \(_Primaries\)"),
    (11, {}, r"matrix 11 is not a YUV matrix zimg can convert"),
])
def test_matrices_that_need_more_than_the_matrix(tiny_checkpoint, matrix, props, match):
    refused(match, yuv(**props), weights=tiny_checkpoint, matrix=matrix)


@pytest.mark.parametrize("matrix, props", [(10, {"_Transfer": 14, "_Primaries": 9}), (14, {"_Transfer": 16, "_Primaries": 9})])
def test_those_matrices_work_when_the_clip_says_enough(identity_checkpoint, matrix, props):
    src = yuv(vs.YUV420P10, **props)
    out = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, matrix=matrix, window=2)
    assert out.format.id == vs.YUV420P10 and np.asarray(out.get_frame(0)[0]).shape == (32, 32)


def test_a_splice_of_two_formats_is_a_variable_format(tiny_checkpoint):
    a = core.std.BlankClip(format=vs.RGBS, width=32, height=32, length=1)
    b = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32, length=1)
    refused(r"variable format or frame size is not supported", core.std.Splice([a, b], mismatch=True), weights=tiny_checkpoint)


# -- checkpoints ------------------------------------------------------------------------------


def test_a_scalar_where_a_convolution_weight_belongs(clip, tiny_checkpoint, tmp_path):
    path = damaged(tiny_checkpoint, tmp_path, "reconstruction.main.0.weight", torch.tensor(1.0))
    with pytest.raises(CheckpointError, match=r"reconstruction.main.0.weight has shape \(\), but a convolution weight"):
        arch.load(read_state_dict(path))
    refused(r"cannot load .*damaged.pth: reconstruction.main.0.weight has shape \(\)", clip, weights=path)


def test_nan_weights_are_refused_at_load_with_the_key(clip, tiny_checkpoint, tmp_path):
    sd = read_state_dict(tiny_checkpoint)
    bad = sd["backbone.forward_1.main.0.weight"].clone()
    bad[0, 0, 0, 0] = float("nan")
    path = damaged(tiny_checkpoint, tmp_path, "backbone.forward_1.main.0.weight", bad)
    with pytest.raises(CheckpointError, match=r"backbone.forward_1.main.0.weight holds NaN or infinite values"):
        load_descriptor(path)
    refused(r"cannot load .*: backbone.forward_1.main.0.weight holds NaN or infinite values", clip, weights=path)


# -- memory plan and window reach -------------------------------------------------------------


def test_a_huge_overlap_on_a_short_clip_plans_the_clip_length(clip, tiny_checkpoint):
    out = vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, overlap=100000)  # window=None: memory plan
    assert out.get_frame(5).width == 64


def test_not_enough_memory_on_the_cpu_does_not_suggest_the_cpu(clip, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(entry, "free_memory", lambda device: 1 << 20)
    with pytest.raises(vs.Error, match=r"^BasicVSRPP: not enough memory on cpu: .*; lower overlap \(4\)") as e:
        vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint)
    assert "device='cpu'" not in str(e.value)


def test_the_reach_of_scene_cut_probes_is_capped_at_the_clip(clip, tiny_checkpoint):
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu")
    graph = WindowGraph(clip, engine, 100000, 4, cut_flags(clip, True, 0.1))
    assert graph.offsets == range(-5, 6)


def test_a_window_far_beyond_the_clip_costs_what_the_clip_costs(clip, tiny_checkpoint):
    def first_frame_seconds(window: int) -> float:
        t0 = time.perf_counter()
        vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, window=window).get_frame(0)
        return time.perf_counter() - t0

    first_frame_seconds(6)  # warm-up (engine cache, kernels)
    small = min(first_frame_seconds(6) for _ in range(2))
    huge = first_frame_seconds(100000)
    assert huge < 3 * small + 2.0, f"window=100000 took {huge:.2f} s for its first frame, window=6 {small:.2f} s"
