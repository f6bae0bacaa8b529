"""Tests of the benchmark degradations (vsvsrpp.tools.degradations), the metrics and the evaluation
loop (vsvsrpp.tools.evaluate) and the ``vsvsrpp eval`` command.

Tests marked ``shared`` read Vid4 from ../shared (VSVSRPP_SHARED_DIR) and skip without it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vsvsrpp import cli
from vsvsrpp.tools import degradations, evaluate
from vsvsrpp.tools.degradations import blur_downsample, degrade, gaussian_kernel1d, imresize, imresize_matrix

from conftest import SHARED

VID4 = SHARED / "data" / "vid4"
needs_vid4 = pytest.mark.skipif(not (VID4 / "GT" / "calendar").is_dir(), reason="../shared Vid4 not present")
needs_bd_calendar = pytest.mark.skipif(not (VID4 / "BDx4_calendar").is_dir(), reason="../shared BDx4_calendar not present")


# ---------------------------------------------------------------------------------------------
# MATLAB bicubic imresize
# ---------------------------------------------------------------------------------------------


def test_cubic_kernel_values():
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5], dtype=torch.float64)
    # Keys' kernel with a = -0.5 at quarter-sample distances, as fractions of 128.
    expected = torch.tensor([128, 111, 72, 29, 0, -9, -8, -3, 0, 0], dtype=torch.float64) / 128
    assert torch.allclose(degradations.cubic(x), expected, atol=1e-15)
    assert torch.allclose(degradations.cubic(-x), expected, atol=1e-15)


def test_upsample_x2_weights_are_the_bicubic_phase_quarter_taps():
    # 2x: output sample x (1-based) reads input u = x/2 + 1/4; interior rows carry the taps
    # (-9, 111, 29, -3)/128 or their mirror image.
    m = imresize_matrix(16, 32, 2.0, antialias=True)
    assert m.shape == (32, 16)
    assert torch.allclose(m.sum(1), torch.ones(32, dtype=torch.float64))
    row = m[9]  # x = 10: u = 5.25 -> inputs 4..7 (1-based) = columns 3..6
    assert torch.allclose(row[3:7], torch.tensor([-9, 111, 29, -3], dtype=torch.float64) / 128, atol=1e-15)
    assert row[:3].abs().sum() == 0 and row[7:].abs().sum() == 0


def test_downsample_x2_antialias_weights():
    # 1/2 with antialiasing: the kernel is widened to 8 taps, 0.5 * cubic(d / 2) at d = +-0.5..3.5.
    m = imresize_matrix(32, 16, 0.5)
    taps = torch.tensor([-3, -9, 29, 111, 111, 29, -9, -3], dtype=torch.float64) / 256
    row = m[5]  # x = 6: u = 11.5 -> inputs 8..15 (1-based) = columns 7..14
    assert torch.allclose(row[7:15], taps, atol=1e-15)
    assert row.abs().sum().item() == pytest.approx(taps.abs().sum().item())


def test_symmetric_boundary_folds_taps_onto_edge_samples():
    m = imresize_matrix(8, 16, 2.0)
    # x = 1: u = 0.75 -> taps at inputs -1, 0, 1, 2 (1-based); MATLAB's mirror maps 0 -> 1 and
    # -1 -> 2, so the first column collects the taps of 0 and 1.
    d = torch.tensor([1.75, 0.75, -0.25, -1.25], dtype=torch.float64)
    w = degradations.cubic(d)
    assert m[0, 0].item() == pytest.approx((w[1] + w[2]).item())
    assert m[0, 1].item() == pytest.approx((w[0] + w[3]).item())


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), value=st.floats(0, 1), scale=st.sampled_from([0.25, 0.5, 2.0, 4.0, 1 / 3]))
def test_imresize_keeps_constants_and_shape_rules(h, w, value, scale):
    img = torch.full((2, 3, h, w), value, dtype=torch.float64)
    out = imresize(img, scale=scale)
    assert out.shape == (2, 3, math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9))
    assert torch.allclose(out, torch.full_like(out, value), atol=1e-12)


def test_imresize_reproduces_a_linear_ramp_away_from_the_border():
    # Cubic convolution reproduces linear functions exactly; MATLAB maps output x (1-based) to
    # input u = x/s + (1 - 1/s)/2, so the interior of a resized ramp is that ramp at u.
    for scale, n in ((0.25, 96), (4.0, 24), (0.5, 40)):
        ramp = torch.arange(1, n + 1, dtype=torch.float64) * 0.01 + 0.2
        img = ramp.expand(5, n)
        out = imresize(img, size=(5, round(n * scale)))[0]
        x = torch.arange(1, out.numel() + 1, dtype=torch.float64)
        u = x / scale + 0.5 * (1 - 1 / scale)
        support = (2 if scale > 1 else 2 / scale) + 1
        inner = (u - support >= 1) & (u + support <= n)
        assert inner.sum() > 3
        assert torch.allclose(out[inner], u[inner] * 0.01 + 0.2, atol=1e-12)


def test_imresize_matches_resize_by_size_and_dtype():
    img = torch.rand(3, 20, 28)
    a = imresize(img, scale=0.25)
    b = imresize(img, size=(5, 7))
    assert a.dtype == torch.float32 and torch.allclose(a, b)
    with pytest.raises(ValueError):
        imresize(img)
    with pytest.raises(ValueError):
        imresize(img, scale=0.5, size=(10, 14))


# ---------------------------------------------------------------------------------------------
# BD
# ---------------------------------------------------------------------------------------------


def test_gaussian_kernel():
    k = gaussian_kernel1d(13, 1.6)
    assert k.shape == (13,) and k.sum().item() == pytest.approx(1.0)
    assert torch.equal(k, k.flip(0)) and k.argmax().item() == 6
    assert (k[7] / k[6]).item() == pytest.approx(math.exp(-1 / (2 * 1.6**2)))


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), value=st.floats(0, 1))
def test_bd_keeps_constants(h, w, value):
    img = torch.full((3, 4 * h, 4 * w), value, dtype=torch.float64)
    out = blur_downsample(img)
    assert out.shape == (3, h, w)
    assert torch.allclose(out, torch.full_like(out, value), atol=1e-12)


def test_bd_samples_the_first_pixel_of_each_block():
    img = torch.zeros(1, 64, 64, dtype=torch.float64)
    img[0, 20, 36] = 1.0  # a dot on the grid 4i: it lands on LR pixel (5, 9) with the peak weight
    out = blur_downsample(img)
    assert out[0].argmax().item() == 5 * 16 + 9
    assert out[0, 5, 9].item() == pytest.approx(gaussian_kernel1d()[6].item() ** 2)


def test_degrade_rules():
    img = torch.rand(2, 3, 32, 48, dtype=torch.float64)
    for kind in ("bi", "bd"):
        lq = degrade(img, kind)
        assert lq.shape == (2, 3, 8, 12)
        assert torch.equal(lq, torch.round(lq * 255) / 255)  # 8-bit levels
        assert torch.equal(degrade(img, kind, rounding="floor"), torch.floor(degrade(img, kind, rounding=None).clamp(0, 1) * 255) / 255)
    with pytest.raises(ValueError, match="multiple"):
        degrade(img[..., :30, :], "bi")
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(img, "bx")


def _load_u8(paths) -> torch.Tensor:
    return evaluate.read_frames(paths).to(torch.float64)


@needs_bd_calendar
def test_bd_reproduces_the_official_vid4_bdx4_calendar():
    """Our BD against the published calendar BDx4 frames (first 4 frames).

    Measured over all 41 frames: with rounding, max |diff| = 2 levels and about 49% of the values
    differ by 1 — the published files are truncated, not rounded: with ``floor`` the max is
    still 2 but only about 12.5% differ (least squares on the files gives our 13x13 sigma-1.6
    kernel, centred on pixel 4i, plus a constant -0.50). The other sampling phases miss by tens
    of levels everywhere, and mirrored borders miss by tens of levels at the border.
    """
    gt_paths = evaluate.list_frames(VID4 / "GT" / "calendar")[:4]
    lr_paths = evaluate.list_frames(VID4 / "BDx4_calendar")[:4]
    gt = _load_u8(gt_paths) / 255
    ref = _load_u8(lr_paths)
    ours = blur_downsample(gt) * 255
    for rounding, mismatch in (("round", 0.52), ("floor", 0.15)):
        q = torch.round(ours) if rounding == "round" else torch.floor(ours)
        diff = (q - ref).abs()
        assert diff.max().item() <= 2, rounding
        assert (diff > 0).double().mean().item() < mismatch, rounding
    assert abs((ours - ref).mean().item() - 0.5) < 0.05  # truncation: a constant half level
    for offset in (1, 2, 3):
        assert (torch.round(blur_downsample(gt, offset=offset) * 255) - ref).abs().max().item() > 30
    for padding in ("reflect", "symmetric"):
        border = (torch.round(blur_downsample(gt, padding=padding) * 255) - ref).abs()
        assert border.max().item() > 10 and border[..., 2:-2, 2:-2].max().item() <= 2


@pytest.mark.parametrize("offset", [0, 0.5, 1.5, 2.25, 3])
def test_bd_offset_places_each_sample_at_its_sub_pixel_phase(offset):
    """On a ramp, a symmetric blur returns the ramp at its centre: sample i of the interior is
    4i + offset, exactly where the taps lie symmetrically (multiples of 1/2), and within 1/1000
    px otherwise (the Gaussian's tails are cut a quarter pixel unevenly)."""
    ramp = torch.arange(96, dtype=torch.float64).expand(8, 96)
    out = blur_downsample(ramp, offset=offset)[0]
    expected = torch.arange(24, dtype=torch.float64) * 4 + offset
    assert torch.allclose(out[2:-2], expected[2:-2], atol=1e-9 if offset * 2 == int(offset * 2) else 1e-3)


def test_a_block_centred_bd_commutes_with_flipping_and_the_official_phase_does_not():
    img = torch.rand(3, 64, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    flip = lambda x: x.flip(-1).flip(-2)  # noqa: E731
    centred = blur_downsample(img, offset=degradations.BD_OFFSET_CENTRED)
    assert torch.allclose(flip(blur_downsample(flip(img), offset=degradations.BD_OFFSET_CENTRED)), centred, atol=1e-12)
    official = blur_downsample(img)
    assert not torch.allclose(flip(blur_downsample(flip(img))), official, atol=1e-3)
    assert torch.equal(degrade(img, "bd", rounding=None, bd_offset=1.5), centred)
    with pytest.raises(ValueError, match="offset must be in"):
        blur_downsample(img, offset=4)


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def test_rgb_to_y_studio_range():
    img = torch.zeros(3, 2, 2, dtype=torch.uint8)
    img[:, 1] = 255
    y = evaluate.rgb_to_y(img)
    assert y.shape == (1, 2, 2)
    assert torch.allclose(y[0, 0], torch.full((2,), 16.0, dtype=torch.float64))
    assert torch.allclose(y[0, 1], torch.full((2,), 235.0, dtype=torch.float64))
    red = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1)
    assert evaluate.rgb_to_y(red).item() == pytest.approx(16 + 65.481)


def test_psnr_of_a_known_error():
    a = torch.full((1, 32, 32), 128.0, dtype=torch.float64)
    sign = (torch.arange(32 * 32).view(1, 32, 32) % 2) * 2 - 1
    b = a + 5 * sign  # MSE = 25
    assert evaluate.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    assert evaluate.psnr(a, a) == math.inf
    rng = np.random.default_rng(0)
    # Gaussian noise of sigma 10: MSE 100 up to sampling (relative std sqrt(2/n) = 0.55%, 0.024 dB).
    big = torch.full((1, 256, 256), 128.0, dtype=torch.float64)
    noisy = big + torch.from_numpy(rng.normal(0, 10, size=big.shape))
    assert evaluate.psnr(big, noisy) == pytest.approx(10 * math.log10(255**2 / 100), abs=0.1)


def test_ssim_identity_constant_and_noise():
    rng = np.random.default_rng(1)
    img = torch.from_numpy(rng.uniform(16, 235, size=(1, 48, 48)))
    img = torch.nn.functional.avg_pool2d(img[None], 3, 1, 1)[0]  # some structure
    assert evaluate.ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    # Constant images: only the luminance term, (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01*255)^2.
    a, b = torch.full((1, 20, 20), 100.0), torch.full((1, 20, 20), 110.0)
    c1 = (0.01 * 255) ** 2
    assert evaluate.ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)
    values = [evaluate.ssim(img, img + torch.from_numpy(rng.normal(0, s, size=img.shape))) for s in (1, 4, 16, 64)]
    assert all(x > y for x, y in zip(values, values[1:])), values
    assert evaluate.ssim(img, 255 - img) < 0
    with pytest.raises(ValueError):
        evaluate.ssim(img[..., :10, :10], img[..., :10, :10])


