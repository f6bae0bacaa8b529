#!/usr/bin/env python3
"""CPU benchmark: BasicVSR++ model-only vs end-to-end through vspipe, on the same clip.

Model-only: one ``load_model(...)`` forward over ``--frames`` frames of ``--height x --width``
(float32). End-to-end: ``vspipe -c y4m`` of a script that builds the same clip, runs
``vsvsrpp.BasicVSRPP`` with one window covering it and converts to YUV420P8, output to
/dev/null; the script's start-up (imports, model load, measured with ``vspipe --info``) is
subtracted. Frames are the real demo frames from ../shared when present, else a synthetic pan.
Weights are random at the official c64n7 shape unless ``--weights`` is given (speed does not
depend on the values). Prints a table; timings are wall-clock.

    python scripts/bench_cpu.py [--frames 10] [--height 180 --width 320] [--weights PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import vsvsrpp
from vsvsrpp.basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig

DEMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "basicvsrpp_demo_000"

VPY = """
import numpy as np, vapoursynth as vs, vsvsrpp
core = vs.core
arr = np.load({npy!r})
t, _, h, w = arr.shape
blank = core.std.BlankClip(format=vs.RGBS, width=w, height=h, length=t, keep=True)
def fill(n, f):
    out = f.copy()
    for p in range(3):
        np.copyto(np.asarray(out[p]), arr[n, p])
    return out
clip = core.std.ModifyFrame(blank, blank, fill)
clip = vsvsrpp.BasicVSRPP(clip, weights={weights!r}, device="cpu", window=t, overlap=0)
core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s="709").set_output()
"""


def load_frames(t: int, h: int, w: int) -> tuple[np.ndarray, str]:
    files = sorted(DEMO.glob("*.png"))[:t]
    if len(files) == t:
        from PIL import Image

        frames = [np.asarray(Image.open(f).convert("RGB").resize((w, h)), dtype=np.float32) / 255 for f in files]
        return np.stack(frames).transpose(0, 3, 1, 2).copy(), f"demo frames ({DEMO.name})"
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, h // 4, w // 4 + t, generator=g), scale_factor=4, mode="bicubic")
    frames = torch.stack([base[0, :, :h, i * 2 : i * 2 + w] for i in range(t)]).clamp(0, 1)
    return frames.numpy(), "synthetic pan"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--weights", type=Path, help="checkpoint (default: random c64n7 x4 weights)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vsvsrpp-bench-"))
    try:
        weights = args.weights
        if weights is None:
            torch.manual_seed(0)
            weights = tmp / "c64n7.pth"
            model = BasicVSRPlusPlus(BasicVSRPPConfig(64, 7, True))
            torch.save({"state_dict": {f"generator.{k}": v for k, v in model.state_dict().items()}}, weights)
        frames, source = load_frames(args.frames, args.height, args.width)
        np.save(tmp / "frames.npy", frames)

        model = vsvsrpp.load_model(weights)
        with torch.inference_mode():
            model(torch.from_numpy(frames[:2, :, :64, :64])[None])  # warm-up (allocator, oneDNN)
            t0 = time.perf_counter()
            out = model(torch.from_numpy(frames)[None])
            model_s = time.perf_counter() - t0
        assert out.shape[-2:] == (4 * args.height, 4 * args.width)

        script = tmp / "bench.vpy"
        script.write_text(VPY.format(npy=str(tmp / "frames.npy"), weights=str(weights)))
        vspipe = shutil.which("vspipe", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        t0 = time.perf_counter()
        subprocess.run([vspipe, "--info", str(script), "-"], check=True, capture_output=True)
        startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([vspipe, "-c", "y4m", str(script), "/dev/null"], check=True, capture_output=True)
        e2e_s = time.perf_counter() - t0 - startup_s

        n = args.frames
        print(f"# BasicVSR++ {model.config.mid_channels}c/{model.config.num_blocks}b x{model.scale}, "
              f"{args.width}x{args.height} -> {4 * args.width}x{4 * args.height}, {n} frames, float32, "
              f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}, input: {source}")
        print(f"{'path':<34}{'total s':>10}{'ms/frame':>12}{'fps':>8}")
        print(f"{'model only (load_model forward)':<34}{model_s:>10.2f}{1000 * model_s / n:>12.0f}{n / model_s:>8.3f}")
        print(f"{'end to end (vspipe, y4m)':<34}{e2e_s:>10.2f}{1000 * e2e_s / n:>12.0f}{n / e2e_s:>8.3f}")
        print(f"(vspipe start-up subtracted: {startup_s:.2f} s; end-to-end / model-only = {e2e_s / model_s:.3f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
