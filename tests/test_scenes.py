"""Scene cuts: no window propagates across a cut; a shot starts as if processed alone."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, clip_to_array, moving_frames

core = vs.core
H, W = 24, 32
LEN_A, LEN_B = 7, 9
WINDOW, OVERLAP = 4, 2


@pytest.fixture(scope="module")
def shots():
    a = moving_frames(LEN_A, H, W, seed=10)
    b = 1.0 - moving_frames(LEN_B, H, W, seed=11)  # a different scene: large luma change at the cut
    return a, b


def run(clip, ckpt, **kw):
    return clip_to_array(vsvsrpp.BasicVSRPP(clip, weights=ckpt, window=WINDOW, overlap=OVERLAP, **kw))


def test_detected_cut_first_shot_frames_equal_the_shot_alone(shots, tiny_checkpoint):
    a, b = shots
    spliced = run(clip_from_array(np.concatenate([a, b])), tiny_checkpoint)
    alone_b = run(clip_from_array(b), tiny_checkpoint)
    alone_a = run(clip_from_array(a), tiny_checkpoint)
    # the first window after the cut (frames LEN_A .. next grid line) is the shot-alone run
    first_emit = (LEN_A // WINDOW + 1) * WINDOW - LEN_A
    np.testing.assert_array_equal(spliced[LEN_A : LEN_A + first_emit], alone_b[:first_emit])
    # shot A (starting at frame 0, its windows ending at the cut) sees nothing of shot B
    np.testing.assert_array_equal(spliced[:LEN_A], alone_a)


@pytest.mark.slow
def test_scene_change_props_are_honoured_without_detection(shots, tiny_checkpoint):
    a, b = shots
    similar_b = a[-1:] * 0.98 + b * 0.02  # no visible cut: the detector alone would not split
    clip = clip_from_array(np.concatenate([a, similar_b]))
    marked = core.std.FrameEval(clip, lambda n: core.std.SetFrameProps(clip, _SceneChangePrev=int(n == LEN_A)))
    out = run(marked, tiny_checkpoint, scene_detect=False)
    alone = run(clip_from_array(similar_b), tiny_checkpoint, scene_detect=False)
    np.testing.assert_array_equal(out[LEN_A], alone[0])
    unmarked = run(clip, tiny_checkpoint, scene_detect=False)
    assert not np.array_equal(unmarked[LEN_A], alone[0]), "without the mark, features propagate across"


@pytest.mark.slow
def test_scene_change_next_on_previous_frame_counts_too(shots, tiny_checkpoint):
    a, b = shots
    clip = clip_from_array(np.concatenate([a, b]))
    marked = core.std.FrameEval(clip, lambda n: core.std.SetFrameProps(clip, _SceneChangeNext=int(n == LEN_A - 1)))
    out = run(marked, tiny_checkpoint, scene_detect=False)
    np.testing.assert_array_equal(out[LEN_A], run(clip_from_array(b), tiny_checkpoint)[0])


@pytest.mark.slow
def test_props_saying_no_cut_override_the_detector(shots, tiny_checkpoint):
    a, b = shots
    clip = clip_from_array(np.concatenate([a, b]))
    no_cut = core.std.SetFrameProps(clip, _SceneChangePrev=0, _SceneChangeNext=0)
    ignored = run(no_cut, tiny_checkpoint)
    off = run(clip, tiny_checkpoint, scene_detect=False)
    np.testing.assert_array_equal(ignored, off)
    detected = run(clip, tiny_checkpoint)
    assert not np.array_equal(detected[LEN_A], off[LEN_A])
