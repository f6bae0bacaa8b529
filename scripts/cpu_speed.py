"""CPU speed and accuracy of the fast path against the reference, side by side in one process.

The protocol of the CPU-speed goal: random c64n7 weights, a synthetic 180x320 clip, the
reference network (``vsbasicvsrpp.basicvsr_plusplus_net.BasicVSRPlusPlusNet``, eager, NCHW,
torchvision's deformable convolution) and ours in the same process with the same threads,
runs alternating, the median of ``--runs`` per contender. Then the accuracy of each path on
real frames (``../shared/data/basicvsrpp_demo_000``) against our exact fp32 path. With
``--techniques`` also each technique alone (exact path plus one of them), at ``--technique-frames``.

The reference must be importable from ``--reference-path``: a directory made with
``pip install --target DIR --no-deps vsbasicvsrpp mmengine addict yapf termcolor rich
opencv-python-headless`` (our torch and torchvision are used), or the site-packages of the
venv ``vsvsrpp bench --reference`` builds. Prints a table on stdout; ``--json`` writes it too.

    python scripts/cpu_speed.py --reference-path /tmp/refpkgs --json cpu_speed.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vsvsrpp.arch import blocks
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime import device
from vsvsrpp.runtime.engine import Engine
from vsvsrpp.tools.bench.model_only import synthetic_frames
from vsvsrpp.tools.bench.network import write_random_checkpoint
from vsvsrpp.tools.bench.reference import REFERENCE_CLASS, REFERENCE_MODULE, reference_state_dict
from vsvsrpp.tools.evaluate import list_frames, read_frames

DEMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "basicvsrpp_demo_000"


def reference_network(path: str, weights: Path) -> torch.nn.Module:
    sys.path.insert(0, path)
    module = __import__(REFERENCE_MODULE, fromlist=[REFERENCE_CLASS])
    sd, config = reference_state_dict(weights)
    net = getattr(module, REFERENCE_CLASS)(config.mid_channels, config.num_blocks, is_low_res_input=config.is_low_res_input)
    net.load_state_dict(sd, strict=True)
    return net.eval()


def ours(weights: Path, precision: str = "fp32", fast: bool = True, layout: bool | None = None, deform: str | None = None):
    """Our network as the engine places it; ``layout``/``deform`` override one technique."""
    engine = Engine(load_descriptor(weights), "cpu", precision, fast=fast)
    if layout:
        engine.model.to(memory_format=torch.channels_last)
    if deform is not None:
        for m in engine.model.deform_align.values():
            m.deform_impl = deform
    return engine


def timed(net: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        net(x)
        return time.perf_counter() - start


def alternate(contenders: dict, x: torch.Tensor, runs: int) -> dict[str, list[float]]:
    """Warm each up on two frames, then ``runs`` rounds of one forward each, in turn."""
    with torch.inference_mode():
        for net, inp in contenders.values():
            net(inp[:, :2])
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(runs):
        for name, (net, inp) in contenders.items():
            times[name].append(timed(net, inp))
            print(f"  round {r + 1} {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    return times


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a.double() - b.double()) ** 2)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference-path", required=True, help="directory from which vsbasicvsrpp imports")
    p.add_argument("--size", default="180x320")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--accuracy-frames", type=int, default=5)
    p.add_argument("--techniques", action="store_true")
    p.add_argument("--technique-frames", type=int, default=6)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    device.set_cpu_threads(a.threads)
    h, w = (int(v) for v in a.size.split("x"))
    report: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__, "size": a.size, "frames": a.frames,
                    "runs": a.runs, "native_bf16": device.cpu_has_native_bf16()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        weights = write_random_checkpoint(Path(tmp) / "c64n7.pth", 64, 7, seed=0)
        x = torch.from_numpy(synthetic_frames(a.frames, h, w))[None]
        contenders = {
            "reference fp32": (reference_network(a.reference_path, weights), x),
            "ours fp32": (ours(weights).model, x),
        }
        if report["native_bf16"]:  # else bf16 runs fp32: nothing new to time
            bf16 = ours(weights, "bf16")
            contenders["ours bf16"] = (bf16.model, x.to(bf16.dtype))
        times = alternate(contenders, x, a.runs)
        ref = statistics.median(times["reference fp32"])
        report["speed"] = {n: {"seconds": t, "median": statistics.median(t), "ms_per_frame": 1000 * statistics.median(t) / a.frames,
                               "vs_reference": ref / statistics.median(t)} for n, t in times.items()}  # fmt: skip
        del contenders

        if a.techniques:
            xt = x[:, : a.technique_frames]
            variants = {
                "exact (torchvision DCN, NCHW)": ours(weights, fast=False).model,
                "+ channels_last only": ours(weights, fast=False, layout=True).model,
                "+ sampled DCN only": ours(weights, fast=False, deform="sampled").model,
                "fast path (both)": ours(weights).model,
            }
            ttimes = alternate({n: (m, xt) for n, m in variants.items()}, xt, 1)
            base = ttimes["exact (torchvision DCN, NCHW)"][0]
            report["techniques"] = {n: {"seconds": t[0], "gain": base / t[0]} for n, t in ttimes.items()}
            spynet = variants["fast path (both)"].spynet
            lqs = torch.from_numpy(synthetic_frames(a.frames, h, w))[None]
            flows = {}
            for label, pixels in (("flow, one batch per direction", (a.frames - 1) * h * w), ("flow, both directions batched", blocks.FLOW_BATCH_PIXELS)):
                blocks.FLOW_BATCH_PIXELS, saved = pixels, blocks.FLOW_BATCH_PIXELS
                with torch.inference_mode():
                    blocks.neighbour_flows(spynet, lqs[:, :2])
                    start = time.perf_counter()
                    blocks.neighbour_flows(spynet, lqs)
                    flows[label] = time.perf_counter() - start
                blocks.FLOW_BATCH_PIXELS = saved
            report["flow"] = flows
            del variants

        if DEMO.is_dir():
            real = read_frames(list_frames(DEMO)[: a.accuracy_frames]).float() / 255
            exact = ours(weights, fast=False)(real)
            fast = ours(weights)(real)
            acc = {"frames": list(real.shape), "fp32 fast max-abs": float((fast - exact).abs().max())}
            native, device.cpu_has_native_bf16 = device.cpu_has_native_bf16, lambda: True  # bf16 even if emulated
            try:
                out = ours(weights, "bf16")(real)
            finally:
                device.cpu_has_native_bf16 = native
            acc["bf16 fast PSNR dB"] = psnr(out, exact)
            acc["bf16 fast max-abs"] = float((out - exact).abs().max())
            acc["bf16 finite"] = bool(torch.isfinite(out).all())
            report["accuracy"] = acc

    print(f"# CPU speed, {a.size}, {a.frames} frames, {report['threads']} threads, torch {report['torch']}, median of {a.runs}")
    for name, r in report["speed"].items():
        print(f"{name:32s} {r['median']:8.2f} s  {r['ms_per_frame']:8.0f} ms/frame  {r['vs_reference']:.2f}x reference")
    for name, r in report.get("techniques", {}).items():
        print(f"{name:32s} {r['seconds']:8.2f} s  {r['gain']:.2f}x exact")
    for name, s in report.get("flow", {}).items():
        print(f"{name:32s} {s:8.2f} s")
    for name, v in report.get("accuracy", {}).items():
        print(f"{name:32s} {v}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
