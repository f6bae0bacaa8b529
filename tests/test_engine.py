"""Engine: reduced precision, spatial tiles, out-of-memory back-off, memory planning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, moving_frames
from conftest import PARITY
from vsvsrpp.arch import MemoryShape
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime import memory
from vsvsrpp.runtime.device import resolve_precision
from vsvsrpp.runtime.engine import Engine, blend_weights
from vsvsrpp.runtime.windows import tile_layout


def stand_in(descriptor, network, fp32_modules=()):
    """The descriptor with another network in place of its own (a test double)."""
    return dataclasses.replace(descriptor, model=network, fp32_modules=fp32_modules)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def parity_x4():
    if not (PARITY / "basicvsrpp_c16n2_x4.npz").exists():
        pytest.skip(f"parity vectors not found in {PARITY}")
    lq = torch.from_numpy(np.load(PARITY / "basicvsrpp_c16n2_x4.npz")["lq"][0])
    return PARITY / "basicvsrpp_c16n2_x4.pth", lq


def test_bf16_keeps_psnr_on_the_parity_vector(parity_x4, native_bf16):
    path, lq = parity_x4
    ref = Engine(load_descriptor(path), "cpu", "fp32")(lq).numpy()
    out = Engine(load_descriptor(path), "cpu", "bf16")(lq).numpy()
    assert np.isfinite(out).all()
    assert psnr(out, ref) >= 38.0


def test_fp16_keeps_psnr_and_flow_stays_fp32(tiny_checkpoint):
    lq = torch.from_numpy(moving_frames(3, 64, 64, seed=9))
    ref = Engine(load_descriptor(tiny_checkpoint), "cpu", "fp32")(lq).numpy()
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu", "fp16")
    assert engine.model.spynet.mean.dtype == torch.float32 and engine.model.conv_last.weight.dtype == torch.float16
    out = engine(lq).numpy()
    assert np.isfinite(out).all() and psnr(out, ref) >= 45.0


def test_precision_names():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", torch.device("cpu"))


@pytest.mark.parametrize("length, tile, margin, minimum, align", [(100, 64, 16, 1, 1), (64, 64, 16, 1, 1), (130, 48, 8, 1, 1), (320, 128, 54, 64, 1), (512, 128, 32, 256, 4), (64, 16, 4, 64, 1), (160, 16, 4, 64, 1)])
def test_tile_layout_partitions_the_frame_into_cores_with_context(length, tile, margin, minimum, align):
    spans = tile_layout(length, tile, margin, minimum, align)
    assert spans[0].core_start == 0 and spans[-1].core_end == length
    assert all(a.core_end == b.core_start for a, b in zip(spans, spans[1:]))  # cores partition
    for sp in spans:
        assert sp.core_end - sp.core_start <= max(tile, minimum - 2 * margin, align) + align or len(spans) == 1
        assert sp.start <= max(0, sp.core_start - margin) + align and sp.end >= min(length, sp.core_end + margin) - align
        assert sp.end - sp.start >= min(minimum, length)
        assert sp.start % align == 0 and (sp.end % align == 0 or sp.end == length)
    # no span repeats another's work: a core below the minimum would widen to the same span
    assert len({(sp.start, sp.end) for sp in spans}) == len(spans)


@pytest.mark.parametrize("length, tile, margin, scale", [(100, 40, 8, 4), (320, 128, 54, 4), (181, 64, 16, 1), (90, 100, 8, 4)])
def test_blend_weights_sum_to_one_and_stay_inside_the_margin(length, tile, margin, scale):
    spans = tile_layout(length, tile, margin)
    total = torch.zeros(length * scale)
    for sp, w in zip(spans, blend_weights(spans, scale, margin / 2)):
        total[sp.start * scale : sp.end * scale] += w
        u = (torch.arange(sp.start * scale, sp.end * scale) + 0.5) / scale
        outside = (u < sp.core_start - margin / 2) | (u > sp.core_end + margin / 2)
        assert (w[outside] == 0).all()  # no output used beyond half the margin
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)


def test_tiles_of_a_constant_frame_blend_without_seams(tiny_checkpoint):
    """Blending weights sum to one: a pixel-wise network sees no tile edge at all."""

    class Double(torch.nn.Module):  # x4 nearest upscaling: the same output tiled or not
        def forward(self, x, **_):
            return torch.nn.functional.interpolate(x[0], scale_factor=4, mode="nearest")[None]

    lq = torch.rand(2, 3, 100, 130)
    descriptor = stand_in(load_descriptor(tiny_checkpoint), Double())
    whole = Engine(descriptor, "cpu")(lq)
    tiled = Engine(descriptor, "cpu", tile=64, tile_margin=16, exact_tiles=False)(lq)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_tiled_output_stays_close_to_whole_frames(parity_x4):
    path, lq = parity_x4
    lq = torch.nn.functional.interpolate(lq, size=(96, 128), mode="bilinear", align_corners=False)
    whole = Engine(load_descriptor(path), "cpu")(lq).numpy()
    tiled = Engine(load_descriptor(path), "cpu", tile=64, exact_tiles=False)(lq).numpy()  # margin: its reach
    assert tiled.shape == whole.shape
    assert psnr(tiled, whole) >= 60.0  # flow from whole frames; was 56.5 dB with per-tile flow at 80 px


def test_out_of_memory_halves_the_tile_and_retries(tiny_checkpoint, caplog):
    descriptor = load_descriptor(tiny_checkpoint)
    model = descriptor.model
    calls = []

    class Limited(torch.nn.Module):  # raises like CUDA would above 80x80 pixels per pass
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x, **kw):
            calls.append(tuple(x.shape[-2:]))
            if x.shape[-1] * x.shape[-2] > 80 * 80:  # a 64 px tile with its 8 px margins fits
                raise torch.OutOfMemoryError("simulated")
            return self.inner(x, **kw)

    engine = Engine(stand_in(descriptor, Limited(), ("inner.spynet",)), "cpu", tile_margin=8, exact_tiles=False)
    out = engine(torch.rand(2, 3, 100, 128))
    assert out.shape == (2, 3, 400, 512) and torch.isfinite(out).all()
    assert engine.tile == 64 and calls[0] == (100, 128)
    assert sum("retrying with 64 px tiles" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("exact, smallest", [(False, memory.MIN_TILE), (True, memory.MIN_STEP_TILE)])
def test_out_of_memory_below_the_smallest_tile_is_raised(tiny_checkpoint, exact, smallest):
    class Full(torch.nn.Module):  # a device with no memory at all
        def forward(self, x, **_):
            raise torch.OutOfMemoryError("simulated")

    engine = Engine(stand_in(load_descriptor(tiny_checkpoint), Full()), "cpu", exact_tiles=exact)
    with pytest.raises(torch.OutOfMemoryError):
        engine(torch.rand(1, 3, 300, 300))
    assert engine.tile == smallest  # it went down to the smallest tile of its kind before giving up


def test_memory_plan_prefers_long_windows_then_tiles():
    shape = MemoryShape(64, 5, 1, 4)
    big = memory.plan(shape, 180, 320, 64 << 30, overlap=4)
    assert big.window == 24 and big.tile is None
    small = memory.plan(shape, 180, 320, 4 << 30, overlap=4)
    assert memory.MIN_WINDOW <= small.window < 24 and small.tile is None
    total = lambda w: memory.estimate(shape, w + 8, 180, 320, emitted=w).total  # noqa: E731  (only the window's output is kept)
    assert total(small.window) <= (4 << 30) * memory.BUDGET_FRACTION < total(small.window + 1)
    tiled = memory.plan(shape, 1080, 1920, 16 << 30, overlap=4)  # the 4K output window alone is 5.6 GB
    assert tiled.window == memory.MIN_WINDOW and tiled.tile is not None and tiled.tile < 1920
    with pytest.raises(MemoryError, match="MiB"):
        memory.plan(shape, 1080, 1920, 64 << 20, overlap=4)


def test_estimate_grows_linearly_with_frames_and_halves_with_fp16():
    shape = MemoryShape(64, 5, 1, 4)
    e10, e20 = (memory.estimate_bytes(shape, t, 180, 320) for t in (10, 20))
    e30 = memory.estimate_bytes(shape, 30, 180, 320)
    assert e30 - e20 == pytest.approx(e20 - e10, rel=1e-6) and e20 > e10
    kept_fp32 = 10 * 5 * 64 * 180 * 320 * 4  # the five feature lists alone
    assert e10 > kept_fp32
    assert memory.estimate_bytes(shape, 10, 180, 320, 2) < e10


def test_filter_precision_and_tile_arguments(tiny_checkpoint):
    clip = clip_from_array(moving_frames(3, 40, 48, seed=12))
    out = vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, precision="bf16", tile=64)
    assert out.get_frame(0).format.id == vs.RGBS
    with pytest.raises(vs.Error, match="BasicVSRPP: precision must be one of"):
        vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, precision="int8")
    with pytest.raises(vs.Error, match="BasicVSRPP: tile must be an integer >= 16"):
        vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, tile=8)


def test_a_cpu_pass_gives_its_freed_heap_back(monkeypatch, tiny_checkpoint):
    """Issue 26, item 12: resident memory crept up over a long clip (c16n2 x4, 96x64 frames: 1252 MiB
    at frame 200, 1372 MiB at frame 2016) as glibc's heaps kept the passes' freed transients;
    with a trim after every CPU pass it stayed at 1025-1053 MiB (the curve is in docs/memory.md).
    Item 11: a trim where a pass enters its next phase steadies the resident peak of small passes."""
    from vsvsrpp.runtime import engine as engine_module

    calls = []  # the module each trim came before (None: after a pass)
    monkeypatch.setattr(engine_module, "trim_heap", lambda: calls.append(engine._placement.phase))
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu")
    engine(torch.rand(3, 3, 32, 32))
    assert calls[-1] is None and calls.count(None) == 1
    engine(torch.rand(2, 3, 32, 32))
    assert calls[-1] is None and calls.count(None) == 2
    # and where a pass enters another phase: SPyNet, each branch's backbone, the reconstruction
    model = engine.model
    phases = [model.spynet, *(model.backbone[b] for b in ("backward_1", "forward_1", "backward_2", "forward_2")), model.reconstruction]
    assert [c for c in calls if c is not None] == 2 * phases


@pytest.mark.parametrize("family", ["basicvsrpp", "basicvsr", "realbasicvsr", "iconvsr"])
@pytest.mark.parametrize("tiles", [None, pytest.param("blended", marks=pytest.mark.slow), pytest.param("exact", marks=pytest.mark.slow)])
def test_a_pass_keeping_some_frames_reconstructs_only_those_and_equals_the_full_pass(family, tiles):
    """A window's overlap frames lend their features to the propagation but are not
    reconstructed (engine(emit=...)): the kept frames equal the same frames of a full pass."""
    from vsvsrpp import arch

    fam = {a.id: a for a in arch.ARCHITECTURES}[family]
    if tiles == "exact" and fam.describe(fam.random(8, 1)).memory.tile_halo is None:
        pytest.skip("no step-wise tiles in this family")
    torch.manual_seed(0)
    d = fam.describe(fam.random(8, 1))
    kwargs = {} if tiles is None else {"tile": 64, "tile_margin": 8, "exact_tiles": tiles == "exact"}
    engine = Engine(d, "cpu", **kwargs)
    frames = torch.rand(4, 3, 32, 128 if tiles else 32)
    full = engine(frames)
    hr_convs = [m for name, m in d.model.named_modules() if name.endswith("conv_last")]
    assert len(hr_convs) == 1  # the last convolution of every reconstruction
    calls = []
    handle = hr_convs[0].register_forward_hook(lambda *a: calls.append(1))
    try:
        part = engine(frames, emit=slice(1, 3))
    finally:
        handle.remove()
    assert part.shape == (2, *full.shape[1:])
    torch.testing.assert_close(part, full[1:3], rtol=0, atol=0)
    tiles_per_frame = 1 if tiles is None else engine._tile_count(32, 128)
    assert len(calls) == 2 * tiles_per_frame
    with pytest.raises(ValueError, match="non-empty range"):
        engine(frames, emit=slice(3, 3))
