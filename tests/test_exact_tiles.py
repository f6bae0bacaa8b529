"""Step-wise (exact) tiles: every stage of BasicVSR++ run tile by tile on whole-frame features
equals the whole-frame pass; the pieces (regions, warping and deformable sampling of a region of
a whole frame), the engine's choice between step-wise and independent tiles, and the planner's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import vsvsrpp
from clips import clip_from_array, moving_frames
from vsvsrpp import arch
from vsvsrpp.arch import basicvsrpp
from vsvsrpp.arch.basicvsrpp import BasicVSRPlusPlus
from vsvsrpp.arch.blocks import Region, flow_warp, tile_regions
from vsvsrpp.arch.deform import modulated_deform_conv3x3
from vsvsrpp.runtime import memory
from vsvsrpp.runtime.engine import Engine

FAMILIES = {a.id: a for a in arch.ARCHITECTURES}
BASICVSRPP = FAMILIES["basicvsrpp"]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 200))
def test_tile_regions_partition_the_frame(height, width, tile):
    regions = tile_regions(height, width, tile)
    assert len(regions) == math.ceil(height / tile) * math.ceil(width / tile)
    covered = torch.zeros(height, width, dtype=torch.int32)
    for r in regions:
        assert 0 < r.y1 - r.y0 <= tile and 0 < r.x1 - r.x0 <= tile
        r.of(covered).add_(1)
    assert bool((covered == 1).all())


REGIONS = [Region(3, 20, 5, 44), Region(0, 10, 0, 9), Region(10, 37, 20, 50), Region(5, 6, 7, 8), Region(0, 36, 1, 50)]


@pytest.mark.parametrize("region", REGIONS)
def test_flow_warp_of_a_region_is_the_region_of_the_whole_warp(region):
    torch.manual_seed(0)
    x, flow = torch.randn(2, 6, 37, 50), torch.randn(2, 2, 37, 50) * 4
    part = flow_warp(x, region.of(flow), origin=region.origin)
    assert torch.equal(part, region.of(flow_warp(x, flow)))


@pytest.mark.parametrize("impl", ["torchvision", "sampled"])
@pytest.mark.parametrize("region", REGIONS)  # both parities of the size difference, 1 px, edges
def test_deformable_convolution_of_a_region_is_the_region_of_the_whole_one(impl, region):
    torch.manual_seed(1)
    groups = 4
    x = torch.randn(1, 16, 37, 50)
    offset, mask = torch.randn(1, 18 * groups, 37, 50) * 5, torch.rand(1, 9 * groups, 37, 50)
    weight, bias = torch.randn(8, 16, 3, 3), torch.randn(8)
    whole = modulated_deform_conv3x3(x, offset, mask, weight, bias, impl)
    part = modulated_deform_conv3x3(x, region.of(offset), region.of(mask), weight, bias, impl, origin=region.origin)
    # torchvision's region shifts the sampling positions by whole pixels (float rounding of the
    # positions only); the sampled one computes the same positions
    assert (part - region.of(whole)).abs().max().item() <= (1e-4 if impl == "torchvision" else 1e-5) * whole.abs().max().item()


def test_a_region_outside_x_is_refused():
    x = torch.randn(1, 4, 10, 10)
    with pytest.raises(ValueError, match="does not match x"):
        flow_warp(x, torch.zeros(1, 2, 5, 5), origin=(6, 0))
    with pytest.raises(ValueError, match="do not cover a region of x"):
        modulated_deform_conv3x3(x, torch.zeros(1, 18, 5, 5), torch.zeros(1, 9, 5, 5), torch.zeros(2, 4, 3, 3), torch.zeros(2), origin=(0, 7))


def sharpened(scale: int, seed: int = 0) -> BasicVSRPlusPlus:
    """A c16n2 network whose convolutions keep their inputs' magnitude (variance-preserving
    weights), so that a pixel's every neighbour within reach matters: random weights of the
    usual small scale fade within a few pixels and would hide a halo one pixel short. The
    offset convolutions keep their small weights (sharp ones make the offsets chaotic)."""
    torch.manual_seed(seed)
    model = BASICVSRPP.random(16, 2, scale).eval()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d) and not name.startswith(("spynet", "deform_align")):
                nn.init.normal_(module.weight, std=1 / math.sqrt(module.in_channels * 9))
    return model


def smooth_flows(t: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random flows of a few pixels (SPyNet with random weights gives chaotic ones)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(2 * (t - 1), 2, 4, 5, generator=g) * 3
    fine = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).view(2, 1, t - 1, 2, h, w)
    return fine[0], fine[1]


def tiled_vs_whole(model: BasicVSRPlusPlus, x: torch.Tensor, tile: int, flows=None) -> float:
    """max |tiled - whole| / max |whole| of one pass."""
    with torch.inference_mode():
        whole = model(x, flows=flows)
        out = torch.full_like(whole, float("nan"))

        def sink(i, hr, at):
            out[:, i, :, at[0] : at[0] + hr.size(-2), at[1] : at[1] + hr.size(-1)] = hr

        model(x, flows=flows, sink=sink, tile=tile)
    assert not out.isnan().any(), "the regions do not cover the frame"
    return (out - whole).abs().max().item() / whole.abs().max().item()


# (scale, frames, height, width, tile in input pixels): tiles that do and do not divide the
# frame, one frame (no alignment), two (first order only), a tile as large as the frame
EQUAL_CASES = [pytest.param(4, 5, 70, 150, 32, marks=pytest.mark.slow), (4, 5, 70, 150, 64), (4, 1, 70, 150, 32), (4, 2, 64, 64, 40), (4, 3, 64, 96, 200),
               (1, 4, 256, 300, 128), (4, 3, 64, 96, 16), pytest.param(1, 2, 256, 256, 16, marks=pytest.mark.slow)]  # fmt: skip  (16: MIN_STEP_TILE)


@pytest.mark.parametrize("scale, t, h, w, tile", EQUAL_CASES)
def test_step_wise_tiles_equal_whole_frames(scale, t, h, w, tile):
    model = sharpened(scale)
    fs = 1 if scale == 4 else 4
    x = torch.rand(1, t, 3, h, w, generator=torch.Generator().manual_seed(2))
    flows = smooth_flows(t, h // fs, w // fs) if t > 1 else None
    assert tiled_vs_whole(model, x, tile, flows) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("scale", [4, 1])
def test_each_halo_is_the_least_that_is_exact(scale, monkeypatch):
    """One pixel less of context in any stage shows (so the equality test above would see a
    halo too small)."""
    model = sharpened(scale)
    fs = 1 if scale == 4 else 4
    h, w = (70, 150) if scale == 4 else (256, 300)
    x = torch.rand(1, 4, 3, h, w, generator=torch.Generator().manual_seed(2))
    flows = smooth_flows(4, h // fs, w // fs)
    tile = 32 * fs
    exact = tiled_vs_whole(model, x, tile, flows)
    right = basicvsrpp.halos(model.config)
    for name in ("extract", "backbone", "step", "reconstruction"):
        less = dataclasses.replace(right, **{name: getattr(right, name) - 1})
        with monkeypatch.context() as m:
            m.setattr(basicvsrpp, "halos", lambda config, less=less: less)
            short = tiled_vs_whole(model, x, tile, flows)
        assert short > 20 * exact and short > 2e-5, (name, short, exact)


def test_step_wise_tiles_need_a_sink():
    with pytest.raises(ValueError, match="need a sink"):
        BASICVSRPP.random(8, 1)(torch.rand(1, 2, 3, 64, 64), tile=32)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_engine_runs_step_wise_tiles_on_the_fast_path(precision, native_bf16):
    """The engine's default for BasicVSR++ tiles: step-wise, equal to its whole-frame pass
    (fast path: channels_last, sampled deformable convolution; bf16 in reduced precision)."""
    d = BASICVSRPP.describe(BASICVSRPP.random(8, 1))
    frames = torch.from_numpy(moving_frames(4, 70, 150, seed=4))
    whole = Engine(d, "cpu", precision)(frames)
    engine = Engine(d, "cpu", precision, tile=64)
    assert engine.exact_tiles
    tiled = engine(frames)
    assert (tiled - whole).abs().max().item() <= (1e-5 if precision == "fp32" else 2e-2)


def test_only_families_with_step_wise_tiles_run_them(tiny_checkpoint):
    basicvsr = FAMILIES["basicvsr"]
    d = basicvsr.describe(basicvsr.random(8, 1))
    assert not Engine(d, "cpu", tile=64).exact_tiles
    with pytest.raises(ValueError, match="has no step-wise tiles"):
        Engine(d, "cpu", tile=64, exact_tiles=True)
    clip = clip_from_array(moving_frames(3, 64, 64, seed=1))
    with pytest.raises(vs.Error, match="exact_tiles must be True, False or None, got 'yes'"):
        vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, tile=64, exact_tiles="yes")


def test_filter_output_with_step_wise_tiles_equals_whole_frames(tiny_checkpoint):
    clip = clip_from_array(moving_frames(4, 80, 136, seed=5))
    whole = vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, window=4, output_format=vs.RGBS)
    tiled = vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, window=4, tile=64, exact_tiles=True, output_format=vs.RGBS)
    for n in range(clip.num_frames):
        a, b = whole.get_frame(n), tiled.get_frame(n)
        for p in range(3):
            assert np.abs(np.asarray(a[p]) - np.asarray(b[p])).max() <= 1e-5


def test_planner_takes_step_wise_tiles_before_independent_ones():
    shape = BASICVSRPP.memory_shape(BASICVSRPP.make_config(64, 7))
    h, w, frames = 1080, 1920, memory.MIN_WINDOW + 2 * 2
    exact = memory.estimate(shape, frames, h, w, 4, tile=256, exact=True)
    whole = memory.estimate(shape, frames, h, w, 4)
    assert exact.total < whole.total
    # room for step-wise tiles but not for whole frames: step-wise
    free = int(exact.total / memory.BUDGET_FRACTION) + 1
    chosen = memory.plan(shape, h, w, free, 2, 4, margin=54)
    assert chosen.exact_tiles and chosen.tile is not None and "step-wise tiles (exact)" in chosen.reason
    assert chosen.estimate.total <= free * memory.BUDGET_FRACTION
    # no room for whole-frame features: independent tiles
    small = int(memory.estimate(shape, frames, h, w, 4, tile=256, margin=54).total / memory.BUDGET_FRACTION) + 1
    assert small < free
    chosen = memory.plan(shape, h, w, small, 2, 4, margin=54)
    assert not chosen.exact_tiles and chosen.tile is not None and "independent tiles" in chosen.reason
    # a family without them goes straight to independent tiles
    basicvsr = FAMILIES["basicvsr"]
    other = basicvsr.memory_shape(basicvsr.make_config(64, 30))
    assert not memory.plan(other, h, w, free, 2, 4, margin=16).exact_tiles
    # the 1x models take them too (features at quarter resolution)
    x1 = BASICVSRPP.memory_shape(BASICVSRPP.make_config(64, 7, 1))
    room = int(memory.estimate(x1, frames, 4 * h, 4 * w, 4, tile=1024, exact=True).total / memory.BUDGET_FRACTION) + 1
    assert memory.estimate(x1, frames, 4 * h, 4 * w, 4).total > room * memory.BUDGET_FRACTION
    chosen = memory.plan(x1, 4 * h, 4 * w, room, 2, 4, margin=216)
    assert chosen.exact_tiles and chosen.tile is not None and chosen.estimate.total <= room * memory.BUDGET_FRACTION
