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
]


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
    assert re.fullmatch(r"[0-9a-f]{64}", m.sha256 or ""), m.sha256
    assert m.url.startswith("https://")
    assert m.url.endswith("/" + m.file)
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", m.file)
    assert prefix is not None, m.file
    assert m.sha256.startswith(prefix.group(1))
    assert m.scale in (1, 4)
    assert (m.scale == 4) == m.is_low_res_input
    assert m.arch == "basicvsrpp"
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
    assert len({m.sha256 for m in MODELS.values()}) == len(MODELS)


def test_known_configs():
    assert (MODELS["reds4"].mid_channels, MODELS["reds4"].num_blocks) == (64, 7)
    assert (MODELS["ntire-vsr"].mid_channels, MODELS["ntire-vsr"].num_blocks) == (128, 25)
    assert MODELS["denoise"].scale == 1 and not MODELS["denoise"].is_low_res_input
    assert "track2" in MODELS["ntire-decompress-2"].file
    assert "gopro" in MODELS["deblur-gopro"].file and "dvd" in MODELS["deblur-dvd"].file


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
    zoo = [e for e in json.loads(ZOO.read_text())["models"] if e.get("arch") == "basicvsrpp"]
    assert len(zoo) == len(MODELS) == 10
    by_file = {m.file: m for m in MODELS.values()}
    for e in zoo:
        m = by_file.get(e["file"])
        assert m is not None, f"{e['file']} missing from the catalogue"
        assert m.url == e["url"]
        assert m.sha256 == e["sha256"]
        assert m.size == e.get("size")
        assert (m.mid_channels, m.num_blocks, m.is_low_res_input, m.scale) == (
            e["mid_channels"],
            e["num_blocks"],
            e["is_low_res_input"],
            e["scale"],
        )
        assert m.task == e["task"]
        assert m.paper_result == e.get("paper_result")
