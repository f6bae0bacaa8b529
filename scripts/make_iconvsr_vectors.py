"""Make ``tests/data/iconvsr_parity.pt``: the output of BasicSR's ``IconVSR`` (the independent
reference) on the cases of ``tests/iconvsr_cases.py``.

BasicSR is not a dependency of vsvsrpp: unpack its sdist anywhere outside the repository and
point this script at it; its arch modules are imported by file path (with its registry and
logger stubbed), so that no compiled operator is needed (its ``DCNv2Pack`` runs torchvision's
``deform_conv2d``)::

    pip download basicsr==1.4.2 --no-deps -d /tmp/ref && tar xzf /tmp/ref/basicsr-1.4.2.tar.gz -C /tmp/ref
    OMP_NUM_THREADS=1 .venv/bin/python scripts/make_iconvsr_vectors.py /tmp/ref/basicsr-1.4.2

The weights are seeded (:func:`iconvsr_cases.random_weights`, drawn in BasicSR's key names); the
file holds, per case, the sampled output and the weights' fingerprint.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from iconvsr_cases import CASES, SAMPLE, VECTORS, fingerprint, frames, random_weights, sampled  # noqa: E402


def import_basicsr_archs(source: Path) -> types.ModuleType:
    """BasicSR's ``basicvsr_arch`` module, imported from ``source`` (an unpacked sdist) without
    running ``basicsr/__init__.py`` (which imports its data, losses and compiled operators)."""
    archs = source / "basicsr" / "archs"
    if not (archs / "basicvsr_arch.py").is_file():
        raise SystemExit(f"{archs / 'basicvsr_arch.py'} not found: pass the folder of an unpacked basicsr sdist")

    def package(name: str, path: Path | None = None) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__path__ = [str(path)] if path else []
        sys.modules[name] = module
        return module

    class Registry:
        def register(self, *args, **kwargs):
            return lambda cls: cls

    package("basicsr")
    utils = package("basicsr.utils")
    utils.get_root_logger = lambda *a, **k: logging.getLogger("basicsr")
    package("basicsr.utils.registry").ARCH_REGISTRY = Registry()
    package("basicsr.ops")
    package("basicsr.archs", archs)

    def load(name: str, path: Path) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    # its pure-Python DCN classes (the compiled extension's import fails quietly)
    load("basicsr.ops.dcn", source / "basicsr" / "ops" / "dcn" / "deform_conv.py")
    for name in ("arch_util", "spynet_arch", "edvr_arch", "basicvsr_arch"):
        load(f"basicsr.archs.{name}", archs / f"{name}.py")
    return sys.modules["basicsr.archs.basicvsr_arch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("basicsr", type=Path, help="folder of an unpacked basicsr sdist (holds basicsr/archs)")
    parser.add_argument("--out", type=Path, default=VECTORS)
    args = parser.parse_args()
    reference = import_basicsr_archs(args.basicsr)
    torch.set_num_threads(1)
    result = {"sample": SAMPLE, "basicsr": "basicsr 1.4.2 (basicsr/archs/basicvsr_arch.py IconVSR)", "cases": {}}
    for case in CASES:
        net = reference.IconVSR(
            num_feat=case.mid_channels, num_block=case.num_blocks, keyframe_stride=case.keyframe_stride,
            temporal_padding=case.padding,
        ).eval()  # fmt: skip
        shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        sd = random_weights(shapes, case.seed)
        net.load_state_dict(sd, strict=True)
        lq = frames(case)
        x = lq
        if case.reference_pad is not None:
            n, t, c, h, w = lq.shape
            ph, pw = case.reference_pad
            x = F.pad(lq.view(n * t, c, h, w), (0, pw - w, 0, ph - h), mode="replicate").view(n, t, c, ph, pw)
        with torch.no_grad():
            out = net(x)[..., : 4 * case.h, : 4 * case.w]
        print(f"{case.name}: output {tuple(out.shape)}, range {out.min():.3f}..{out.max():.3f}")
        result["cases"][case.name] = {"out": sampled(out), "fingerprint": fingerprint(sd), "keys": sorted(sd)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
