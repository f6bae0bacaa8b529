"""The CUDA code path's device and dtype contract, checked without a GPU.

PyTorch's ``FakeTensorMode`` runs the engine's real code with ``device="cuda"`` tensors that hold
no data (facts in ``../shared/NOTES.md``): every operation checks devices and dtypes as on a GPU,
and reading a value back to the host inside a pass (``.item()``, ``.tolist()``, a data-dependent
shape) raises. What the mode cannot run (the driver, placing a real module, pinned memory,
synchronisation) is the seam :mod:`vsvsrpp.runtime.cuda`, replaced here. For every family x
precision x whole frames / step-wise tiles / independent tiles x offload, a pass must:

* return float32 frames of the right shape on the host (or on the device when asked);
* keep flow (SPyNet, the family's ``fp32_modules``) and the deformable convolution's offsets in
  float32 in every precision;
* read nothing back to the host.
"""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from conftest import PARITY
from vsvsrpp.arch import basicvsrpp, deform
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime import cuda
from vsvsrpp.runtime.engine import Engine

CHECKPOINTS = {
    "basicvsrpp_x4": "basicvsrpp_c16n2_x4.pth",
    "basicvsrpp_x1": "basicvsrpp_c16n2_x1.pth",
    "basicvsr": "basicvsr_c16b2_x4.pth",
    "realbasicvsr": "realbasicvsr_c16b2cb2_x4.pth",
}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
T, H, W = 3, 64, 96


class FakeCuda:
    """The harness: a FakeTensorMode and the :mod:`vsvsrpp.runtime.cuda` seam replaced for it."""

    def __init__(self, monkeypatch):
        monkeypatch.setattr(torch.backends.cudnn, "enabled", False)  # grid_sample's cuDNN kernel has no fake impl
        self.mode = FakeTensorMode(allow_non_fake_inputs=True)
        self.synchronized = 0
        self.host_buffers: list[dict] = []
        monkeypatch.setattr(cuda, "device_count", lambda: 1)
        monkeypatch.setattr(cuda, "place", self.place)
        monkeypatch.setattr(cuda, "host_buffer", self.host_buffer)
        monkeypatch.setattr(cuda, "synchronize", self.synchronize)
        monkeypatch.setattr(cuda, "free_bytes", lambda device: 8 << 30)

    def place(self, module, device, dtype=None):
        """``module.to(device, dtype)`` with fake parameters and buffers (a real module cannot be
        moved inside the mode)."""
        for m in module.modules():
            for table in (m._parameters, m._buffers):
                for name, value in list(table.items()):
                    if value is None:
                        continue
                    target = dtype if dtype is not None and value.is_floating_point() else value.dtype
                    fake = self.mode.from_tensor(value.detach()).to(device, target)
                    table[name] = torch.nn.Parameter(fake, requires_grad=False) if table is m._parameters else fake
        return module

    def host_buffer(self, shape, zeros, pinned):
        self.host_buffers.append({"shape": tuple(shape), "pinned": pinned})
        return torch.zeros(shape, dtype=torch.float32)  # inside the mode: a fake host tensor

    def synchronize(self, device):
        assert device.type == "cuda"
        self.synchronized += 1


@pytest.fixture
def fake_cuda(monkeypatch):
    return FakeCuda(monkeypatch)


def recorders(engine: Engine, monkeypatch) -> dict[str, list]:
    """Record the dtypes of the fp32 modules' outputs and of the deformable offsets."""
    seen: dict[str, list] = {"flow": [], "offset": [], "flow_device": []}
    model = engine.model
    for name in engine.descriptor.fp32_modules:

        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output
            seen["flow"].append(out.dtype)
            seen["flow_device"].append(out.device.type)

        model.get_submodule(name).register_forward_hook(hook)
    real = deform.modulated_deform_conv3x3

    def spy(x, offset, mask, weight, bias, *args, **kwargs):
        seen["offset"].append(offset.dtype)
        return real(x, offset, mask, weight, bias, *args, **kwargs)

    monkeypatch.setattr(basicvsrpp, "modulated_deform_conv3x3", spy)  # where BasicVSR++'s alignment calls it
    return seen


