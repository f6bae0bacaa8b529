"""Training sequences from photos: camera geometry, footprint, the build, its manifest and licences."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vsvsrpp.cli import main
from vsvsrpp.tools.train import TrainingSequences
from vsvsrpp.tools.train.photos import DEBIAN_PHOTOS, find_photos
from vsvsrpp.tools.train.sequences import CameraPath, SequenceSpec, build_sequences, random_path, render


def ramp_photo(h, w, ax=0.7, ay=0.2):
    """A linear ramp in photo coordinates (pixel centres at k + 0.5): I = (ax x / w + ay y / h) / 1.0."""
    y = (torch.arange(h, dtype=torch.float64) + 0.5)[:, None]
    x = (torch.arange(w, dtype=torch.float64) + 0.5)[None, :]
    return (ax * x / w + ay * y / h).expand(3, h, w).clone()


def test_rendered_pixels_show_the_photo_where_the_camera_formula_says():
    """On a linear ramp every interpolation is exact, so each output pixel must equal the ramp
    at p = c(t) + R(theta) q / z(t), averaged over the pixel (the ramp's value at its centre)."""
    H = W = 200
    photo = ramp_photo(H, W)
    path = CameraPath((95.3, 102.7), (1.3, -0.6), (0.05, 0.02), 0.02, 0.001, math.radians(1.5))
    h, w, frames = 24, 32, 4
    out = render(photo, path, frames, h, w)
    qy, qx = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5 - h / 2, torch.arange(w, dtype=torch.float64) + 0.5 - w / 2, indexing="ij")
    for t in range(frames):
        cx = 95.3 + 1.3 * t + 0.5 * 0.05 * t * t
        cy = 102.7 - 0.6 * t + 0.5 * 0.02 * t * t
        z = math.exp(0.02 * t + 0.5 * 0.001 * t * t)
        r = math.radians(1.5) * t
        px = cx + (math.cos(r) * qx - math.sin(r) * qy) / z
        py = cy + (math.sin(r) * qx + math.cos(r) * qy) / z
        expected = 0.7 * px / W + 0.2 * py / H
        torch.testing.assert_close(out[t, 0], expected, rtol=0, atol=1e-9)