def test_frame_metrics_channels_and_crop():
    rng = np.random.default_rng(2)
    gt = torch.from_numpy(rng.integers(0, 256, size=(3, 40, 40), dtype=np.uint8))
    out = gt.clone()
    out[:, :4] = 0  # damage only the top border
    p_full, s_full = evaluate.frame_metrics(out, gt, "y", 0)
    p_crop, s_crop = evaluate.frame_metrics(out, gt, "y", 4)
    assert p_crop == math.inf and s_crop == pytest.approx(1.0) and p_full < 30 and s_full < 1
    p_rgb, _ = evaluate.frame_metrics(out, gt, "rgb", 0)
    assert p_rgb != p_full
    with pytest.raises(ValueError):
        evaluate.frame_metrics(out, gt, "yuv")


# ---------------------------------------------------------------------------------------------
# the evaluation loop
# ---------------------------------------------------------------------------------------------


def _texture(h: int, w: int, t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for i in range(t):
        img = np.full((h, w, 3), 0.5)
        for f in (0.09, 0.21, 0.37):
            ang, ph = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi, 3)
            arg = f * (np.cos(ang) * (xx - 1.3 * i) + np.sin(ang) * (yy - 0.7 * i))
            img += 0.15 * np.sin(arg[..., None] + ph)
        frames.append((img.clip(0, 1) * 255).round().astype(np.uint8))
    return np.stack(frames)


