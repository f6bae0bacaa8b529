"""IconVSR: parity with BasicSR's IconVSR (shipped vectors, ``tests/iconvsr_cases.py``), both
checkpoint layouts, detection, keyframes, any size and length, and every entry point (filter,
``upscale``, ``eval``, ``bench``)."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, clip_to_array, moving_frames
from conftest import make_checkpoint, save_official
from iconvsr_cases import CASES, VECTORS, Case, fingerprint, frames, iconvsr_to_basicsr, random_weights, sampled
from vsvsrpp import arch, cli
from vsvsrpp.arch import CheckpointError
from vsvsrpp.arch.basicvsr import BasicVSR, BasicVSRConfig
from vsvsrpp.arch.iconvsr import IconVSR, IconVSRConfig, keyframes, pad_iconvsr, refill_frames
from vsvsrpp.hub import registry
from vsvsrpp.hub.checkpoint import load_descriptor, read_state_dict
from vsvsrpp.runtime.engine import Engine

ICONVSR = arch.get("iconvsr")


def reference_weights(case: Case) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The case's seeded weights in BasicSR's names (as the vectors were made) and the same
    tensors under the official (OpenMMLab) names."""
    official_keys = IconVSR(IconVSRConfig(case.mid_channels, case.num_blocks, case.padding)).state_dict()
    names = iconvsr_to_basicsr({k: k for k in official_keys})  # BasicSR name -> official name
    basicsr = random_weights({k: tuple(official_keys[v].shape) for k, v in names.items()}, case.seed)
    return basicsr, {names[k]: v for k, v in basicsr.items()}


@pytest.fixture(scope="module")
def vectors():
    return torch.load(VECTORS, weights_only=True)


@pytest.fixture(scope="module")
def iconvsr_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_iconvsr.pth", IconVSRConfig(8, 1))


# --- parity with the reference ------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c.n > 1 else c for c in CASES], ids=lambda c: c.name
)  # (the two-sequence case takes about 3-4 s here; the others are its fast siblings)
def test_parity_with_basicsr_iconvsr(case, vectors):
    ref = vectors["cases"][case.name]
    basicsr, _ = reference_weights(case)
    assert sorted(basicsr) == ref["keys"], "BasicSR's key names differ from the hand-written mapping"
    assert torch.allclose(fingerprint(basicsr), ref["fingerprint"], rtol=1e-9, atol=1e-9), (
        "the seeded weights differ from the vectors' (torch's random stream changed?): "
        "remake them with scripts/make_iconvsr_vectors.py"
    )
    found = arch.identify(basicsr)
    assert found.architecture is ICONVSR and found.layout == "BasicSR"
    d = arch.load(basicsr)  # strict
    assert d.config == IconVSRConfig(case.mid_channels, case.num_blocks, case.padding)
    d.model.config = dataclasses.replace(d.config, keyframe_stride=case.keyframe_stride)  # not in checkpoints
    with torch.inference_mode():
        out = d.model(frames(case))
    assert out.shape == (case.n, case.t, 3, 4 * case.h, 4 * case.w)
    err = (sampled(out) - ref["out"]).abs().max().item()
    assert err <= 1e-5, f"max-abs error {err:.3g} against BasicSR's IconVSR"


def test_the_vectors_cover_what_they_claim():
    assert any(c.t > c.keyframe_stride for c in CASES)  # more frames than one keyframe stride
    assert any(c.h % 4 or c.w % 4 for c in CASES) and any(c.n > 1 for c in CASES)
    assert {c.padding for c in CASES} == {2, 3}  # the REDS (5 frames) and Vimeo-90K (7 frames) EDVR-M
    assert VECTORS.stat().st_size < 1 << 20


# --- layouts, detection, strict loading ---------------------------------------------------------


