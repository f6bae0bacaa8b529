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