def test_an_integer_pan_moves_the_frame_by_whole_pixels():
    photo = torch.rand(3, 120, 160, dtype=torch.float64)
    out = render(photo, CameraPath((80.0, 60.0), (2.0, 0.0)), 2, 40, 50)
    torch.testing.assert_close(out[1, :, :, :-2], out[0, :, :, 2:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_random_paths_never_leave_the_photo(seed):
    """A constant photo padded with zeros: any sample near or past the edge would darken a pixel."""
    rng = np.random.default_rng(seed)
    H, W = int(rng.integers(70, 140)), int(rng.integers(70, 140))
    path = random_path(rng, 8, 48, 64, H, W, max_speed=6.0, max_zoom_rate=0.03, max_roll_rate=math.radians(2))
    assert path is not None
    out = render(torch.ones(3, H, W, dtype=torch.float64), path, 8, 48, 64)
    assert (out - 1).abs().max() < 1e-9


def test_a_photo_smaller_than_the_frame_gives_no_path():
    assert random_path(np.random.default_rng(0), 4, 64, 64, 60, 200) is None


def smooth_photo(path, w, h, seed):
    """A smooth random colour field saved as PNG (something to film)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 16 + 2, w // 16 + 2, generator=g)
    img = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)
    Image.fromarray((img * 255).round().byte().permute(1, 2, 0).numpy()).save(path)


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    smooth_photo(folder / "a.png", 200, 150, 1)
    smooth_photo(folder / "b.jpg", 180, 180, 2)
    smooth_photo(folder / "sa.png", 200, 200, 3)
    (folder / "sources.json").write_text(
        json.dumps(
            [
                {"file": "a.png", "author": "Ann", "license": "CC0-1.0", "origin": "made by the test"},
                {"file": "b.jpg", "author": "Bob", "license": "CC-BY-4.0", "origin": "made by the test"},
                {"file": "sa.png", "author": "Sam", "license": "CC-BY-SA-4.0", "origin": "made by the test"},
            ]
        )
    )
    return folder


SPEC = SequenceSpec(sequences=5, frames=4, height=32, width=40, min_downscale=2.0, max_downscale=3.0, seed=7)


def frames_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob("*/*.png"))}


def test_a_build_writes_every_sequence_and_records_every_photo(photo_dir, tmp_path):
    photos = find_photos([photo_dir])
    assert [p.path.name for p in photos] == ["a.png", "b.jpg"]  # share-alike is not accepted by default
    manifest = build_sequences(photos, tmp_path / "out", SPEC)
    names = [s["name"] for s in manifest["sequences"]]
    assert len(names) == 5 and len(set(names)) == 5
    for name in names:
        pngs = sorted((tmp_path / "out" / name).glob("*.png"))
        assert len(pngs) == 4 and all(Image.open(p).size == (40, 32) for p in pngs)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert {(p["file"], p["author"], p["license"]) for p in on_disk["photos"]} == {("a.png", "Ann", "CC0-1.0"), ("b.jpg", "Bob", "CC-BY-4.0")}
    assert all(len(p["sha256"]) == 64 for p in on_disk["photos"])
    # every photo is used, and each sequence's record names a photo of the manifest
    assert {s["photo"] for s in on_disk["sequences"]} == {0, 1}
    # consecutive frames differ (the camera moves) but are close (it moves smoothly)
    seq = torch.stack([torch.from_numpy(np.asarray(Image.open(p), dtype=np.float64)) for p in sorted((tmp_path / "out" / names[0]).glob("*.png"))])
    assert 0 < (seq[1] - seq[0]).abs().mean() < 40


def test_an_interrupted_build_continues_to_the_same_result(photo_dir, tmp_path):
    photos = find_photos([photo_dir])
    build_sequences(photos, tmp_path / "one", SPEC)
    first = frames_of(tmp_path / "one")
    # lose a sequence and leave a half-written hidden folder, as a killed build would
    victim = sorted(p for p in (tmp_path / "one").iterdir() if p.is_dir())[2]
    for p in victim.iterdir():
        p.unlink()
    victim.rmdir()
    (tmp_path / "one" / ".00004_x-partial").mkdir()
    build_sequences(photos, tmp_path / "one", SPEC)
    assert frames_of(tmp_path / "one") == first
    build_sequences(photos, tmp_path / "two", SPEC)
    assert frames_of(tmp_path / "two") == first  # a rebuild is identical
    with pytest.raises(ValueError, match="other settings"):
        build_sequences(photos, tmp_path / "one", SequenceSpec(**{**SPEC.__dict__, "seed": 8}))


def test_photos_of_unknown_source_are_refused(photo_dir):
    smooth_photo(photo_dir / "stray.png", 100, 100, 4)
    with pytest.raises(ValueError, match=r"stray\.png: unknown author and licence; list it in .*sources\.json"):
        find_photos([photo_dir])


def test_licences_are_chosen_explicitly(photo_dir):
    assert [p.path.name for p in find_photos([photo_dir], ["CC-BY-SA-4.0"])] == ["sa.png"]
    with pytest.raises(ValueError, match=r"no photo with an accepted licence \(GPL-2.0\+\).*a\.png \(CC0-1\.0\)"):
        find_photos([photo_dir], ["GPL-2.0+"])


def test_debian_photos_are_known_by_file_name(tmp_path):
    smooth_photo(tmp_path / "seeding_by_Clements_Engelhardt.jpg", 64, 64, 5)
    (photo,) = find_photos([tmp_path])
    assert photo.source is DEBIAN_PHOTOS["seeding_by_Clements_Engelhardt.jpg"] and photo.source.license == "CC0-1.0"


def test_small_photos_are_skipped_and_none_large_enough_is_an_error(tmp_path, caplog):
    smooth_photo(tmp_path / "tiny.png", 50, 50, 6)
    (tmp_path / "sources.json").write_text(json.dumps([{"file": "tiny.png", "author": "T", "license": "CC0-1.0", "origin": "test"}]))
    with pytest.raises(ValueError, match="no photo is large enough for 40x32 frames"):
        build_sequences(find_photos([tmp_path]), tmp_path / "out", SPEC)
    assert "skipping tiny.png" in caplog.text


def test_the_command_builds_sequences_the_trainer_reads(photo_dir, tmp_path, capsys):
    out = tmp_path / "seq"
    code = main(["make-sequences", str(photo_dir), "-o", str(out), "--sequences", "3", "--frames", "5", "--size", "64x64", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 x 5 frames of 64x64" in printed and "1 CC-BY-4.0, 1 CC0-1.0" in printed
    lq, gt = TrainingSequences(out, num_frames=5, patch_size=16, degradation="bi")[0]
    assert lq.shape == (5, 3, 16, 16) and gt.shape == (5, 3, 64, 64)


def test_the_command_refuses_a_bad_size(photo_dir, tmp_path, capsys):
    assert main(["make-sequences", str(photo_dir), "-o", str(tmp_path / "x"), "--size", "64"]) == 2
    assert "expected WIDTHxHEIGHT, got '64'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
