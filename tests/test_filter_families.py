"""BasicVSR and RealBasicVSR through the same filter implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, clip_to_array, moving_frames
from conftest import SHARED, make_checkpoint
from vsvsrpp.arch.basicvsr import BasicVSRConfig
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime.engine import Engine

core = vs.core
DEMO = SHARED / "data" / "realbasicvsr_demo_000"


@pytest.fixture(scope="module")
def basicvsr_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_basicvsr.pth", BasicVSRConfig(8, 1))


def test_basicvsr_filter_equals_windowed_engine(basicvsr_checkpoint):
    frames = moving_frames(7, 20, 28, seed=5)
    out = clip_to_array(vsvsrpp.BasicVSR(clip_from_array(frames), weights=basicvsr_checkpoint, window=3, overlap=1))
    ref = Engine(load_descriptor(basicvsr_checkpoint), "cpu").process_sequence(torch.from_numpy(frames), 3, 1).numpy()
    np.testing.assert_array_equal(out, ref)


def test_realbasicvsr_decides_passes_per_window_deterministically(tiny_realbasicvsr_checkpoint):
    frames = moving_frames(9, 20, 28, seed=6)
    clip = clip_from_array(frames)
    out = clip_to_array(vsvsrpp.RealBasicVSR(clip, weights=tiny_realbasicvsr_checkpoint, window=4, overlap=1, refine_threshold=5))
    engine = Engine(load_descriptor(tiny_realbasicvsr_checkpoint), "cpu")
    ref = engine.process_sequence(torch.from_numpy(frames), 4, 1, refine_threshold=5.0, cleaning_passes=None).numpy()
    np.testing.assert_array_equal(out, ref)
    backwards = clip_to_array(vsvsrpp.RealBasicVSR(clip, weights=tiny_realbasicvsr_checkpoint, window=4, overlap=1,
                                                   refine_threshold=5), order=reversed(range(9)))
    np.testing.assert_array_equal(backwards, out)


def test_cleaning_passes_override_threshold(tiny_realbasicvsr_checkpoint):
    clip = clip_from_array(moving_frames(3, 20, 28, seed=7))
    run = lambda **kw: clip_to_array(vsvsrpp.RealBasicVSR(clip, weights=tiny_realbasicvsr_checkpoint, **kw))
    one, three = run(cleaning_passes=1), run(cleaning_passes=3)
    assert not np.array_equal(one, three)
    np.testing.assert_array_equal(run(cleaning_passes=1, refine_threshold=0), one)
    np.testing.assert_array_equal(run(refine_threshold=255), one)  # official demo default: one pass


@pytest.mark.slow
@pytest.mark.skipif(not DEMO.is_dir(), reason=f"real-world demo frames not found at {DEMO}")
def test_realbasicvsr_on_the_real_world_demo_clip(tiny_realbasicvsr_checkpoint, tmp_path):
    src = core.bs.VideoSource(str(encode_demo(tmp_path)))
    out = vsvsrpp.RealBasicVSR(src, weights=tiny_realbasicvsr_checkpoint, window=3, overlap=1)
    assert (out.format.id, out.width, out.height, out.num_frames) == (src.format.id, 2560, 1440, 4)
    f = out.get_frame(3)
    y = np.asarray(f[0])
    assert y.shape == (1440, 2560) and 16 <= y.mean() <= 235


def encode_demo(tmp_path):
    import subprocess

    path = tmp_path / "real.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-framerate", "25", "-i", str(DEMO / "%08d.png"), "-frames:v", "4",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "10", str(path)], check=True)
    return path


def test_family_mismatch_points_to_the_right_filter(tiny_realbasicvsr_checkpoint, tiny_checkpoint):
    clip = clip_from_array(moving_frames(2, 16, 16))
    with pytest.raises(vs.Error, match=r"^BasicVSRPP: tiny_real.pth holds a RealBasicVSR network; use vsvsrpp\.RealBasicVSR"):
        vsvsrpp.BasicVSRPP(clip, weights=tiny_realbasicvsr_checkpoint)
    with pytest.raises(vs.Error, match=r"^RealBasicVSR: tiny_x4.pth holds a BasicVSR\+\+ network; use vsvsrpp\.BasicVSRPP"):
        vsvsrpp.RealBasicVSR(clip, weights=tiny_checkpoint)


@pytest.mark.parametrize("kwargs, match", [
    ({"refine_threshold": -1}, "refine_threshold must be a number >= 0"),
    ({"cleaning_passes": 4}, "cleaning_passes must be from 1 to 3"),
    ({"cleaning_passes": 0}, "cleaning_passes must be an integer >= 1"),
])
def test_realbasicvsr_argument_errors(tiny_realbasicvsr_checkpoint, kwargs, match):
    with pytest.raises(vs.Error, match=f"^RealBasicVSR: {match}"):
        vsvsrpp.RealBasicVSR(clip_from_array(moving_frames(2, 16, 16)), weights=tiny_realbasicvsr_checkpoint, **kwargs)

