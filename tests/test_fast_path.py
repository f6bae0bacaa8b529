"""The CPU fast path: sampled deformable convolution, channels_last, batched flow, bf16 and threads.

Accuracy gates: every fast path against the exact fp32 path on the parity vectors and on real
frames (fp32 <= 1e-4 max-abs; bf16 >= 40 dB PSNR and finite). The parity tests against the
reference vectors themselves run the exact path (tests/test_network.py).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PARITY, SHARED, make_checkpoint
from vsvsrpp import arch
from vsvsrpp.arch import blocks
from vsvsrpp.arch.basicvsr import BasicVSRConfig
from vsvsrpp.arch.deform import modulated_deform_conv3x3
from vsvsrpp.hub.checkpoint import load_descriptor
from vsvsrpp.runtime import device
from vsvsrpp.runtime.engine import Engine
from vsvsrpp.tools.evaluate import list_frames, read_frames

DEMO = SHARED / "data" / "basicvsrpp_demo_000"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a.double() - b.double()) ** 2)))


def run(path, frames, precision="fp32", fast=True):
    return Engine(load_descriptor(path), "cpu", precision, fast=fast)(frames)


@pytest.fixture(scope="module")
def demo_frames():
    if not DEMO.is_dir():
        pytest.skip(f"real frames not found in {DEMO}")
    return read_frames(list_frames(DEMO)[:5]).float() / 255  # (5, 3, 180, 320) in [0, 1]


# -- the deformable convolution --------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=st.sampled_from([1, 2, 4]),
    per_group=st.integers(1, 3),
    c_out=st.integers(1, 5),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    spread=st.floats(0.0, 6.0),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_sampled_deform_conv_equals_torchvision(n, groups, per_group, c_out, h, w, spread, channels_last, seed):
    g = torch.Generator().manual_seed(seed)
    c_in = groups * per_group
    x = torch.rand(n, c_in, h, w, generator=g)
    offset = torch.randn(n, 18 * groups, h, w, generator=g) * spread  # many samples leave the frame
    mask = torch.rand(n, 9 * groups, h, w, generator=g)
    weight = torch.randn(c_out, c_in, 3, 3, generator=g)
    bias = torch.randn(c_out, generator=g)
    exact = modulated_deform_conv3x3(x, offset, mask, weight, bias, "torchvision")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    fast = modulated_deform_conv3x3(x, offset, mask, weight, bias, "sampled")
    assert fast.shape == exact.shape
    torch.testing.assert_close(fast, exact, rtol=1e-5, atol=1e-5)


def test_sampled_deform_conv_keeps_channels_last_and_works_in_bands(monkeypatch):
    from vsvsrpp.arch import deform

    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 32, 23, 17, generator=g).contiguous(memory_format=torch.channels_last)
    offset, mask = torch.randn(1, 72, 23, 17, generator=g) * 2, torch.rand(1, 36, 23, 17, generator=g)
    weight, bias = torch.randn(8, 32, 3, 3, generator=g), torch.randn(8, generator=g)
    exact = modulated_deform_conv3x3(x, offset, mask, weight, bias)
    monkeypatch.setattr(deform, "BAND_PIXELS", 40)  # two rows per band, the last one short
    out = modulated_deform_conv3x3(x, offset, mask, weight, bias, "sampled")
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    torch.testing.assert_close(out, exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_sampled_deform_conv_gradients_equal_torchvision(monkeypatch, channels_last):
    """Training uses the sampled path on the CPU: its gradients (input, offsets away from the
    kinks of bilinear sampling, mask, weight, bias) must be torchvision's, across bands."""
    from vsvsrpp.arch import deform

    monkeypatch.setattr(deform, "BAND_PIXELS", 30)  # several bands, the last one short
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 8, 9, 11, generator=g)
    # offsets at fractional positions (0.25-0.75 of a pixel) so that no sample sits on a kink
    offset = (torch.randint(-3, 3, (2, 36, 9, 11), generator=g) + 0.25 + 0.5 * torch.rand(2, 36, 9, 11, generator=g))
    mask = torch.rand(2, 18, 9, 11, generator=g)
    weight, bias = torch.randn(5, 8, 3, 3, generator=g), torch.randn(5, generator=g)
    grads = {}
    for impl in ("torchvision", "sampled"):
        leaves = [t.clone().requires_grad_() for t in (x, offset, mask, weight, bias)]
        xi = leaves[0].contiguous(memory_format=torch.channels_last) if channels_last and impl == "sampled" else leaves[0]
        out = modulated_deform_conv3x3(xi, *leaves[1:], impl)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads[impl] = [t.grad for t in leaves]
    for name, a, b in zip(("x", "offset", "mask", "weight", "bias"), grads["sampled"], grads["torchvision"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=f"gradient of {name}")


def test_deform_conv_refuses_bad_arguments():
    x, weight, bias = torch.rand(1, 8, 4, 4), torch.rand(2, 8, 3, 3), torch.rand(2)
    with pytest.raises(ValueError, match="impl must be"):
        modulated_deform_conv3x3(x, torch.rand(1, 36, 4, 4), torch.rand(1, 18, 4, 4), weight, bias, "cuda-magic")
    with pytest.raises(ValueError, match=r"offset \(1, 35, 4, 4\)"):
        modulated_deform_conv3x3(x, torch.rand(1, 35, 4, 4), torch.rand(1, 18, 4, 4), weight, bias, "sampled")
    with pytest.raises(ValueError, match="weight"):
        modulated_deform_conv3x3(x, torch.rand(1, 36, 4, 4), torch.rand(1, 18, 4, 4), weight[:, :4], bias, "sampled")


# -- the network's fast path -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["basicvsrpp_c16n2_x4", "basicvsrpp_c16n2_x1"])
def test_fp32_fast_path_matches_exact_on_parity_vectors(name):
    if not (PARITY / f"{name}.npz").exists():
        pytest.skip(f"parity vectors not found in {PARITY}")
    data = np.load(PARITY / f"{name}.npz")
    lq = torch.from_numpy(data["lq"][0])
    fast, exact = run(PARITY / f"{name}.pth", lq), run(PARITY / f"{name}.pth", lq, fast=False)
    assert (fast - exact).abs().max().item() <= 1e-4
    # and the fast path still reproduces the independent reference's output
    assert (fast - torch.from_numpy(data["out"][0]).clamp(0, 1)).abs().max().item() <= 1e-4


@pytest.mark.slow
def test_fp32_fast_path_matches_exact_on_real_frames(demo_frames):
    path = PARITY / "basicvsrpp_c16n2_x4.pth"
    if not path.exists():
        pytest.skip(f"parity checkpoint not found in {PARITY}")
    assert (run(path, demo_frames) - run(path, demo_frames, fast=False)).abs().max().item() <= 1e-4


@pytest.mark.slow
def test_fp32_and_bf16_fast_paths_on_real_frames_c64n7(demo_frames, tmp_path, native_bf16):
    """The official VSR shape (random weights): fp32 fast <= 1e-4, bf16 >= 40 dB against exact fp32."""
    path = make_checkpoint(tmp_path / "c64n7.pth", arch.get("basicvsrpp").make_config(64, 7), seed=3)
    frames = demo_frames[:3]
    exact = run(path, frames, fast=False)
    assert (run(path, frames) - exact).abs().max().item() <= 1e-4
    bf16 = run(path, frames, "bf16")
    assert torch.isfinite(bf16).all() and psnr(bf16, exact) >= 40.0


@pytest.mark.parametrize("name", ["basicvsrpp_c16n2_x4", "basicvsrpp_c16n2_x1"])
def test_bf16_fast_path_keeps_psnr_on_parity_vectors(name, native_bf16):
    if not (PARITY / f"{name}.npz").exists():
        pytest.skip(f"parity vectors not found in {PARITY}")
    lq = torch.from_numpy(np.load(PARITY / f"{name}.npz")["lq"][0])
    engine = Engine(load_descriptor(PARITY / f"{name}.pth"), "cpu", "bf16")
    assert engine.precision == "bf16" and engine.model.conv_last.weight.dtype == torch.bfloat16
    out = engine(lq)
    assert torch.isfinite(out).all()
    assert psnr(out, run(PARITY / f"{name}.pth", lq, fast=False)) >= 40.0


@pytest.mark.slow
def test_bf16_fast_path_keeps_psnr_on_real_frames(demo_frames, native_bf16):
    path = PARITY / "basicvsrpp_c16n2_x4.pth"
    if not path.exists():
        pytest.skip(f"parity checkpoint not found in {PARITY}")
    out = run(path, demo_frames, "bf16")
    assert torch.isfinite(out).all() and psnr(out, run(path, demo_frames, fast=False)) >= 40.0


@pytest.mark.parametrize(
    "fixture", ["tiny_checkpoint", "tiny_checkpoint_x1", "tiny_realbasicvsr_checkpoint", "basicvsr_checkpoint"]
)
def test_every_family_fast_path_matches_exact(fixture, request):
    path = request.getfixturevalue(fixture)
    g = torch.Generator().manual_seed(5)
    frames = torch.rand(4, 3, 64, 72, generator=g)
    assert (run(path, frames) - run(path, frames, fast=False)).abs().max().item() <= 1e-4


@pytest.fixture(scope="module")
def basicvsr_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "basicvsr.pth", BasicVSRConfig(8, 1))


