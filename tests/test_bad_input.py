"""Property-based bad-input suite: every input either works or fails with a clear error.

Random formats, sizes (odd, subsampled, under 64 px), lengths around the window, colour
properties and NaN/Inf in float frames. The filter must either return frames of the right
format and size with finite values, or raise ``vs.Error("BasicVSRPP: ...")``; it must never
crash the process, hang, or pass an unprefixed error from deeper layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vsvsrpp

core = vs.core
WINDOW = 3
FORMATS = [vs.YUV420P8, vs.YUV420P10, vs.YUV422P8, vs.YUV444P16, vs.YUV410P8, vs.YUV444PS, vs.YUV420PH,
           vs.RGB24, vs.RGB48, vs.RGBS, vs.RGBH, vs.GRAY8, vs.GRAY16, vs.GRAYS, vs.GRAYH]
PROP_VALUES = {
    "_Matrix": [None, 0, 1, 2, 3, 5, 6, 9, 99],
    "_Range": [None, 0, 1],
    "_ColorRange": [None, 0, 1],
    "_ChromaLocation": [None, 0, 2, 5],
    "_SceneChangePrev": [None, 0, 1],
}


@st.composite
def inputs(draw):
    fmt = core.get_video_format(draw(st.sampled_from(FORMATS)))
    width = draw(st.integers(1, 70))
    height = draw(st.integers(1, 70))
    assume(width % (1 << fmt.subsampling_w) == 0 and height % (1 << fmt.subsampling_h) == 0)
    length = draw(st.sampled_from([1, 2, WINDOW - 1, WINDOW + 1]))
    props = {k: v for k, values in PROP_VALUES.items() if (v := draw(st.sampled_from(values))) is not None}
    bad_value = draw(st.sampled_from([None, float("nan"), float("inf")])) if fmt.sample_type == vs.FLOAT else None
    return fmt, width, height, length, props, bad_value, draw(st.integers(0, 2**16))


def make_clip(fmt, width, height, length, props, bad_value, seed):
    blank = core.std.BlankClip(format=fmt.id, width=width, height=height, length=length, keep=True)
    rng = np.random.default_rng(seed)

    def fill(n, f):
        out = f.copy()
        for p in range(fmt.num_planes):
            a = np.asarray(out[p])
            if fmt.sample_type == vs.FLOAT:
                a[:] = rng.random(a.shape)
                if bad_value is not None and n == length - 1:
                    a.flat[0] = bad_value
            else:
                a[:] = rng.integers(0, 1 << fmt.bits_per_sample, a.shape)
        for k, v in props.items():
            out.props[k] = v
        return out

    return core.std.ModifyFrame(blank, blank, fill)


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_every_input_works_or_fails_clearly(tiny_checkpoint, case):
    fmt, width, height, length, props, bad_value, seed = case
    clip = make_clip(*case)
    try:
        out = vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, window=WINDOW, overlap=1)
    except vs.Error as e:
        assert str(e).startswith("BasicVSRPP: "), str(e)
        assert fmt.color_family == vs.YUV and props.get("_Matrix") in (0, 2, 3, 99), f"unexpected refusal: {e}"
        return
    assert (out.format.id, out.width, out.height, out.num_frames) == (fmt.id, 4 * width, 4 * height, length)
    for n in range(length):
        try:
            f = out.get_frame(n)
        except vs.Error as e:
            assert "BasicVSRPP: " in str(e), str(e)
            assert bad_value is not None and "NaN or infinite" in str(e)
            continue
        for p in range(fmt.num_planes):
            a = np.asarray(f[p])
            assert np.isfinite(a).all()
            if fmt.sample_type == vs.INTEGER:
                assert a.max() < (1 << fmt.bits_per_sample)
    if bad_value is not None:
        with pytest.raises(vs.Error, match="BasicVSRPP: frame .* contains NaN or infinite values"):
            out.get_frame(length - 1)
