"""Tests of the speed benchmark (vsvsrpp.bench and ``vsvsrpp bench``).

Everything runs on the CPU with a tiny network (8 channels, 1 block) and tiny clips; the
reference venv is never built here (it needs PyPI and minutes), only its key mapping is checked.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vsvsrpp import bench, cli
from vsvsrpp.basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return bench.write_random_checkpoint(tmp_path_factory.mktemp("bench") / "tiny.pth", mid_channels=8, num_blocks=1)


def _row(**kw) -> bench.BenchRow:
    row = bench.BenchRow(180, 320, "fp32", 10)
    for k, v in kw.items():
        setattr(row, k, v)
    return row


def _result(rows, **kw) -> bench.BenchResult:
    env = {
        "device": "cpu",
        "device_type": "cpu",
        "torch": "2.x",
        "torchvision": "0.x",
        "vapoursynth": "81",
        "python": "3.12",
        "threads": 2,
        "cpu": "Test CPU 9000",
        "cpu_count": 2,
        "load_average_start": [0.5, 0.4, 0.3],
        "load_average_end": [1.5, 0.9, 0.4],
    }
    return bench.BenchResult(env, "BasicVSR++ c64n7 x4, random weights", 10, rows, **kw)


# ---------------------------------------------------------------------------------------------
# option parsing
# ---------------------------------------------------------------------------------------------


def test_parse_sizes():
    assert bench.parse_sizes("180x320") == [(180, 320)]
    assert bench.parse_sizes("180x320, 540X960,180x320") == [(180, 320), (540, 960)]
    for bad in ("", "180", "180x", "x320", "0x320", "-1x5", "180x320x3", "axb"):
        with pytest.raises(bench.BenchError):
            bench.parse_sizes(bad)


def test_parse_precisions():
    assert bench.parse_precisions("fp32") == ["fp32"]
    assert bench.parse_precisions("FP32,bf16,fp16,fp32") == ["fp32", "bf16", "fp16"]
    for bad in ("", "fp8", "fp32,int8"):
        with pytest.raises(bench.BenchError):
            bench.parse_precisions(bad)


def test_options_validate(tmp_path):
    bench.BenchOptions().validate()
    with pytest.raises(bench.BenchError, match="weights file not found"):
        bench.BenchOptions(weights=tmp_path / "missing.pth").validate()
    with pytest.raises(bench.BenchError):
        bench.BenchOptions(frames=0).validate()
    with pytest.raises(bench.BenchError):
        bench.BenchOptions(precisions=["fp8"]).validate()
    if not torch.cuda.is_available():
        with pytest.raises(bench.BenchError, match="CUDA is not available"):
            bench.BenchOptions(device="cuda").validate()


# ---------------------------------------------------------------------------------------------
# inputs and measurements
# ---------------------------------------------------------------------------------------------


def test_synthetic_frames_pan():
    f = bench.synthetic_frames(3, 37, 50)
    assert f.shape == (3, 3, 37, 50) and f.dtype == np.float32
    assert 0.0 <= f.min() and f.max() <= 1.0
    # frame i+1 is frame i moved left by two pixels
    np.testing.assert_array_equal(f[1][:, :, :-2], f[0][:, :, 2:])
    np.testing.assert_array_equal(bench.synthetic_frames(3, 37, 50), f)  # deterministic


def test_time_model_only(tiny_weights):
    frames = bench.synthetic_frames(2, 64, 64)
    t = bench.time_model_only(tiny_weights, frames, "cpu", "fp32", repeat=2)
    assert isinstance(t, bench.Timing)
    assert t.frames == 2
    assert t.seconds > 0 and t.ms_per_frame > 0 and t.fps > 0
    assert math.isclose(t.ms_per_frame, 500 * t.seconds) and math.isclose(t.fps, 2 / t.seconds)


def test_environment_info():
    env = bench.environment_info(torch.device("cpu"))
    assert env["device"] == "cpu" and env["torch"] == torch.__version__
    assert env["threads"] == torch.get_num_threads() >= 1
    assert isinstance(env["cpu"], str) and env["cpu"]


def test_filter_kwargs():
    # always explicit: the filter's own default ("auto") would be fp16 on CUDA
    assert bench.filter_kwargs(torch.device("cpu"), "fp32") == {"device": "cpu", "precision": "fp32"}
    assert bench.filter_kwargs(torch.device("cuda"), "bf16") == {"device": "cuda", "precision": "bf16"}


def test_prepare_network_follows_the_engine(tiny_weights):
    model, dtype = bench.prepare_network(tiny_weights, torch.device("cpu"), "bf16")
    assert dtype == torch.bfloat16
    assert model.conv_last.weight.dtype == torch.bfloat16
    assert model.spynet.mean.dtype == torch.float32  # the engine keeps SPyNet in float32
    model, dtype = bench.prepare_network(tiny_weights, torch.device("cpu"), "fp32")
    assert dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# the reference's checkpoint
# ---------------------------------------------------------------------------------------------

#: Parameter/buffer names of vsbasicvsrpp's BasicVSRPlusPlusNet (mmediting's generator), c8n1.
REFERENCE_KEYS_SAMPLE = (
    "spynet.mean",
    "spynet.std",
    "spynet.basic_module.0.basic_module.0.conv.weight",
    "spynet.basic_module.5.basic_module.4.conv.bias",
    "feat_extract.main.0.weight",
    "feat_extract.main.2.0.conv1.weight",
    "deform_align.backward_1.weight",
    "deform_align.forward_2.bias",
    "deform_align.backward_2.conv_offset.0.weight",
    "deform_align.forward_1.conv_offset.6.bias",
    "backbone.backward_1.main.0.weight",
    "backbone.forward_2.main.2.0.conv2.bias",
    "reconstruction.main.0.weight",
    "upsample1.upsample_conv.weight",
    "upsample2.upsample_conv.bias",
    "conv_hr.weight",
    "conv_last.bias",
)


def test_reference_state_dict(tiny_weights):
    raw = torch.load(tiny_weights, weights_only=True)
    assert all(k.startswith("generator.") for k in raw["state_dict"])  # the official layout
    sd, config = bench.reference_state_dict(tiny_weights)
    assert config == BasicVSRPPConfig(8, 1, True)
    assert not any(k.startswith(("generator.", "module.")) for k in sd)
    for key in REFERENCE_KEYS_SAMPLE:
        assert key in sd, key
    assert sd.keys() == BasicVSRPlusPlus(config).state_dict().keys()
    for k, v in raw["state_dict"].items():
        assert torch.equal(sd[k.removeprefix("generator.")], v)
    assert sd["deform_align.backward_1.conv_offset.6.weight"].shape == (27 * 16, 8, 3, 3)


def test_reference_state_dict_prefers_ema(tmp_path, tiny_weights):
    raw = torch.load(tiny_weights, weights_only=True)["state_dict"]
    both = {**raw, **{k.replace("generator.", "generator_ema.", 1): v + 1 for k, v in raw.items()}}
    path = tmp_path / "ema.pth"
    torch.save({"state_dict": both}, path)
    sd, _ = bench.reference_state_dict(path)
    assert torch.equal(sd["conv_last.bias"], raw["generator.conv_last.bias"] + 1)


def test_reference_state_dict_rejects_other_families(tmp_path):
    from vsvsrpp.basicvsr import BasicVSR, BasicVSRConfig

    path = tmp_path / "basicvsr.pth"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in BasicVSR(BasicVSRConfig(8, 1)).state_dict().items()}}, path)
    with pytest.raises(ValueError, match="BasicVSR\\+\\+ only"):
        bench.reference_state_dict(path)


def test_default_reference_venv():
    path = bench.default_reference_venv()
    assert path.name == "reference-venv" and path.parent.name == "vsvsrpp"


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------


def test_row_ratios():
    row = _row(model=bench.Timing(2.0, 10), end_to_end=bench.Timing(2.5, 10), reference=bench.Timing(3.0, 10))
    assert row.end_to_end_ratio == pytest.approx(1.25)
    assert row.speed_up == pytest.approx(1.5)
    assert _row(model=bench.Timing(2.0, 10)).speed_up is None
    assert _row(end_to_end=bench.Timing(2.0, 10)).end_to_end_ratio is None


def test_format_table():
    rows = [
        _row(model=bench.Timing(2.0, 10), end_to_end=bench.Timing(2.5, 10), startup_seconds=4.25, reference=bench.Timing(3.0, 10)),
        _row(precision="bf16", model=bench.Timing(1.0, 10), notes=["end to end skipped"]),
    ]
    text = _result(rows, notes=["a global note"], reference_env={"version": "3.0.0", "torch": "2.x", "mmengine": "0.10"}).format_table()
    lines = text.splitlines()
    assert lines[0].startswith("# vsvsrpp bench: BasicVSR++ c64n7 x4, random weights, 10 frames")
    assert "Test CPU 9000" in lines[1] and "2 threads" in lines[1]
    assert any("vsbasicvsrpp 3.0.0" in line for line in lines)
    assert any("0.50 0.40 0.30 at start" in line for line in lines)
    fp32 = next(line for line in lines if line.startswith("180x320") and " fp32 " in line)
    assert fp32.split() == ["180x320", "fp32", "200.0", "5.000", "250.0", "4.000", "1.250", "300.0", "3.333", "1.500"]
    bf16 = next(line for line in lines if line.startswith("180x320") and " bf16 " in line)
    assert bf16.split() == ["180x320", "bf16", "100.0", "10.000", "-", "-", "-", "-", "-", "-"]
    assert "180x320 fp32: vspipe start-up subtracted 4.25 s" in lines
    assert "180x320 bf16: end to end skipped" in lines
    assert lines[-1] == "a global note"


def test_to_json():
    rows = [_row(model=bench.Timing(2.0, 10), end_to_end=bench.Timing(2.5, 10), startup_seconds=4.0), _row(precision="fp16")]
    doc = json.loads(_result(rows).to_json())
    assert doc["network"].startswith("BasicVSR++") and doc["frames"] == 10
    assert doc["environment"]["cpu"] == "Test CPU 9000"
    first, second = doc["results"]
    assert first["size"] == "180x320" and first["precision"] == "fp32"
    assert first["model_only"] == {"seconds": 2.0, "ms_per_frame": 200.0, "fps": 5.0}
    assert first["end_to_end"]["startup_seconds_subtracted"] == 4.0
    assert first["end_to_end_over_model_only"] == pytest.approx(1.25)
    assert first["reference"] is None and first["speed_up_over_reference"] is None
    assert second["model_only"] is None and second["end_to_end"] is None


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------


def test_cli_help(capsys):
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--sizes", "--frames", "--device", "--precision", "--model-only", "--reference", "--json", "--weights"):
        assert option in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "180"], "bad size"),
        (["--precision", "fp8"], "bad precision"),
        (["--weights", "/nonexistent/x.pth"], "weights file not found"),
    ],
)
def test_cli_bad_options(capsys, args, message):
    assert cli.main(["bench", *args]) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_cli_model_only_json(capsys):
    argv = ["bench", "--sizes", "64x64", "--frames", "2", "--device", "cpu", "--model-only", "--json",
            "--mid-channels", "8", "--num-blocks", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is the JSON document only
    assert doc["network"] == "BasicVSR++ c8n1 x4, random weights"
    (row,) = doc["results"]
    assert row["size"] == "64x64" and row["model_only"]["ms_per_frame"] > 0
    assert row["end_to_end"] is None and row["reference"] is None
    assert "model only 64x64 fp32" in captured.err  # progress on stderr


def test_cli_end_to_end(capsys):
    argv = ["bench", "--sizes", "64x64", "--frames", "2", "--device", "cpu", "--precision", "fp32,bf16",
            "--mid-channels", "8", "--num-blocks", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("# vsvsrpp bench: BasicVSR++ c8n1 x4, random weights, 2 frames per clip")
    assert "torch " + torch.__version__ in out
    fp32 = next(line for line in out.splitlines() if line.startswith("64x64") and " fp32 " in line).split()
    model_ms, model_fps, e2e_ms, e2e_fps, ratio = (float(x) for x in fp32[2:7])
    assert min(model_ms, model_fps, e2e_ms, e2e_fps, ratio) > 0
    assert fp32[7:] == ["-", "-", "-"]  # no reference
    bf16 = next(line for line in out.splitlines() if line.startswith("64x64") and " bf16 " in line).split()
    assert float(bf16[2]) > 0  # model only runs bf16 on the CPU
    assert float(bf16[4]) > 0  # end to end passes precision="bf16" to the filter
    assert "64x64 fp32: vspipe start-up subtracted" in out and "vspipe's own timer" in out