def _write_clip(folder, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i + 1:04d}.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two small clips of different lengths (5 and 3 frames, 48x64 and 64x48)."""
    root = tmp_path_factory.mktemp("gt")
    _write_clip(root / "alpha", _texture(48, 64, 5, 0))
    _write_clip(root / "beta", _texture(64, 48, 3, 1))
    return root


def test_find_clips_and_natural_order(tmp_path, dataset):
    clips = evaluate.find_clips(dataset)
    assert list(clips) == ["alpha", "beta"]
    assert evaluate.find_clips(dataset / "alpha") == {"alpha": dataset / "alpha"}
    for name in ("10.png", "2.png", "1.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    assert [p.name for p in evaluate.list_frames(tmp_path)] == ["1.png", "2.png", "10.png"]
    with pytest.raises(FileNotFoundError):
        evaluate.find_clips(tmp_path / "missing")


def test_mod_crop_and_to_uint8():
    x = torch.zeros(2, 3, 43, 50)
    assert evaluate.mod_crop(x, 4).shape == (2, 3, 40, 48)
    v = torch.tensor([-0.1, 0.0, 0.6 / 255, 1.49 / 255, 0.999, 1.2])
    assert evaluate.to_uint8(v).tolist() == [0, 0, 1, 1, 255, 255]


def test_evaluate_bicubic_result_layout(dataset):
    result = evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bi", method_name="bicubic")
    assert list(result.clips) == ["alpha", "beta"]
    assert [c.frames for c in result.clips.values()] == [5, 3]
    for c in result.clips.values():
        assert c.psnr == pytest.approx(np.mean(c.frame_psnr)) and 20 < c.psnr < 60 and 0 < c.ssim < 1
    # the average is the mean of clip means, not of frames
    assert result.psnr == pytest.approx((result.clips["alpha"].psnr + result.clips["beta"].psnr) / 2)
    d = json.loads(result.to_json())
    assert set(d) == {"clips", "average"}
    assert d["clips"]["beta"] == {"psnr": pytest.approx(result.clips["beta"].psnr), "ssim": pytest.approx(result.clips["beta"].ssim)}
    assert d["average"]["ssim"] == pytest.approx(result.ssim)
    table = result.format_table()
    assert "alpha" in table and "Average" in table and f"{result.psnr:.2f}/{result.ssim:.4f}" in table


def test_evaluate_options(dataset):
    bd = evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bd", limit_frames=2, clips=["beta"], channel="rgb")
    assert list(bd.clips) == ["beta"] and bd.clips["beta"].frames == 2
    with pytest.raises(FileNotFoundError, match="gamma"):
        evaluate.evaluate(dataset, evaluate.bicubic_method(), clips=["gamma"])
    with pytest.raises(ValueError):
        evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bx")


def test_perfect_method_scores_infinite_psnr(dataset):
    gts = {n: evaluate.read_frames(evaluate.list_frames(p)) for n, p in evaluate.find_clips(dataset).items()}

    def oracle(lq):
        for g in gts.values():
            if g.shape[-2] == 4 * lq.shape[-2] and g.shape[0] == lq.shape[0]:
                return g.float() / 255
        raise AssertionError

    result = evaluate.evaluate(dataset, oracle)
    assert result.psnr == math.inf and result.ssim == pytest.approx(1.0)
    assert json.loads(result.to_json())["average"]["psnr"] is None


def test_lq_folder_gives_the_same_scores(dataset, tmp_path):
    for name, path in evaluate.find_clips(dataset).items():
        gt = evaluate.read_frames(evaluate.list_frames(path)).to(torch.float64) / 255
        lq = evaluate.to_uint8(degrade(gt, "bd")).permute(0, 2, 3, 1).numpy()
        _write_clip(tmp_path / name, lq)
    a = evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bd")
    b = evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bd", lq_root=tmp_path)
    assert a.to_dict() == b.to_dict()


def test_model_method_runs_through_the_window_grid(dataset, tiny_checkpoint):
    from vsvsrpp.hub.checkpoint import load_descriptor
    from vsvsrpp.runtime.engine import Engine

    engine = Engine(load_descriptor(tiny_checkpoint), "cpu")
    seen = []
    real = engine.process_sequence

    def spy(frames, window, overlap, **kw):
        seen.append((frames.shape[0], window, overlap))
        return real(frames, window, overlap, **kw)

    engine.process_sequence = spy
    result = evaluate.evaluate(dataset, evaluate.model_method(engine, window=2, overlap=1), clips=["beta"])
    assert seen == [(3, 2, 1)]
    assert math.isfinite(result.psnr) and 0 < result.ssim <= 1


# ---------------------------------------------------------------------------------------------
# the paper's Bicubic row on Vid4
# ---------------------------------------------------------------------------------------------

# Full Vid4 (171 frames), measured with this code (Y channel, crop border 0), PSNR/SSIM:
#   BI: calendar 20.3945/0.5720  city 25.1648/0.6028  foliage 23.4713/0.5666  walk 26.1037/0.7974
#       average 23.7836/0.6347   paper: 23.78/0.6347
#   BD: calendar 18.8094/0.4932  city 23.8486/0.5241  foliage 21.5100/0.4437  walk 23.0052/0.7100
#       average 21.7933/0.5427   paper: 21.80/0.5246
# BI matches the paper in both metrics and BD in PSNR; the paper's BD SSIM is 0.018 lower than
# ours. The published calendar BDx4 frames give the same score as our BD (18.81/0.4938), and no
# SSIM variant tried (truncated LR, rounded Y, RGB, 7x7 uniform window, 2x-downsampled SSIM,
# Y without the +16 offset, torch bicubic a=-0.75) reproduces 0.5246 while keeping PSNR at 21.80
# and the BI SSIM at 0.6347; the row was probably computed elsewhere. The BD SSIM is therefore
# pinned to our own value, not to the paper's.
#
# The test scores the first SUBSET_FRAMES frames of each clip (12 frames) to stay fast:
# * the subset averages are pinned to the values of the full run (1e-3 dB, 1e-4): a regression
#   check of every step (degradation, upsampling, rounding, Y, PSNR, SSIM);
# * the subset average may differ from the paper by at most SUBSET_GAP plus the paper's own
#   tolerance (0.05 dB, 0.005), where SUBSET_GAP is the largest gap between a clip's 3-frame mean
#   and its full mean in the full run (BI 0.196 dB / 0.0133, BD 0.165 dB / 0.0149; the average
#   of four clips cannot move further than its worst clip). The actual gaps of the averages are
#   -0.019 dB / -0.0039 (BI) and -0.010 dB / -0.0043 (BD).
SUBSET_FRAMES = 3
SUBSET = {"bi": (23.76444, 0.63081), "bd": (21.78338, 0.53840)}
SUBSET_GAP = {"bi": (0.196, 0.0133), "bd": (0.165, 0.0149)}
PAPER = {"bi": (23.78, 0.6347), "bd": (21.80, 0.5246)}


@pytest.mark.slow
@needs_vid4
@pytest.mark.parametrize("kind", ["bi", "bd"])
def test_vid4_bicubic_matches_the_paper_on_a_subset(kind):
    result = evaluate.evaluate(VID4 / "GT", evaluate.bicubic_method(), degradation=kind, limit_frames=SUBSET_FRAMES)
    assert list(result.clips) == ["calendar", "city", "foliage", "walk"]
    psnr, ssim = SUBSET[kind]
    assert result.psnr == pytest.approx(psnr, abs=1e-3)
    assert result.ssim == pytest.approx(ssim, abs=1e-4)
    (paper_psnr, paper_ssim), (gap_psnr, gap_ssim) = PAPER[kind], SUBSET_GAP[kind]
    assert abs(result.psnr - paper_psnr) <= gap_psnr + 0.05
    if kind == "bi":  # see above for BD's SSIM
        assert abs(result.ssim - paper_ssim) <= gap_ssim + 0.005


# ---------------------------------------------------------------------------------------------
# vsvsrpp eval
# ---------------------------------------------------------------------------------------------


def test_cli_eval_json(dataset, capsys):
    code = cli.main(["eval", str(dataset), "--method", "bicubic", "--degradation", "bd", "--limit-frames", "2", "--json", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    d = json.loads(out)
    ref = evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bd", limit_frames=2)
    assert d == json.loads(ref.to_json())


def test_cli_eval_bd_offset(dataset, capsys):
    argv = ["eval", str(dataset), "--method", "bicubic", "--degradation", "bd", "--limit-frames", "2", "--no-progress"]
    assert cli.main([*argv, "--bd-offset", "1.5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    ref = evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bd", limit_frames=2, bd_offset=1.5)
    assert d == json.loads(ref.to_json()) != json.loads(evaluate.evaluate(dataset, evaluate.bicubic_method(), degradation="bd", limit_frames=2).to_json())
    assert cli.main([*argv, "--bd-offset", "1.5"]) == 0 and "BDx4 (offset 1.5)" in capsys.readouterr().out
    assert cli.main([*argv, "--bd-offset", "4"]) == 1 and "bd_offset must be in [0, 4)" in capsys.readouterr().err


def test_cli_eval_table_with_a_model(dataset, tiny_checkpoint, capsys):
    code = cli.main(["eval", str(dataset), "--weights", str(tiny_checkpoint), "--clips", "beta", "--window", "2", "--overlap", "0", "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "beta" in out and "Average" in out and "alpha" not in out


def test_cli_eval_any_family_with_its_options(dataset, tiny_realbasicvsr_checkpoint, tiny_checkpoint, capsys):
    """A RealBasicVSR checkpoint is evaluated with its refinement option; the same option on a
    BasicVSR++ checkpoint is refused, naming the family."""
    argv = ["eval", str(dataset), "--clips", "beta", "--window", "2", "--overlap", "0", "--device", "cpu", "--no-progress", "--json"]
    one = cli.main([*argv, "--weights", str(tiny_realbasicvsr_checkpoint), "--cleaning-passes", "1"])
    one_out = json.loads(capsys.readouterr().out)
    three = cli.main([*argv, "--weights", str(tiny_realbasicvsr_checkpoint), "--cleaning-passes", "3"])
    three_out = json.loads(capsys.readouterr().out)
    assert one == three == 0 and one_out != three_out  # the option reaches the network
    assert cli.main([*argv, "--weights", str(tiny_checkpoint), "--cleaning-passes", "1"]) == 1
    assert "cleaning_passes does not apply to BasicVSR++ networks" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "/nonexistent/gt", "--method", "bicubic"], "not found"),
        (["eval", "{gt}", "--method", "bicubic", "--model", "reds4"], "takes no --model"),
        (["eval", "{gt}", "--cleaning-passes", "4"], "cleaning_passes must be from 1 to 3"),
        (["eval", "{gt}", "--weights", "/nonexistent.pth"], "not found"),
        (["eval", "{gt}", "--method", "bicubic", "--limit-frames", "0"], "positive"),
        (["eval", "{gt}", "--method", "bicubic", "--degradation", "bx"], "invalid choice"),
        (["eval", "{gt}", "--method", "bicubic", "--bd-offset", "1.5"], "--bd-offset sets how --degradation bd"),
    ],
)
def test_cli_eval_usage_errors(dataset, capsys, argv, message):
    code = cli.main([a.format(gt=dataset) for a in argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_eval_truncated_png_is_one_line(dataset, tmp_path, capsys):
    """Issue 26, item 9: a damaged ground-truth frame ended in PIL's traceback."""
    import shutil

    gt = tmp_path / "gt"
    shutil.copytree(dataset / "beta", gt / "beta")
    frame = sorted((gt / "beta").iterdir())[1]
    frame.write_bytes(frame.read_bytes()[:100])
    assert cli.main(["eval", str(gt), "--method", "bicubic", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vsvsrpp: error: cannot read {frame}: ") and err.count("\n") == 1


def test_cli_eval_unknown_clip_fails(dataset, capsys):
    assert cli.main(["eval", str(dataset), "--method", "bicubic", "--clips", "gamma", "--no-progress"]) == 1
    assert "gamma" in capsys.readouterr().err


def test_16_bit_grayscale_png_reads_as_its_8_bit_values(tmp_path):
    """Issue 26, item 7: PIL's convert("RGB") clipped I;16 at 255, so 16-bit ground truth scored
    23.68 dB where the same frames in 8 bits scored 40.30."""
    from PIL import Image

    from vsvsrpp.tools.evaluate import read_frames

    values = np.array([[0, 64, 128, 255], [10, 20, 200, 250]], dtype=np.uint16)
    Image.fromarray(values.astype(np.uint8), "L").save(tmp_path / "8.png")
    Image.fromarray((values * 257).astype(np.uint16)).save(tmp_path / "16.png")  # 16-bit grayscale PNG
    with Image.open(tmp_path / "16.png") as im:
        assert im.mode.startswith("I")
    eight, sixteen = read_frames([tmp_path / "8.png"]), read_frames([tmp_path / "16.png"])
    assert torch.equal(eight, sixteen) and sixteen.dtype == torch.uint8 and sixteen.shape == (1, 3, 2, 4)
