"""The array-namespace colour arithmetic (vsvsrpp.plugin.colorxp) against core.resize (zimg).

Limits (issue 24): RGB from YUV within 0.5/255 max-abs of ``core.resize``; integer outputs within
1 code value and equal in at least 99.9% of samples; float outputs within 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from clips import clip_from_planes, frame_planes
from PIL import Image

from vsvsrpp.plugin import colors as C
from vsvsrpp.plugin import colorxp

core = vs.core
H, W = 64, 96
RGB_LIMIT = 0.5 / 255
FLOAT_LIMIT = 1e-5
DEMO = Path("/work/shared/data/basicvsrpp_demo_000/00000000.png")

YUV_FORMATS = [
    vs.YUV420P8, vs.YUV420P10, vs.YUV420P16, vs.YUV420PH, vs.YUV420PS,
    vs.YUV422P8, vs.YUV422P10, vs.YUV422PS,
    vs.YUV444P8, vs.YUV444P16, vs.YUV444PS,
]  # fmt: skip


def random_planes(fmt: vs.VideoFormat, h: int, w: int, seed: int) -> list[np.ndarray]:
    """Uniform noise over each plane's whole code range (float chroma in [-0.5, 0.5])."""
    rng = np.random.default_rng(seed)
    out = []
    for p in range(fmt.num_planes):
        shape = (h >> fmt.subsampling_h, w >> fmt.subsampling_w) if p else (h, w)
        if fmt.sample_type == vs.INTEGER:
            dtype = np.uint8 if fmt.bits_per_sample == 8 else np.uint16
            out.append(rng.integers(0, 2**fmt.bits_per_sample, shape).astype(dtype))
        else:
            chroma = p and fmt.color_family == vs.YUV
            out.append((rng.random(shape, dtype=np.float32) - (0.5 if chroma else 0.0)).astype(np.float32))
    return out


