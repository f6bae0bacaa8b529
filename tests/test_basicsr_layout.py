"""BasicSR's checkpoint layout (BasicVSR and BasicVSR++ as BasicSR names their modules): detected
with no config, renamed to the official names, and loaded to the same network and output as the
OpenMMLab (mmediting) layout."""

from __future__ import annotations

import pytest
import torch

from conftest import to_basicsr
from vsvsrpp import arch
from vsvsrpp.arch import CheckpointError
from vsvsrpp.arch.basicvsr import BasicVSRConfig
from vsvsrpp.arch.basicvsrpp import BasicVSRPPConfig
from vsvsrpp.hub.checkpoint import load_descriptor


FAMILIES = {
    "basicvsr": BasicVSRConfig(8, 2),
    "basicvsrpp-x4": BasicVSRPPConfig(8, 1, True),
    "basicvsrpp-x1": BasicVSRPPConfig(8, 1, False),
}


def _random(config) -> torch.nn.Module:
    family = next(a for a in arch.ARCHITECTURES if type(a.make_config(8, 1)) is type(config))
    torch.manual_seed(3)
    model = family.build(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "spynet" not in name:
                p.mul_(0.2)
            else:  # a SPyNet that moves things, so that a convolution loaded in the wrong place shows
                p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_basicsr_checkpoint_loads_to_the_same_network_as_the_official_layout(tmp_path, name):
    config = FAMILIES[name]
    model = _random(config)
    official = model.state_dict()
    basicsr = to_basicsr(official)
    assert set(basicsr) != set(official)  # the layouts differ for this family
    torch.save({"params": basicsr}, tmp_path / "basicsr.pth")  # BasicSR's file: {"params": ...}
    torch.save({"state_dict": {"generator." + k: v for k, v in official.items()}}, tmp_path / "official.pth")

    a = load_descriptor(tmp_path / "basicsr.pth")
    b = load_descriptor(tmp_path / "official.pth")
    assert a.architecture is b.architecture is arch.detect(basicsr)
    assert a.config == b.config == config
    assert arch.identify(basicsr).layout == "BasicSR" and arch.identify(official).layout == arch.OFFICIAL_LAYOUT
    lq = torch.rand(1, 3, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out_a, out_b = a.model(lq), b.model(lq)
    assert out_a.shape == (1, 3, 3, 48 * config.scale, 64 * config.scale)
    assert torch.equal(out_a, out_b)


def test_a_misplaced_spynet_convolution_changes_the_output(tmp_path):
    """The equality above can fail: one SPyNet convolution swapped between two pyramid levels
    (same shapes, so it loads) gives another output."""
    model = _random(FAMILIES["basicvsr"])
    basicsr = to_basicsr(model.state_dict())
    swapped = dict(basicsr)
    for kind in ("weight", "bias"):
        a, b = f"spynet.basic_module.0.basic_module.4.{kind}", f"spynet.basic_module.1.basic_module.4.{kind}"
        swapped[a], swapped[b] = basicsr[b], basicsr[a]
    lq = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        good = arch.load(basicsr).model(lq)
        bad = arch.load(swapped).model(lq)
    assert not torch.equal(good, bad)


def test_a_state_dict_of_no_known_layout_names_what_it_found():
    sd = {"encoder.0.weight": torch.zeros(4, 3, 3, 3), "encoder.0.bias": torch.zeros(4), "head.weight": torch.zeros(3, 4, 1, 1)}
    with pytest.raises(CheckpointError) as e:
        arch.load(sd)
    message = str(e.value)
    assert "3 keys in 2 modules: encoder (2), head (1)" in message
    assert "OpenMMLab or BasicSR" in message and "\n" not in message


def test_a_state_dict_mixing_both_layouts_is_refused():
    official = _random(FAMILIES["basicvsr"]).state_dict()
    mixed = dict(official)
    mixed["upconv1.weight"] = official["upsample1.upsample_conv.weight"]
    mixed["upconv1.bias"] = official["upsample1.upsample_conv.bias"]
    with pytest.raises(CheckpointError, match="mixes two layouts"):
        arch.load(mixed)
