"""Every common input format in, the right format and colour properties out."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, moving_frames

core = vs.core
W, H, T = 48, 32, 3


def source(fmt: int, **props) -> vs.VideoNode:
    """A smooth RGB test clip converted to ``fmt`` (BT.709 limited for YUV unless props say)."""
    rgb = clip_from_array(moving_frames(T, H, W, seed=3))
    f = core.get_video_format(fmt)
    if f.color_family == vs.YUV:
        out = core.resize.Bicubic(rgb, format=fmt, matrix=props.get("_Matrix", 1), range=props.get("_Range", 0),
                                  chromaloc=props.get("_ChromaLocation", 0))
    elif f.color_family == vs.GRAY:
        out = core.resize.Point(core.std.ShufflePlanes(rgb, 1, vs.GRAY), format=fmt, range_in=1, range=props.get("_Range", 1))
    else:
        out = core.resize.Point(rgb, format=fmt)
    return core.std.SetFrameProps(out, **props) if props else out


def planes(clip: vs.VideoNode, n: int = 1) -> list[np.ndarray]:
    f = clip.get_frame(n)
    return [np.asarray(f[p]).astype(np.float64) for p in range(f.format.num_planes)]


FORMATS = [vs.YUV420P8, vs.YUV422P10, vs.YUV444P12, vs.YUV420P16, vs.YUV444PS, vs.YUV420PH,
           vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBH, vs.RGBS, vs.GRAY8, vs.GRAY16, vs.GRAYS]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_identity_network_round_trips_every_format(fmt, identity_checkpoint):
    src = source(fmt, _Matrix=1, _Range=0) if core.get_video_format(fmt).color_family == vs.YUV else source(fmt)
    out = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, window=T)
    assert (out.format.id, out.width, out.height, out.num_frames) == (fmt, W, H, T)
    f = core.get_video_format(fmt)
    # one RGB round trip through bicubic chroma resampling and rounding: a few code values
    tol = (2 ** f.bits_per_sample) * 0.02 if f.sample_type == vs.INTEGER else 0.02
    if f.subsampling_w == 0 and f.subsampling_h == 0:
        tol = 1.01 if f.sample_type == vs.INTEGER else 2e-3  # no chroma resampling: rounding only
    for a, b in zip(planes(out), planes(src)):
        assert np.abs(a - b).max() <= tol


def test_matrix_range_and_legacy_colorrange_are_honoured(identity_checkpoint):
    base = source(vs.YUV444P16, _Matrix=6, _Range=1)
    expected = planes(core.resize.Point(base, format=vs.RGBS, matrix_in=6, range_in=1))
    got = planes(vsvsrpp.BasicVSRPP(base, weights=identity_checkpoint, output_format=vs.RGBS))
    assert max(np.abs(a - np.clip(b, 0, 1)).max() for a, b in zip(got, expected)) < 1e-5
    legacy = core.std.RemoveFrameProps(base, "_Range").std.SetFrameProps(_ColorRange=0)  # 0 = full in the old scheme
    got_legacy = planes(vsvsrpp.BasicVSRPP(legacy, weights=identity_checkpoint, output_format=vs.RGBS))
    assert max(np.abs(a - b).max() for a, b in zip(got_legacy, got)) < 1e-6
    wrong = planes(vsvsrpp.BasicVSRPP(base, weights=identity_checkpoint, output_format=vs.RGBS, matrix=1))
    assert max(np.abs(a - b).max() for a, b in zip(wrong, got)) > 0.01  # the override is used


def test_untagged_matrix_is_guessed_from_standard_sizes_or_refused(identity_checkpoint):
    sd = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=2, color=[120, 100, 160])
    sd = core.std.RemoveFrameProps(sd, "_Matrix")
    by601 = planes(core.resize.Point(sd, format=vs.RGBS, matrix_in=6))
    got = planes(vsvsrpp.BasicVSRPP(sd, weights=identity_checkpoint, output_format=vs.RGBS))
    assert max(np.abs(a - np.clip(b, 0, 1)).max() for a, b in zip(got, by601)) < 1e-5
    odd = core.std.BlankClip(format=vs.YUV420P8, width=1100, height=600, length=1)
    with pytest.raises(vs.Error, match=r"BasicVSRPP: .*matrix is unspecified.*1100x600.*matrix=1"):
        vsvsrpp.BasicVSRPP(odd, weights=identity_checkpoint)


def test_output_props_describe_the_output(identity_checkpoint):
    src = source(vs.YUV420P10, _Matrix=1, _Range=0, _ChromaLocation=2)
    src = core.std.SetFrameProps(src, _SARNum=4, _SARDen=3, _Transfer=1, _Primaries=1, Custom=7)
    yuv = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint).get_frame(0).props
    assert (yuv["_Matrix"], yuv["_Range"], yuv["_ChromaLocation"]) == (1, 0, 2)
    assert (yuv["_SARNum"], yuv["_SARDen"], yuv["_Transfer"], yuv["_Primaries"], yuv["Custom"]) == (4, 3, 1, 1, 7)
    rgb = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, output_format=vs.RGBS).get_frame(0).props
    assert rgb["_Matrix"] == 0 and "_ChromaLocation" not in rgb and rgb["Custom"] == 7
    preset = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, output_format=vs.YUV444P8)
    assert preset.format.id == vs.YUV444P8 and preset.get_frame(0).props["_Matrix"] == 1


def test_integer_output_rounds_not_truncates(identity_checkpoint):
    values = np.array([0.4, 0.6, 1.4, 1.6, 100.49, 100.51, 254.6, 10.0], dtype=np.float32) / 255
    arr = np.broadcast_to(values.repeat(6)[None, None, None, :], (2, 3, 8, 48)).copy()
    src = clip_from_array(arr)
    out = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, output_format=vs.RGB24)
    got = np.asarray(out.get_frame(0)[0])[0, ::6]
    np.testing.assert_array_equal(got, [0, 1, 1, 2, 100, 101, 255, 10])
    dithered = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, output_format=vs.RGB24, dither="error_diffusion")
    assert dithered.format.id == vs.RGB24


def test_length_fps_preserved_and_4x_size(tiny_checkpoint):
    src = core.std.AssumeFPS(source(vs.YUV420P8, _Matrix=1), fpsnum=30000, fpsden=1001)
    out = vsvsrpp.BasicVSRPP(src, weights=tiny_checkpoint, window=2, overlap=1)
    assert (out.format.id, out.width, out.height, out.num_frames, out.fps) == (vs.YUV420P8, 4 * W, 4 * H, T, src.fps)
    last = out.get_frame(T - 1)
    assert np.asarray(last[0]).shape == (4 * H, 4 * W) and np.asarray(last[1]).shape == (2 * H, 2 * W)


@pytest.mark.parametrize("kwargs, match", [
    ({"output_format": 12345678}, "output_format 12345678 is not a YUV, RGB or GRAY format"),
    ({"output_format": "YUV"}, "output_format 'YUV' is not a"),
    ({"dither": "fancy"}, "dither must be one of"),
    ({"matrix": -1}, "matrix must be an integer >= 0"),
    ({"scene_threshold": 0}, r"scene_threshold must be a number in \(0, 1\]"),
])
def test_bad_format_arguments(identity_checkpoint, kwargs, match):
    with pytest.raises(vs.Error, match=f"^BasicVSRPP: {match}"):
        vsvsrpp.BasicVSRPP(source(vs.RGBS), weights=identity_checkpoint, **kwargs)


def test_integer_rgb_output_of_limited_range_yuv_is_full_range_like_core_resize(identity_checkpoint):
    """Issue 26, item 4: RGB24 from a limited-range YUV source spans 0..255 (not 16..235)."""
    black_white = core.std.Splice([core.std.BlankClip(format=vs.YUV420P8, width=W, height=H, length=1, color=[16, 128, 128]),
                                   core.std.BlankClip(format=vs.YUV420P8, width=W, height=H, length=1, color=[235, 128, 128])])
    src = core.std.SetFrameProps(black_white, _Matrix=1, _Range=0)
    out = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, window=2, output_format=vs.RGB24, scene_detect=False)
    expected = core.resize.Bicubic(src, format=vs.RGB24)
    assert out.get_frame(0).props["_Range"] == expected.get_frame(0).props["_Range"] == 1
    for n, level in ((0, 0), (1, 255)):
        got = np.stack(planes(out, n))
        assert np.abs(got - level).max() <= 1, (n, got.min(), got.max())
        np.testing.assert_allclose(got, np.stack(planes(expected, n)), atol=1)


def test_an_rgb_source_keeps_its_own_range(identity_checkpoint):
    rgb = clip_from_array(moving_frames(T, H, W, seed=3))
    src = core.resize.Point(rgb, format=vs.RGB24, range_in=1, range=0)  # limited-range RGB stays limited
    assert src.get_frame(0).props["_Range"] == 0
    out = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, window=T)
    assert out.get_frame(0).props["_Range"] == 0
    assert max(np.abs(a - b).max() for a, b in zip(planes(out), planes(src))) <= 1.01


@pytest.mark.parametrize("src_fmt", [vs.YUV420P8, vs.GRAY8])
def test_gray_output_carries_no_rgb_matrix_and_converts_on(src_fmt, identity_checkpoint):
    """Issue 26, item 5: a GRAY output converts to YUV downstream as its input does."""
    src = source(src_fmt, _Matrix=1, _Range=0) if src_fmt == vs.YUV420P8 else source(src_fmt)
    out = vsvsrpp.BasicVSRPP(src, weights=identity_checkpoint, window=T, output_format=vs.GRAY8)
    assert "_Matrix" not in out.get_frame(0).props
    yuv = core.resize.Bicubic(out, format=vs.YUV420P8)
    assert yuv.get_frame(0).format.id == vs.YUV420P8