def assert_rgb_close(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == ref.shape
    err = np.abs(got - ref).max()
    assert err <= RGB_LIMIT, f"max-abs {err * 255:.4f}/255"


def assert_planes_close(got: list[np.ndarray], ref: list[np.ndarray]) -> None:
    assert [g.shape for g in got] == [r.shape for r in ref]
    assert [g.dtype for g in got] == [r.dtype for r in ref]
    diff = np.concatenate([np.abs(g.astype(np.float64) - r.astype(np.float64)).ravel() for g, r in zip(got, ref)])
    if np.issubdtype(ref[0].dtype, np.integer):
        assert diff.max() <= 1, f"max {diff.max()} code values"
        assert np.mean(diff == 0) >= 0.999, f"only {np.mean(diff == 0):.4%} equal"
    else:
        assert diff.max() <= FLOAT_LIMIT, f"max-abs {diff.max()}"


def check_both_ways(clip: vs.VideoNode, dither: str = "none") -> None:
    """planes -> RGB against colors.to_rgb, and RGB -> planes against colors.from_rgb."""
    fmt = clip.format
    colors = C.Colors.from_video(clip)
    planes = frame_planes(clip)
    rgb_clip = C.to_rgb(clip, colors)
    ref_rgb = np.stack(frame_planes(rgb_clip))
    assert_rgb_close(colorxp.planes_to_rgb(planes, fmt, colors), ref_rgb)
    ref_out = frame_planes(C.from_rgb(rgb_clip, fmt, colors, dither))
    assert_planes_close(colorxp.rgb_to_planes(ref_rgb, fmt, colors, dither), ref_out)


@pytest.mark.parametrize("chromaloc", [0, 1, 2])
@pytest.mark.parametrize("range_", [0, 1])
@pytest.mark.parametrize("matrix", colorxp.GPU_MATRICES)
@pytest.mark.parametrize("fmt_id", YUV_FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_yuv_matches_core_resize(fmt_id, matrix, range_, chromaloc):
    fmt = core.get_video_format(fmt_id)
    planes = random_planes(fmt, H, W, seed=fmt_id + matrix)
    check_both_ways(clip_from_planes(planes, fmt_id, {"_Matrix": matrix, "_Range": range_, "_ChromaLocation": chromaloc}))


@pytest.mark.parametrize("chromaloc", [3, 4, 5])
@pytest.mark.parametrize("fmt_id", [vs.YUV420P10, vs.YUV411P8, vs.YUV410P8], ids=["420P10", "411P8", "410P8"])
def test_other_sitings_and_subsamplings(fmt_id, chromaloc):
    planes = random_planes(core.get_video_format(fmt_id), H, W, seed=chromaloc)
    check_both_ways(clip_from_planes(planes, fmt_id, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": chromaloc}))


@pytest.mark.parametrize("range_", [0, 1])
@pytest.mark.parametrize(
    "fmt_id",
    [vs.GRAY8, vs.GRAY10, vs.GRAY16, vs.GRAYH, vs.GRAYS, vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBH, vs.RGBS],
    ids=lambda f: core.get_video_format(f).name,
)
def test_gray_and_rgb_match_core_resize(fmt_id, range_):
    planes = random_planes(core.get_video_format(fmt_id), H, W, seed=fmt_id)
    check_both_ways(clip_from_planes(planes, fmt_id, {"_Range": range_}))


@pytest.mark.parametrize("fmt_id", [vs.YUV420P8, vs.YUV444P16, vs.GRAY8, vs.RGB24])
def test_outputs_from_yuv_source_colors(fmt_id):
    """Output formats other than the source's: the YUV source's colours decide matrix, range and siting."""
    src = clip_from_planes(random_planes(core.get_video_format(vs.YUV422P10), H, W, 3), vs.YUV422P10,
                           {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 2})  # fmt: skip
    colors = C.Colors.from_video(src)
    rgb_clip = C.to_rgb(src, colors)
    fmt = core.get_video_format(fmt_id)
    ref = frame_planes(C.from_rgb(rgb_clip, fmt, colors))
    assert_planes_close(colorxp.rgb_to_planes(np.stack(frame_planes(rgb_clip)), fmt, colors), ref)


def test_demo_frame():
    """A real frame (320x180): 4:2:0 10-bit BT.709 limited in, 8-bit 4:2:0 out."""
    rgb = np.asarray(Image.open(DEMO).convert("RGB")).transpose(2, 0, 1).copy()
    src = core.resize.Bicubic(clip_from_planes(list(rgb), vs.RGB24), format=vs.YUV420P10, matrix=1, range=0, chromaloc=0)
    check_both_ways(src)
    colors = C.Colors.from_video(src)
    rgb_clip = C.to_rgb(src, colors)
    fmt = core.get_video_format(vs.YUV420P8)
    ref = frame_planes(C.from_rgb(rgb_clip, fmt, colors))
    assert_planes_close(colorxp.rgb_to_planes(np.stack(frame_planes(rgb_clip)), fmt, colors), ref)


def sharp_chroma_edge() -> list[np.ndarray]:
    """4:2:0 8-bit planes: flat grey luma; U steps from 64 to 192 at a vertical and a horizontal edge."""
    y = np.full((H, W), 128, np.uint8)
    u = np.full((H // 2, W // 2), 64, np.uint8)
    u[H // 4 :, W // 4 :] = 192
    return [y, u, np.full_like(u, 128)]


def test_chroma_siting_is_seen():
    """A wrong siting would fail: left, center and top-left chroma differ by far more than the
    limit on a sharp chroma edge, and each matches core.resize with its own siting."""
    planes = sharp_chroma_edge()
    fmt = core.get_video_format(vs.YUV420P8)
    got = {}
    for loc in (0, 1, 2):
        clip = clip_from_planes(planes, vs.YUV420P8, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": loc})
        colors = C.Colors.from_video(clip)
        got[loc] = colorxp.planes_to_rgb(planes, fmt, colors)
        assert_rgb_close(got[loc], np.stack(frame_planes(C.to_rgb(clip, colors))))
    assert np.abs(got[0] - got[1]).max() > 20 * RGB_LIMIT  # horizontal siting
    assert np.abs(got[0] - got[2]).max() > 20 * RGB_LIMIT  # vertical siting


@pytest.mark.parametrize(
    ("fmt_id", "props"),
    [
        (vs.YUV420P8, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": 0}),
        (vs.YUV422P10, {"_Matrix": 6, "_Range": 1, "_ChromaLocation": 2}),
        (vs.YUV444P16, {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 1}),
        (vs.RGB24, {"_Range": 1}),
        (vs.RGB30, {"_Range": 0}),
        (vs.GRAY8, {"_Range": 0}),
    ],
    ids=lambda v: core.get_video_format(v).name if isinstance(v, int) else None,
)
def test_ordered_dither_matches_core_resize(fmt_id, props):
    """zimg's ordered dither: the Bayer table of each plane (mirrored, flipped, transposed by
    plane index), added before rounding; frames larger than its 16x16 period."""
    fmt = core.get_video_format(fmt_id)
    planes = random_planes(fmt, 40, 72, seed=fmt_id)
    clip = clip_from_planes(planes, fmt_id, props)
    check_both_ways(clip, "ordered")
    colors = C.Colors.from_video(clip)
    rgb = np.stack(frame_planes(C.to_rgb(clip, colors)))
    if fmt.color_family == vs.YUV:  # the dither changes something (integer RGB/GRAY in and out are exact)
        plain, dithered = colorxp.rgb_to_planes(rgb, fmt, colors), colorxp.rgb_to_planes(rgb, fmt, colors, "ordered")
        assert any((a != b).any() for a, b in zip(plain, dithered))


def test_unsupported_raise_clearly():
    fmt = core.get_video_format(vs.YUV420P8)
    planes = random_planes(fmt, H, W, 0)
    for matrix in (10, 12, 13, 14):
        colors = C.Colors(vs.YUV, matrix, 0, 0, primaries=1, transfer=16)
        with pytest.raises(colorxp.UnsupportedConversion, match="core.resize"):
            colorxp.planes_to_rgb(planes, fmt, colors)
    colors = C.Colors(vs.YUV, 1, 0, 0)
    rgb = colorxp.planes_to_rgb(planes, fmt, colors)
    for dither in ("random", "error_diffusion"):
        with pytest.raises(colorxp.UnsupportedConversion, match="dither"):
            colorxp.rgb_to_planes(rgb, fmt, colors, dither=dither)


def test_namespace_and_batches():
    """NumPy in, NumPy out; leading batch dimensions are carried through."""
    fmt = core.get_video_format(vs.YUV420P10)
    colors = C.Colors(vs.YUV, 1, 0, 0)
    frames = [random_planes(fmt, H, W, s) for s in range(2)]
    batched = [np.stack([f[p] for f in frames]) for p in range(3)]
    assert colorxp.array_namespace(*batched) is np
    rgb = colorxp.planes_to_rgb(batched, fmt, colors)
    assert rgb.shape == (2, 3, H, W)
    np.testing.assert_array_equal(rgb[1], colorxp.planes_to_rgb(frames[1], fmt, colors))
    out = colorxp.rgb_to_planes(rgb, fmt, colors)
    assert [o.shape for o in out] == [(2, H, W), (2, H // 2, W // 2), (2, H // 2, W // 2)]
    assert all(o.dtype == np.uint16 for o in out)
