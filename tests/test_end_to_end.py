"""End to end: vspipe | ffmpeg with examples/upscale.vpy on a generated and on a real clip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import ffmpeg
import pytest

from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEMO = SHARED / "data" / "basicvsrpp_demo_000"


def vspipe() -> str:
    exe = shutil.which("vspipe", path=str(BIN)) or shutil.which("vspipe")
    if exe is None:
        pytest.fail("vspipe not found: install the vapoursynth wheel into this environment")
    probe = subprocess.run([exe, "--version"], capture_output=True, text=True)
    if probe.returncode != 0 or "vapoursynth config" in probe.stderr + probe.stdout:
        pytest.fail(f"vspipe is not configured for this Python; run `vapoursynth config` ({probe.stderr.strip()})")
    return exe


def count_frames(path: Path) -> tuple[int, int, int]:
    info = ffmpeg.probe(str(path), count_frames=None, select_streams="v:0")["streams"][0]
    return info["width"], info["height"], int(info["nb_read_frames"])


def run_vspipe_into_ffmpeg(src: Path, weights: Path, out: Path) -> bytes:
    cmd = [vspipe(), "-c", "y4m", "-a", f"input={src}", "-a", f"weights={weights}", "-a", "window=3",
           "-a", "overlap=1", "-a", "device=cpu", str(ROOT / "examples" / "upscale.vpy"), "-"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    pipe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    enc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "-", "-c:v", "ffv1", str(out)],
                         stdin=pipe.stdout, capture_output=True)
    pipe.stdout.close()
    err = pipe.stderr.read()
    assert pipe.wait() == 0, err.decode(errors="replace")
    assert enc.returncode == 0, enc.stderr.decode(errors="replace")
    return err


@pytest.mark.slow
def test_vspipe_generated_clip(tmp_path, tiny_checkpoint):
    src = tmp_path / "gen.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=72x56:rate=25", "-frames:v", "7",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "12", str(src)], check=True)
    out = tmp_path / "out.mkv"
    run_vspipe_into_ffmpeg(src, tiny_checkpoint, out)
    assert count_frames(out) == (288, 224, 7)


@pytest.mark.slow
@pytest.mark.skipif(not DEMO.is_dir(), reason=f"demo frames not found at {DEMO}")
def test_vspipe_real_demo_clip(tmp_path, tiny_checkpoint):
    src = tmp_path / "demo.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-framerate", "25", "-i", str(DEMO / "%08d.png"), "-frames:v", "5",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "12", str(src)], check=True)
    out = tmp_path / "out.mkv"
    run_vspipe_into_ffmpeg(src, tiny_checkpoint, out)
    assert count_frames(out) == (1280, 720, 5)


def color_tags(path: Path) -> dict:
    info = ffmpeg.probe(str(path), select_streams="v:0")["streams"][0]
    return {k: info.get(k) for k in ("color_space", "color_range", "color_primaries", "color_transfer", "chroma_location")}


@pytest.mark.slow
def test_vspipe_route_is_tagged_like_the_command_line(tmp_path, tiny_checkpoint):
    """The README's vspipe line, with `vsvsrpp ffmpeg-tags`, tags the output as `vsvsrpp upscale` does
    (a BT.601 source: untagged, players would take HD as BT.709)."""
    src = tmp_path / "bt601.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=72x56:rate=25", "-frames:v", "4",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "12", "-colorspace", "smpte170m",
                    "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-color_range", "tv", str(src)], check=True)
    vsvsrpp = str(BIN / "vsvsrpp")
    flags = subprocess.run([vsvsrpp, "ffmpeg-tags", str(src)], capture_output=True, text=True, check=True).stdout.split()
    assert flags[:2] == ["-colorspace", "smpte170m"] and "-color_primaries" in flags
    piped = tmp_path / "piped.mkv"
    cmd = [vspipe(), "-c", "y4m", "-a", f"input={src}", "-a", f"weights={tiny_checkpoint}", "-a", "device=cpu",
           str(ROOT / "examples" / "upscale.vpy"), "-"]
    pipe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    enc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "-", *flags, "-c:v", "libx264", "-crf", "18", str(piped)],
                         stdin=pipe.stdout, capture_output=True)
    pipe.stdout.close()
    assert pipe.wait() == 0 and enc.returncode == 0, pipe.stderr.read().decode(errors="replace") + enc.stderr.decode(errors="replace")
    direct = tmp_path / "direct.mkv"
    subprocess.run([vsvsrpp, "upscale", str(src), str(direct), "--weights", str(tiny_checkpoint), "--device", "cpu",
                    "--no-progress", "--preset", "ultrafast"], check=True, capture_output=True)
    expected = {"color_space": "smpte170m", "color_range": "tv", "color_primaries": "smpte170m", "color_transfer": "smpte170m",
                "chroma_location": "left"}
    assert color_tags(piped) == color_tags(direct) == expected


def test_vspipe_error_is_one_message(tmp_path):
    src = tmp_path / "gen.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=72x56:rate=25", "-frames:v", "2",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", str(src)], check=True)
    proc = subprocess.run([vspipe(), "-c", "y4m", "-a", f"input={src}", "-a", "model=no-such-model",
                           str(ROOT / "examples" / "upscale.vpy"), "-"], capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("Information:")]
    assert lines[0].startswith("upscale.vpy: vsvsrpp: unknown model 'no-such-model'")
    assert "Traceback" not in proc.stderr and sum("no-such-model" in line for line in lines) == 1