def test_fast_path_feeds_every_wide_convolution_channels_last(tiny_checkpoint):
    """channels_last throughout the feature path: no convolution of more than 8 input channels
    gets a plain NCHW input (which oneDNN would reorder on every call)."""
    engine = Engine(load_descriptor(tiny_checkpoint), "cpu", "fp32")
    plain = []
    for name, module in engine.model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and module.in_channels > 8:
            module.register_forward_pre_hook(
                lambda m, args, name=name: plain.append(name)
                if not args[0].is_contiguous(memory_format=torch.channels_last)
                else None
            )
    engine(torch.rand(3, 3, 64, 64))
    assert plain == []
    assert {m.deform_impl for m in engine.model.deform_align.values()} == {"sampled"}


def test_exact_path_is_kept_when_asked_and_a_network_runs_on_one_path(tiny_checkpoint):
    descriptor = load_descriptor(tiny_checkpoint)
    engine = Engine(descriptor, "cpu", "fp32", fast=False)
    assert {m.deform_impl for m in engine.model.deform_align.values()} == {"torchvision"}
    assert engine.model.conv_last.weight.is_contiguous()
    with pytest.raises(ValueError, match="exact path"):
        Engine(descriptor, "cpu", "fp32", fast=True)


def test_flow_batches_do_not_change_the_flows(monkeypatch):
    spynet = blocks.SPyNet().eval()
    lqs = torch.rand(1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        whole = blocks.neighbour_flows(spynet, lqs)
        monkeypatch.setattr(blocks, "FLOW_BATCH_PIXELS", 2 * 64 * 64)  # 2 pairs per batch
        batched = blocks.neighbour_flows(spynet, lqs)
        single_f = spynet(lqs[0, 1:], lqs[0, :-1])  # forward flows, pair by pair semantics
    for a, b in zip(whole, batched):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    torch.testing.assert_close(whole[0][0], single_f, rtol=0, atol=1e-5)


# -- precision and threads -------------------------------------------------------------------


def test_bf16_without_native_support_runs_fp32_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    device._log_bf16_fallback.cache_clear()
    cpu = torch.device("cpu")
    with caplog.at_level(logging.WARNING, logger="vsvsrpp"):
        assert device.resolve_precision("bf16", cpu) == "fp32"
        assert device.resolve_precision("bf16", cpu) == "fp32"
    assert len([r for r in caplog.records if "no native bfloat16" in r.message]) == 1
    assert device.resolve_precision("fp32", cpu) == "fp32"


def test_native_bf16_detection_agrees_with_the_cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no x86 /proc/cpuinfo flags here")
    assert device.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_cpu_threads_are_the_physical_cores_of_the_affinity():
    allowed = os.sched_getaffinity(0)
    threads = device.cpu_threads()
    assert 1 <= threads <= len(allowed)
    cores = {
        (open(f"/sys/devices/system/cpu/cpu{c}/topology/physical_package_id").read(), open(f"/sys/devices/system/cpu/cpu{c}/topology/core_id").read())
        for c in allowed
    }
    assert threads == len(cores)


def test_set_cpu_threads_keeps_an_explicit_choice(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device, "_threads_set", False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert device.set_cpu_threads(1) == 1
        assert device.set_cpu_threads() == 1  # an engine starting later does not override it
        monkeypatch.setattr(device, "_threads_set", False)
        assert device.set_cpu_threads() == device.cpu_threads()
        monkeypatch.setattr(device, "_threads_set", False)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        assert device.set_cpu_threads() == 1  # OMP_NUM_THREADS wins
    finally:
        torch.set_num_threads(before)