def modes(name: str):
    """(tile, exact_tiles, offload) cases of a family: whole frames, step-wise tiles where the
    family has them, independent tiles; each with and without offloading."""
    cases = [(None, None, False), (None, None, True), (64, False, False), (64, False, True)]
    if name.startswith("basicvsrpp"):
        exact = 32 if name.endswith("x4") else 64  # (the 1x model's tiles are 4x coarser in features)
        cases += [(exact, True, False), (exact, True, True)]
    return cases


#: The fast tier runs one case of each kind (every family in fp16 whole frames, every family in
#: bf16 independent tiles with offloading, BasicVSR++ step-wise tiles in fp32); CI runs them all.
FAST = {("fp16", None, None, False), ("bf16", 64, False, True), ("fp32", 32, True, True)}


def _case(name, precision, tile, exact, offload):
    kind = "exact" if exact else "indep" if tile else "whole"
    marks = () if (precision, tile, exact, offload) in FAST and (exact is not True or name == "basicvsrpp_x4") else pytest.mark.slow
    return pytest.param(name, precision, tile, exact, offload, marks=marks,
                        id=f"{name}-{precision}-{kind}{tile or ''}-{'offload' if offload else 'keep'}")  # fmt: skip


CASES = [_case(name, precision, *mode) for name in CHECKPOINTS for precision in DTYPES for mode in modes(name)]


@pytest.mark.parametrize(("name", "precision", "tile", "exact", "offload"), CASES)
def test_a_cuda_pass_keeps_devices_and_dtypes_and_reads_nothing_back(fake_cuda, monkeypatch, name, precision, tile, exact, offload):
    if not (PARITY / CHECKPOINTS[name]).exists():
        pytest.skip(f"parity checkpoints not found in {PARITY} (set VSVSRPP_PARITY_DIR)")
    descriptor = load_descriptor(PARITY / CHECKPOINTS[name])
    with fake_cuda.mode:
        engine = Engine(descriptor, "cuda", precision, tile=tile, offload=offload, exact_tiles=exact)
        assert engine.device.type == "cuda" and engine.dtype == DTYPES[precision]
        seen = recorders(engine, monkeypatch)
        frames = torch.rand(T, 3, H, W)
        options = {"cleaning_passes": 2} if name == "realbasicvsr" else {}
        out = engine(frames, **options)  # raises on a device mismatch, a dtype clash or a host read
        s = descriptor.scale
        assert (out.device.type, out.dtype, tuple(out.shape)) == ("cpu", torch.float32, (T, 3, s * H, s * W))
        assert fake_cuda.host_buffers[-1] == {"shape": (T, 3, s * H, s * W), "pinned": True}
        assert fake_cuda.synchronized == 1  # the pinned copies are waited for once, at the end
        if tile is None:  # (a second pass: once per family, precision and offloading is enough)
            on_device = engine(frames, to_host=False, **options)
            assert (on_device.device.type, on_device.dtype) == ("cuda", torch.float32)
    assert seen["flow"] and set(seen["flow"]) == {torch.float32} and set(seen["flow_device"]) == {"cuda"}
    if name.startswith("basicvsrpp"):
        assert seen["offset"] and set(seen["offset"]) == {torch.float32}


def test_the_harness_catches_a_host_read_and_a_device_mismatch(fake_cuda):
    """The contract test can fail: the mode raises where a GPU would synchronise or clash."""
    with fake_cuda.mode:
        x = torch.rand(4, device="cuda")
        with pytest.raises(Exception, match="(?i)local_scalar_dense|data.dependent"):
            x.sum().item()
        with pytest.raises(Exception, match="(?i)device"):
            x + torch.rand(4)  # noqa: B018  (a host tensor into a device operation)