def test_both_layouts_load_strictly_to_the_same_network(tmp_path):
    case = Case("layouts", 8, 2, 2, 5, 1, 6, 64, 68, seed=11)
    basicsr, official = reference_weights(case)
    assert set(basicsr) != set(official)
    torch.save({"params": basicsr}, tmp_path / "basicsr.pth")  # BasicSR's file: {"params": ...}
    save_official(tmp_path / "official.pth", _module(official))
    a, b = load_descriptor(tmp_path / "basicsr.pth"), load_descriptor(tmp_path / "official.pth")
    assert a.architecture is b.architecture is ICONVSR
    assert a.config == b.config == IconVSRConfig(8, 2, 2)
    assert arch.identify(basicsr).layout == "BasicSR" and arch.identify(official).layout == arch.OFFICIAL_LAYOUT
    lq = frames(case)
    with torch.inference_mode():
        assert torch.equal(a.model(lq), b.model(lq))
    # the renaming rules give back exactly the official names, both ways
    assert arch.identify(basicsr).state_dict.keys() == official.keys()
    assert iconvsr_to_basicsr(official).keys() == basicsr.keys()


def _module(sd: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A module whose state dict is ``sd`` (for :func:`conftest.save_official`)."""
    m = ICONVSR.build(arch.identify(sd).architecture.read_config(sd))
    m.load_state_dict(sd, strict=True)
    return m


def test_official_module_names_and_size():
    """OpenMMLab's names (mmagic ``IconVSRNet`` / ``EDVRFeatureExtractor``, ``ConvModule`` s as
    ``.conv``) and the paper's size: 8.7 M parameters."""
    model = IconVSR(IconVSRConfig())
    keys = model.state_dict().keys()
    for key in (
        "edvr.conv_first.weight", "edvr.feature_extraction.4.conv2.bias", "edvr.feat_l2_conv1.conv.weight",
        "edvr.feat_l3_conv2.conv.bias", "edvr.pcd_alignment.offset_conv1.l3.conv.weight",
        "edvr.pcd_alignment.offset_conv3.l1.conv.weight", "edvr.pcd_alignment.dcn_pack.l2.conv_offset.weight",
        "edvr.pcd_alignment.dcn_pack.l1.weight", "edvr.pcd_alignment.feat_conv.l1.conv.weight",
        "edvr.pcd_alignment.cas_dcnpack.bias", "edvr.fusion.temporal_attn1.weight", "edvr.fusion.feat_fusion.conv.weight",
        "edvr.fusion.spatial_attn5.weight", "edvr.fusion.spatial_attn_add2.bias", "edvr.fusion.spatial_attn_l3.conv.weight",
        "backward_fusion.weight", "forward_fusion.bias", "backward_resblocks.main.2.29.conv2.weight",
        "forward_resblocks.main.0.weight", "upsample1.upsample_conv.weight", "upsample2.upsample_conv.bias",
        "conv_hr.weight", "conv_last.bias", "spynet.basic_module.5.basic_module.4.conv.weight", "spynet.mean",
    ):  # fmt: skip
        assert key in keys, key
    assert "edvr.pcd_alignment.offset_conv3.l3.conv.weight" not in keys and "edvr.pcd_alignment.feat_conv.l3.conv.weight" not in keys
    assert model.state_dict()["forward_resblocks.main.0.weight"].shape == (64, 131, 3, 3)
    assert model.state_dict()["edvr.pcd_alignment.dcn_pack.l1.conv_offset.weight"].shape == (216, 64, 3, 3)
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 1) == 8.7, params
    vimeo = IconVSR(IconVSRConfig(padding=3)).state_dict()["edvr.fusion.feat_fusion.conv.weight"]
    assert vimeo.shape == (64, 7 * 64, 1, 1)


@pytest.mark.parametrize(
    "config", [IconVSRConfig(8, 1), IconVSRConfig(16, 3, 3), IconVSRConfig(8, 2, 2, extraction_blocks=2, deform_groups=4)]
)
def test_detection_reads_the_size_from_the_keys(config, tmp_path):
    model = IconVSR(config)
    save_official(tmp_path / "mm.pth", model)
    for sd in (read_state_dict(tmp_path / "mm.pth"), model.state_dict(), iconvsr_to_basicsr(model.state_dict())):
        assert arch.detect(sd) is ICONVSR
        assert arch.load(sd).config == config


