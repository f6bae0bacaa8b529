"""The BasicVSR++ network: reference parity, official layouts, detection, padding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import PARITY, make_checkpoint
from vsvsrpp import arch
from vsvsrpp.arch import CheckpointError, SizeRequirements
from vsvsrpp.arch.basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig
from vsvsrpp.arch.blocks import flow_warp
from vsvsrpp.hub.checkpoint import load_model, read_state_dict


def build_model(sd):
    return arch.load(sd).model


def detect_config(sd):
    return arch.detect(sd).read_config(sd)

SHAPES = PARITY / "basicvsrpp_state_dict_shapes.json"


@pytest.mark.parametrize("name", ["basicvsrpp_c16n2_x4", "basicvsrpp_c16n2_x1"])
def test_parity_with_reference(name):
    if not (PARITY / f"{name}.npz").exists():
        pytest.skip(f"parity vectors not found in {PARITY} (set VSVSRPP_PARITY_DIR)")
    data = np.load(PARITY / f"{name}.npz")
    model = load_model(PARITY / f"{name}.pth")
    assert model.config == BasicVSRPPConfig(**json.loads(str(data["config"])))
    with torch.inference_mode():
        out = model(torch.from_numpy(data["lq"])).numpy()
    assert out.shape == data["out"].shape
    err = np.abs(out - data["out"]).max()
    assert err <= 5e-5, f"max-abs error {err:.3g}"


def official_layouts():
    if not SHAPES.exists():
        pytest.skip(f"{SHAPES} not found")
    return json.loads(SHAPES.read_text())


@pytest.mark.parametrize("config_name", ["c64n7_x4", "c128n25_x4", "c128n25_x1", "c64n15_x1"])
def test_official_layouts_load_strictly_with_detected_config(config_name, tmp_path):
    layout = official_layouts()[config_name]
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(shape, generator=g) * 0.01 for k, shape in layout["keys"].items()}
    path = tmp_path / "official.pth"
    torch.save({"meta": {}, "state_dict": sd}, path)
    model = load_model(path)  # strict load inside
    expected = layout["config"]
    assert (model.config.mid_channels, model.config.num_blocks, model.config.is_low_res_input) == (
        expected["mid_channels"], expected["num_blocks"], expected["is_low_res_input"])
    assert model.scale == (4 if expected["is_low_res_input"] else 1)
    assert sum(p.numel() for p in model.parameters()) == layout["num_params"]
    ours = {f"generator.{k}": list(v.shape) for k, v in model.state_dict().items()}
    assert ours == layout["keys"]


@pytest.mark.parametrize("config", [BasicVSRPPConfig(8, 3, True), BasicVSRPPConfig(24, 1, False)])
def test_detection_round_trip_bare_and_prefixed(config, tmp_path):
    model = BasicVSRPlusPlus(config)
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    prefixed = make_checkpoint(tmp_path / "mm.pth", config)
    for path in (bare, prefixed):
        assert detect_config(read_state_dict(path)) == config


def test_checkpoint_that_needs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("import os; os.environ['VSVSRPP_PWNED'] = '1'",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Evil()}, path)
    with pytest.raises(CheckpointError, match="weights-only"):
        read_state_dict(path)
    import os

    assert "VSVSRPP_PWNED" not in os.environ


def test_wrong_shapes_and_foreign_state_dicts_raise(tmp_path):
    sd = BasicVSRPlusPlus(BasicVSRPPConfig(8, 1)).state_dict()
    sd["conv_last.weight"] = torch.zeros(3, 64, 5, 5)
    with pytest.raises(CheckpointError, match="conv_last.weight"):
        build_model(sd)
    with pytest.raises(CheckpointError, match="not a BasicVSR\\+\\+ state dict"):
        detect_config({"conv.weight": torch.zeros(1)})
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        load_model(tmp_path / "nothing.pth")
    with pytest.raises(ValueError, match="unknown model 'nothing'.*reds4"):
        load_model("nothing")
    with pytest.raises(TypeError, match="got 123"):
        load_model(123)


@pytest.mark.parametrize("h, w", [(1, 1), (17, 33), (63, 64), (64, 65), (70, 30)])
def test_any_size_x4(tiny_checkpoint, h, w):
    model = load_model(tiny_checkpoint)
    lq = torch.rand(1, 3, 3, h, w)
    with torch.inference_mode():
        out = model(lq)
    assert out.shape == (1, 3, 3, 4 * h, 4 * w) and torch.isfinite(out).all()


@pytest.mark.parametrize("h, w", [(30, 45), (255, 258)])
def test_any_size_x1(tiny_checkpoint_x1, h, w):
    model = load_model(tiny_checkpoint_x1)
    with torch.inference_mode():
        out = model(torch.rand(1, 2, 3, h, w))
    assert out.shape == (1, 2, 3, h, w) and torch.isfinite(out).all()


def test_padding_is_replicate_and_cropped(tiny_checkpoint):
    """A frame that already meets the requirements is unchanged by the padding path."""
    model = load_model(tiny_checkpoint)
    lq = torch.rand(1, 3, 3, 64, 70)
    with torch.inference_mode():
        a = model(lq)
        b = model.forward_core(lq)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_size_requirements():
    assert SizeRequirements(64, 1).padded(10, 100) == (64, 100)
    assert SizeRequirements(256, 4).padded(257, 300) == (260, 300)


def test_flow_warp_integer_shift_and_zero_padding():
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    flow = torch.zeros(1, 2, 5, 6)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = flow_warp(x, flow)
    torch.testing.assert_close(out[..., :-1], x[..., 1:])
    assert (out[..., -1] == 0).all()
    flow[:, 0], flow[:, 1] = 0.0, -1.0  # one pixel up
    out = flow_warp(x, flow)
    torch.testing.assert_close(out[..., 1:, :], x[..., :-1, :])
    with pytest.raises(ValueError, match="does not match"):
        flow_warp(x, torch.zeros(1, 2, 4, 6))
