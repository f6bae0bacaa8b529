"""The table of official checkpoints: completeness, consistency and agreement with model_zoo.json."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from vsvsrpp import catalogue
from vsvsrpp.catalogue import DEFAULT_MODEL, MODELS, ModelInfo, get

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
    "realbasicvsr",
]
BASICVSRPP_NAMES = NAMES[:10]


def test_names_and_order():
    assert list(MODELS) == NAMES
    assert all(isinstance(m, ModelInfo) and m.name == k for k, m in MODELS.items())
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
    if m.arch == "basicvsrpp":
        assert re.fullmatch(r"[0-9a-f]{64}", m.sha256 or ""), m.sha256
        assert m.sha256.startswith(prefix.group(1))
    else:  # only the file-name prefix is known: weights.download verifies that
        assert m.sha256 is None
    assert m.scale in (1, 4)
    assert (m.scale == 4) == m.is_low_res_input
    assert m.arch in ("basicvsrpp", "basicvsr", "realbasicvsr")
    assert (m.arch == "realbasicvsr") == (m.num_cleaning_blocks is not None) == (m.refine_threshold is not None)
    if m.arch != "basicvsrpp":
        assert m.scale == 4
        assert f"/restorers/{'real_basicvsr' if m.arch == 'realbasicvsr' else 'basicvsr'}/" in m.url
    assert m.license == "Apache-2.0"
    assert m.mid_channels in (64, 128) and m.num_blocks > 0
    assert m.size is None or m.size > 1_000_000
    assert m.task
    if "github.com/HolyWu/" in m.url:
        assert "HolyWu" in m.origin
    else:
        assert m.url.startswith("https://download.openmmlab.com/") and "OpenMMLab" in m.origin


def test_files_are_distinct():
    assert len({m.file for m in MODELS.values()}) == len(MODELS)
    known = [m.sha256 for m in MODELS.values() if m.sha256 is not None]
    assert len(set(known)) == len(known) == len(BASICVSRPP_NAMES)
    assert len({m.file.rsplit("-", 1)[1] for m in MODELS.values()}) == len(MODELS)


def test_known_configs():
    assert (MODELS["reds4"].mid_channels, MODELS["reds4"].num_blocks) == (64, 7)
    assert (MODELS["ntire-vsr"].mid_channels, MODELS["ntire-vsr"].num_blocks) == (128, 25)
    assert MODELS["denoise"].scale == 1 and not MODELS["denoise"].is_low_res_input
    assert "track2" in MODELS["ntire-decompress-2"].file
    assert "gopro" in MODELS["deblur-gopro"].file and "dvd" in MODELS["deblur-dvd"].file
    for name in ("basicvsr-reds4", "basicvsr-vimeo90k-bi", "basicvsr-vimeo90k-bd"):
        m = MODELS[name]
        assert (m.arch, m.mid_channels, m.num_blocks, m.scale) == ("basicvsr", 64, 30, 4)
    assert "vimeo90k_bd" in MODELS["basicvsr-vimeo90k-bd"].file and "reds4" in MODELS["basicvsr-reds4"].file
    r = MODELS["realbasicvsr"]
    assert (r.arch, r.mid_channels, r.num_propagation_blocks, r.num_cleaning_blocks, r.refine_threshold) == (
        "realbasicvsr", 64, 20, 20, 5)


def test_get():
    assert get("vimeo90k-bd") is MODELS["vimeo90k-bd"]
    with pytest.raises(ValueError) as e:
        get("nope")
    msg = str(e.value)
    assert "'nope'" in msg
    assert "reds4, vimeo90k-bi" in msg and all(n in msg for n in NAMES)


def test_module_does_not_mention_shared_dir():
    assert "/work/shared" not in Path(catalogue.__file__).read_text()


@pytest.mark.skipif(not ZOO.is_file(), reason=f"{ZOO} not available")
def test_matches_model_zoo():
    zoo = [e for e in json.loads(ZOO.read_text())["models"] if "arch" in e]  # SPyNet alone has none
    assert len(zoo) == len(MODELS) == 14
    assert sum(e["arch"] == "basicvsrpp" for e in zoo) == 10
    by_file = {m.file: m for m in MODELS.values()}
    for e in zoo:
        m = by_file.get(e["file"])
        assert m is not None, f"{e['file']} missing from the catalogue"
        assert m.arch == e["arch"]
        assert m.url == e["url"]
        assert m.sha256 == e["sha256"]
        if e["sha256"] is None:
            assert m.file.endswith(f"-{e['sha256_prefix']}.pth")
        assert m.size == e.get("size")
        num_blocks = e["num_propagation_blocks"] if e["arch"] == "realbasicvsr" else e["num_blocks"]
        assert (m.mid_channels, m.num_blocks, m.is_low_res_input, m.scale) == (
            e["mid_channels"],
            num_blocks,
            e.get("is_low_res_input", True),
            e["scale"],
        )
        assert m.num_cleaning_blocks == e.get("num_cleaning_blocks")
        assert m.refine_threshold == e.get("dynamic_refine_thres")
        assert m.task == e["task"]
        if "paper_result" in e:  # entries the zoo leaves open may cite another source
            assert m.paper_result == e["paper_result"]