def test_basicvsr_is_not_taken_for_iconvsr_nor_the_reverse():
    basicvsr = BasicVSR(BasicVSRConfig(8, 1)).state_dict()
    assert arch.detect(basicvsr).id == "basicvsr"
    iconvsr = IconVSR(IconVSRConfig(8, 1)).state_dict()
    assert arch.detect(iconvsr).id == "iconvsr" and arch.detect(iconvsr_to_basicsr(iconvsr)).id == "iconvsr"


def test_damaged_state_dicts_name_the_key():
    sd = IconVSR(IconVSRConfig(8, 1)).state_dict()
    missing = {k: v for k, v in sd.items() if not k.startswith("edvr.fusion.")}
    with pytest.raises(CheckpointError, match=r"not an IconVSR state dict: missing edvr\.fusion\.feat_fusion"):
        arch.load(missing)
    bad = dict(sd)
    bad["edvr.fusion.feat_fusion.conv.weight"] = torch.zeros(8, 12, 1, 1)  # not (2p + 1) x 8 inputs
    with pytest.raises(CheckpointError, match="feat_fusion.conv.weight") as e:
        arch.load(bad)
    assert "\n" not in str(e.value)
    extra = dict(sd)
    extra["edvr.reconstruction.0.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    with pytest.raises(CheckpointError, match="edvr.reconstruction"):
        arch.load(extra)


# --- keyframes, windows, sizes ------------------------------------------------------------------


def test_keyframes_follow_the_reference():
    assert keyframes(7, 5) == [0, 5, 6] and keyframes(5, 5) == [0, 4] and keyframes(11, 5) == [0, 5, 10]
    assert keyframes(1, 5) == [0] and keyframes(8, 3) == [0, 3, 6, 7]
    # the reference pads the sequence with frames [4, 3] in front and [-4, -5] at the end (padding 2)
    assert refill_frames(7, 2, 0) == [4, 3, 0, 1, 2] and refill_frames(7, 2, 6) == [4, 5, 6, 3, 2]
    assert refill_frames(7, 2, 5) == [3, 4, 5, 6, 3]
    # padding 3: [6, 5, 4] in front, [-5, -6, -7] at the end
    assert refill_frames(9, 3, 0) == [6, 5, 4, 0, 1, 2, 3] and refill_frames(9, 3, 8) == [5, 6, 7, 8, 4, 3, 2]
    # shorter than the reference takes: clamped to the pass
    assert refill_frames(3, 2, 0) == [2, 2, 0, 1, 2] and refill_frames(1, 2, 0) == [0] * 5


def test_a_frames_output_depends_on_its_window():
    torch.manual_seed(2)
    model = IconVSR(IconVSRConfig(8, 1)).eval()
    lq = torch.rand(1, 7, 3, 64, 64)
    with torch.inference_mode():
        whole, again, shifted = model(lq[:, :6]), model(lq[:, :6]), model(lq[:, 1:7])
    assert torch.equal(whole, again)  # deterministic for a given window
    # frame 5 is a keyframe of the first window (frames 0 and 5) and not of the second (frames 1 and 6)
    assert (whole[:, 5] - shifted[:, 4]).abs().max() > 1e-4


@pytest.mark.parametrize("t, h, w", [(1, 64, 64), (2, 17, 33), (3, 70, 30), (4, 1, 1), (6, 66, 67)])
def test_any_size_and_length(t, h, w):
    torch.manual_seed(4)
    model = IconVSR(IconVSRConfig(8, 1)).eval()
    lq = torch.rand(1, t, 3, h, w)
    with torch.inference_mode():
        out = model(lq)
    assert out.shape == (1, t, 3, 4 * h, 4 * w) and torch.isfinite(out).all()


def test_padding_replicates_below_64_then_reflects_to_multiples_of_4():
    lq = torch.arange(2 * 3 * 66 * 30, dtype=torch.float32).view(1, 2, 3, 66, 30)
    padded = pad_iconvsr(lq)
    assert padded.shape == (1, 2, 3, 68, 64)
    assert torch.equal(padded[..., :66, :30], lq)
    assert torch.equal(padded[..., :66, 30:], lq[..., 29:30].expand(-1, -1, -1, -1, 34))  # edge replication to 64
    assert torch.equal(padded[..., 66, :30], lq[..., 64, :]) and torch.equal(padded[..., 67, :30], lq[..., 63, :])  # reflection
    assert pad_iconvsr(padded) is padded
    model = IconVSR(IconVSRConfig(8, 1)).eval()
    with pytest.raises(ValueError, match="IconVSR expects"):
        model(torch.rand(2, 3, 64, 64))
    flows = model.compute_flows(torch.rand(1, 2, 3, 64, 64))
    with pytest.raises(ValueError, match="precomputed flows need frames that meet"):
        model(torch.rand(1, 2, 3, 64, 62), flows=flows)


def test_fast_path_matches_exact(iconvsr_checkpoint):
    d = load_descriptor(iconvsr_checkpoint)
    frames_ = torch.rand(6, 3, 64, 72, generator=torch.Generator().manual_seed(5))
    exact = Engine(d, "cpu", fast=False)(frames_)
    fast = Engine(load_descriptor(iconvsr_checkpoint), "cpu")(frames_)
    assert (fast - exact).abs().max().item() <= 1e-4


# --- entry points -------------------------------------------------------------------------------


def test_filter_equals_windowed_engine(iconvsr_checkpoint):
    frames_ = moving_frames(5, 20, 28, seed=5)
    out = clip_to_array(vsvsrpp.IconVSR(clip_from_array(frames_), weights=iconvsr_checkpoint, window=3, overlap=1))
    ref = Engine(load_descriptor(iconvsr_checkpoint), "cpu").process_sequence(torch.from_numpy(frames_), 3, 1).numpy()
    np.testing.assert_array_equal(out, ref)
    assert vsvsrpp.IconVSR.__name__ == "IconVSR" and "IconVSR" in vsvsrpp.IconVSR.__doc__
    assert "EDVR-M" in vsvsrpp.IconVSR.__doc__ and "'iconvsr-reds4'" in vsvsrpp.IconVSR.__doc__


def test_a_window_covering_the_clip_equals_one_pass(iconvsr_checkpoint):
    frames_ = moving_frames(6, 24, 20, seed=6)
    out = clip_to_array(vsvsrpp.IconVSR(clip_from_array(frames_), weights=iconvsr_checkpoint, window=6, overlap=0))
    model = load_descriptor(iconvsr_checkpoint).model
    with torch.inference_mode():
        ref = model(torch.from_numpy(frames_)[None]).clamp(0, 1)[0].numpy()
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def test_family_mismatch_points_to_the_right_filter(iconvsr_checkpoint, tiny_checkpoint):
    clip = clip_from_array(moving_frames(2, 16, 16))
    with pytest.raises(vs.Error, match=r"^BasicVSR: tiny_iconvsr.pth holds an IconVSR network; use vsvsrpp\.IconVSR\(clip"):
        vsvsrpp.BasicVSR(clip, weights=iconvsr_checkpoint)
    with pytest.raises(vs.Error, match=r"^IconVSR: tiny_x4.pth holds a BasicVSR\+\+ network; use vsvsrpp\.BasicVSRPP"):
        vsvsrpp.IconVSR(clip, weights=tiny_checkpoint)


def test_independent_tiles_run_with_whole_frame_flows(iconvsr_checkpoint):
    d = load_descriptor(iconvsr_checkpoint)
    assert d.memory.tile_halo is None  # no step-wise tiles: the planner takes independent ones
    engine = Engine(d, "cpu", tile=64, tile_margin=8)
    assert not engine.exact_tiles
    x = torch.rand(3, 3, 64, 150, generator=torch.Generator().manual_seed(1))
    tiled, whole = engine(x), Engine(d, "cpu")(x)
    assert tiled.shape == whole.shape == (3, 3, 256, 600)
    assert (tiled - whole).abs().mean().item() < 0.02


def test_registry_model_offline_is_one_line_naming_the_url_and_the_place(no_download, tmp_path, capsys):
    src = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "3",
                    "-pix_fmt", "yuv420p", str(src)], check=True)  # fmt: skip
    code = cli.main(["upscale", str(src), str(tmp_path / "out.mkv"), "--model", "iconvsr-reds4", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    info = registry.get("iconvsr-reds4")
    assert code == 1 and "could not download the 'iconvsr-reds4' checkpoint" in err
    assert info.file in err and str(no_download / info.file) in err and "9e09d621" in err
    # placed by hand, the file is used as it is
    no_download.mkdir(parents=True, exist_ok=True)
    save_official(no_download / info.file, IconVSR(IconVSRConfig(8, 1)))
    assert cli.main(["upscale", str(src), str(tmp_path / "out.mkv"), "--model", "iconvsr-reds4", "--device", "cpu"]) == 0
    assert (tmp_path / "out.mkv").stat().st_size > 0


def test_registry_entries():
    entries = [m for m in registry.MODELS.values() if m.family == "iconvsr"]
    assert [m.name for m in entries] == ["iconvsr-reds4", "iconvsr-vimeo90k-bi", "iconvsr-vimeo90k-bd"]
    assert all(m.url == "https://download.openmmlab.com/mmediting/restorers/iconvsr/" + m.file for m in entries)
    assert all(m.sha256 is None and m.license == "Apache-2.0" and m.paper_result for m in entries)
    assert registry.default_for("iconvsr") == "iconvsr-reds4"


def test_eval_and_bench_take_it(iconvsr_checkpoint, tmp_path, capsys):
    from PIL import Image

    clip = tmp_path / "gt" / "clip"
    clip.mkdir(parents=True)
    for i, f in enumerate(moving_frames(3, 32, 48, seed=3)):
        Image.fromarray((f.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(clip / f"{i:03d}.png")
    argv = ["eval", str(tmp_path / "gt"), "--weights", str(iconvsr_checkpoint), "--window", "3", "--overlap", "0",
            "--device", "cpu", "--no-progress", "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert "clip" in json.dumps(result)
    from vsvsrpp.tools import bench

    network = bench.select_network(bench.BenchOptions(sizes=[(64, 64)], frames=2, device="cpu", arch="iconvsr", mid_channels=8, num_blocks=1, model_only=True), tmp_path)
    assert network.name == "IconVSR c8n1p2 x4, random weights" and network.architecture is ICONVSR


@pytest.mark.parametrize("precision, tile, offload", [("fp16", None, False), ("bf16", 64, True), ("fp32", None, True)])
def test_a_cuda_pass_keeps_devices_and_dtypes(monkeypatch, iconvsr_checkpoint, precision, tile, offload):
    """On fake CUDA tensors (tests/test_fake_cuda.py's harness): the pass raises on a device
    mismatch, a dtype clash or a value read back to the host; SPyNet's flows and the PCD
    alignment's offsets stay float32 in reduced precision."""
    from test_fake_cuda import FakeCuda

    from vsvsrpp.arch import iconvsr

    fake = FakeCuda(monkeypatch)
    offsets: list[torch.dtype] = []
    real = iconvsr.modulated_deform_conv3x3

    def spy(x, offset, mask, weight, bias, *args):
        offsets.append(offset.dtype)
        return real(x, offset, mask, weight, bias, *args)

    monkeypatch.setattr(iconvsr, "modulated_deform_conv3x3", spy)
    descriptor = load_descriptor(iconvsr_checkpoint)
    with fake.mode:
        engine = Engine(descriptor, "cuda", precision, tile=tile, offload=offload)
        flows: list[torch.dtype] = []
        engine.model.spynet.register_forward_hook(lambda m, a, out: flows.append(out.dtype))
        out = engine(torch.rand(6, 3, 64, 96))
        assert (out.device.type, out.dtype, tuple(out.shape)) == ("cpu", torch.float32, (6, 3, 256, 384))
    assert flows and set(flows) == {torch.float32}
    assert offsets and set(offsets) == {torch.float32}


def test_the_memory_plan_takes_it(iconvsr_checkpoint):
    from vsvsrpp.plugin import entry

    clip = clip_from_array(moving_frames(4, 36, 40, seed=2))
    plan = entry.plan(clip, weights=iconvsr_checkpoint, device="cpu")
    assert plan["window"] >= 1 and plan["tile"] is None and plan["exact_tiles"] is False
