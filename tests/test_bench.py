"""Tests of the speed benchmark (vsvsrpp.tools.bench and ``vsvsrpp bench``).

Everything runs on the CPU with tiny networks (8 channels, 1 block) and tiny clips. The real
reference venv is never built here (it needs PyPI and minutes): its key mapping is checked, and
its programs run in a stand-in "venv" whose Python sees a fake ``vsbasicvsrpp`` (our network
under the reference's names).
"""

from __future__ import annotations

import ast
import json
import math
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from vsvsrpp import arch, cli
from vsvsrpp.arch.basicvsr import BasicVSR, BasicVSRConfig
from vsvsrpp.arch.basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig
from vsvsrpp.hub import download
from vsvsrpp.hub.checkpoint import read_state_dict
from vsvsrpp.runtime import device
from vsvsrpp.tools import bench
from vsvsrpp.tools.bench import end_to_end, programs

ROOT = Path(__file__).resolve().parents[1]


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


def _tiny(**kw) -> bench.BenchOptions:
    """Options for a tiny model-only run on the CPU."""
    return bench.BenchOptions(sizes=[(64, 64)], frames=2, device="cpu", mid_channels=8, num_blocks=1, model_only=True, **kw)


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


def test_precisions_are_the_runtimes():
    from vsvsrpp.runtime import device

    assert bench.PRECISIONS is device.PRECISIONS


def test_options_validate(tmp_path, tiny_weights):
    bench.BenchOptions().validate()
    bench.BenchOptions(weights=tiny_weights, arch="realbasicvsr").validate()
    with pytest.raises(bench.BenchError, match="weights file not found"):
        bench.BenchOptions(weights=tmp_path / "missing.pth").validate()
    with pytest.raises(bench.BenchError, match="not both"):
        bench.BenchOptions(model="reds4", weights=tiny_weights).validate()
    with pytest.raises(bench.BenchError, match="unknown model 'nope'"):
        bench.BenchOptions(model="nope").validate()
    with pytest.raises(bench.BenchError, match="unknown network family 'edvr'"):
        bench.BenchOptions(arch="edvr").validate()
    with pytest.raises(bench.BenchError):
        bench.BenchOptions(frames=0).validate()
    with pytest.raises(bench.BenchError):
        bench.BenchOptions(precisions=["fp8"]).validate()
    with pytest.raises(bench.BenchError, match="not supported"):
        bench.BenchOptions(device="meta").validate()
    if not torch.cuda.is_available():
        with pytest.raises(bench.BenchError, match="CUDA is not available"):
            bench.BenchOptions(device="cuda").validate()


# ---------------------------------------------------------------------------------------------
# the network: random weights of any family, a checkpoint, a registry model
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", arch.ARCHITECTURES, ids=lambda a: a.id)
def test_write_random_checkpoint_any_family(tmp_path, family):
    path = bench.write_random_checkpoint(tmp_path / "r.pth", 8, 1, seed=3, family=family.id)
    raw = torch.load(path, weights_only=True)
    assert all(k.startswith("generator.") for k in raw["state_dict"])  # the official layout
    descriptor = arch.load(read_state_dict(path))
    assert descriptor.architecture is family
    assert descriptor.config == family.make_config(8, 1)
    again = bench.write_random_checkpoint(tmp_path / "again.pth", 8, 1, seed=3, family=family.id)
    other = bench.write_random_checkpoint(tmp_path / "other.pth", 8, 1, seed=4, family=family.id)
    first, second, third = (read_state_dict(p) for p in (path, again, other))
    assert all(torch.equal(first[k], second[k]) for k in first)  # seeded
    assert not all(torch.equal(first[k], third[k]) for k in first)


@pytest.mark.parametrize(
    "family, name",
    [("basicvsrpp", "BasicVSR++ c8n1 x4"), ("basicvsr", "BasicVSR c8n1 x4"), ("realbasicvsr", "RealBasicVSR c8n1+1 x4"),
     ("iconvsr", "IconVSR c8n1p2 x4")],
)
def test_select_network_random(tmp_path, family, name):
    network = bench.select_network(_tiny(arch=family), tmp_path)
    assert network.name == f"{name}, random weights"
    assert network.architecture is arch.get(family)
    assert network.path.parent == tmp_path and network.checkpoint.pretrained is None
    assert set(network.options) == {o.name for o in network.architecture.options}


def test_select_network_weights_and_options(tmp_path, tiny_realbasicvsr_checkpoint):
    network = bench.select_network(_tiny(weights=tiny_realbasicvsr_checkpoint), tmp_path)
    assert network.name == "RealBasicVSR c8n1+1 x4, weights tiny_real.pth"
    assert network.options == {"refine_threshold": 5.0, "cleaning_passes": None}  # the family's defaults
    given = bench.select_network(_tiny(weights=tiny_realbasicvsr_checkpoint, call_options={"cleaning_passes": 2}), tmp_path)
    assert given.options == {"refine_threshold": 5.0, "cleaning_passes": 2}
    with pytest.raises(bench.BenchError, match="does not apply to BasicVSR\\+\\+"):
        bench.select_network(_tiny(call_options={"cleaning_passes": 2}), tmp_path)
    broken = tmp_path / "broken.pth"
    torch.save({"state_dict": {"generator.foo.weight": torch.zeros(1)}}, broken)
    with pytest.raises(bench.BenchError, match="cannot load"):
        bench.select_network(_tiny(weights=broken), tmp_path)


def test_select_network_registry_model(tmp_path, monkeypatch, tiny_realbasicvsr_checkpoint):
    fetched = []

    def fake_fetch(info, *, progress=None):
        fetched.append(info.name)
        return tiny_realbasicvsr_checkpoint

    monkeypatch.setattr(download, "fetch", fake_fetch)
    network = bench.select_network(_tiny(model="realbasicvsr"), tmp_path)
    assert fetched == ["realbasicvsr"]  # resolved through the registry
    assert network.name == "RealBasicVSR c8n1+1 x4, model realbasicvsr"
    assert network.checkpoint.pretrained.name == "realbasicvsr"
    assert network.options["refine_threshold"] == 5.0  # the registry entry's default


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


def test_time_model_only_passes_call_options(tmp_path, tiny_realbasicvsr_checkpoint):
    frames = bench.synthetic_frames(2, 32, 32)
    t = bench.time_model_only(tiny_realbasicvsr_checkpoint, frames, "cpu", "fp32", options={"cleaning_passes": 1})
    assert t.frames == 2 and t.seconds > 0
    basicvsr = bench.write_random_checkpoint(tmp_path / "bv.pth", 8, 1, family="basicvsr")
    with pytest.raises(TypeError, match="refine"):  # the options reach the forward: BasicVSR takes none
        bench.time_model_only(basicvsr, frames, "cpu", "fp32", options={"refine_threshold": 1.0})


def test_environment_info():
    env = bench.environment_info(torch.device("cpu"))
    assert env["device"] == "cpu" and env["torch"] == torch.__version__
    assert env["threads"] == torch.get_num_threads() >= 1
    assert isinstance(env["cpu"], str) and env["cpu"]


def test_filter_kwargs():
    # always explicit: the filter's own default ("auto") would be fp16 on CUDA
    assert bench.filter_kwargs(torch.device("cpu"), "fp32") == {"device": "cpu", "precision": "fp32"}
    assert bench.filter_kwargs(torch.device("cuda"), "bf16") == {"device": "cuda", "precision": "bf16"}


def test_script_args():
    args = end_to_end.script_args("/w.pth", "/f.npy", torch.device("cpu"), "bf16", {"cleaning_passes": None})
    assert args[::2] == ["-a"] * 5
    values = dict(a.split("=", 1) for a in args[1::2])
    assert values == {"frames": "/f.npy", "weights": "/w.pth", "device": "cpu", "precision": "bf16", "options": '{"cleaning_passes": null}'}


def test_prepare_engine_follows_the_precision(tiny_weights, native_bf16):
    engine = bench.prepare_engine(tiny_weights, torch.device("cpu"), "bf16")
    assert engine.dtype == torch.bfloat16
    assert engine.model.conv_last.weight.dtype == torch.bfloat16
    assert engine.model.spynet.mean.dtype == torch.float32  # the engine keeps SPyNet in float32
    engine = bench.prepare_engine(tiny_weights, torch.device("cpu"), "fp32")
    assert engine.dtype == torch.float32 and all(p.dtype == torch.float32 for p in engine.model.parameters())


def test_prepare_engine_keeps_each_familys_flow_in_fp32(tiny_realbasicvsr_checkpoint, native_bf16):
    engine = bench.prepare_engine(tiny_realbasicvsr_checkpoint, "cpu", "bf16")
    assert engine.descriptor.fp32_modules == ("basicvsr.spynet",)
    assert all(p.dtype == torch.float32 for p in engine.model.basicvsr.spynet.parameters())
    assert engine.model.basicvsr.conv_last.weight.dtype == torch.bfloat16


# ---------------------------------------------------------------------------------------------
# the reference: its checkpoint, its family, its programs
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
    path = tmp_path / "basicvsr.pth"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in BasicVSR(BasicVSRConfig(8, 1)).state_dict().items()}}, path)
    with pytest.raises(ValueError, match="BasicVSR checkpoint; vsbasicvsrpp has BasicVSR\\+\\+ networks only"):
        bench.reference_state_dict(path)


def test_skip_reason():
    assert bench.skip_reason(arch.get("basicvsrpp")) is None
    for family in ("basicvsr", "realbasicvsr"):
        reason = bench.skip_reason(arch.get(family))
        assert reason == f"vsbasicvsrpp has BasicVSR++ networks only, not {arch.get(family).name}"


def test_default_reference_venv():
    path = bench.default_reference_venv()
    assert path.name == "reference-venv" and path.parent.name == "vsvsrpp"


def test_reference_skipped_for_other_families(tmp_path):
    venv = tmp_path / "never-built"
    result = bench.run_benchmark(_tiny(arch="basicvsr", reference=True, reference_venv=venv))
    assert result.network == "BasicVSR c8n1 x4, random weights"
    assert result.notes == ["reference skipped: vsbasicvsrpp has BasicVSR++ networks only, not BasicVSR"]
    assert result.reference_env is None and not venv.exists()  # not even attempted
    (row,) = result.rows
    assert row.model is not None and row.model.seconds > 0  # the rest still runs
    assert row.reference is None and row.end_to_end is None and row.notes == []


_FAKE_REFERENCE = '''
from vsvsrpp.arch.basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig


class BasicVSRPlusPlusNet(BasicVSRPlusPlus):
    """Stands in for vsbasicvsrpp's network: the same names, the same constructor."""

    def __init__(self, mid_channels, num_blocks, is_low_res_input):
        super().__init__(BasicVSRPPConfig(mid_channels, num_blocks, is_low_res_input))
'''


@pytest.fixture
def fake_reference_venv(tmp_path):
    """A "venv" whose python is ours with a fake vsbasicvsrpp on its path (set by the wrapper:
    the benchmark clears PYTHONPATH for its children)."""
    site = tmp_path / "site"
    (site / "vsbasicvsrpp").mkdir(parents=True)
    (site / "vsbasicvsrpp" / "__init__.py").write_text("")
    (site / "vsbasicvsrpp" / "basicvsr_plusplus_net.py").write_text(_FAKE_REFERENCE)
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return venv


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in venv is a shell script")
def test_reference_programs_run_in_another_python(fake_reference_venv):
    result = bench.run_benchmark(_tiny(reference=True, reference_venv=fake_reference_venv))
    env = result.reference_env
    assert env["created"] is False and env["python"] == str(fake_reference_venv / "bin" / "python")
    assert env["torch"] == torch.__version__ and env["version"] is None  # the probe's versions
    assert result.notes == []
    for row in result.rows:
        assert row.notes == [] and row.reference.frames == 2 and row.reference.seconds > 0
        assert row.speed_up == pytest.approx(row.reference.seconds / row.model.seconds)
    assert "# reference: vsbasicvsrpp ? (BasicVSRPlusPlusNet)" in result.format_table()


def test_reference_timer_reports_failed_jobs(tmp_path, tiny_weights, monkeypatch, capsys):
    # in this process, to be quick: the programs' folder and the fake package on sys.path
    from vsvsrpp.tools.bench import reference
    from vsvsrpp.tools.bench.programs import reference_timer

    site = tmp_path / "site" / "vsbasicvsrpp"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    (site / "basicvsr_plusplus_net.py").write_text(_FAKE_REFERENCE)
    monkeypatch.syspath_prepend(str(programs.FOLDER))
    monkeypatch.syspath_prepend(str(site.parent))
    for name in ("forward_timing", "vsbasicvsrpp", "vsbasicvsrpp.basicvsr_plusplus_net"):
        monkeypatch.delitem(sys.modules, name, raising=False)  # restored (absent) afterwards
    frames = tmp_path / "f.npy"
    np.save(frames, bench.synthetic_frames(2, 32, 32))
    sd, config = bench.reference_state_dict(tiny_weights)
    torch.save(sd, tmp_path / "sd.pth")
    jobs = [{"index": 0, "frames": str(frames), "precision": "fp32"}, {"index": 1, "frames": str(tmp_path / "x.npy"), "precision": "bf16"}]
    spec = reference._timer_spec(tmp_path / "sd.pth", config, jobs, "cpu", 1, torch.get_num_threads())
    assert reference_timer.main([json.dumps(spec)]) == 0
    good, bad = json.loads(capsys.readouterr().out)["results"]
    assert good["index"] == 0 and good["seconds"] > 0 and good["output_shape"] == [1, 2, 3, 128, 128]
    assert good["dtype"] == "float32" and bad["dtype"] == "bfloat16"  # named from runtime.device.PRECISIONS
    assert bad["index"] == 1 and "seconds" not in bad and "x.npy" in bad["error"]  # one job failing stops none


def test_reference_unavailable_without_the_package(tmp_path, tiny_weights):
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)  # a Python without vsbasicvsrpp
    assert bench.reference.probe_reference(python) is None
    with pytest.raises(bench.ReferenceUnavailable, match="reference timer failed"):
        bench.time_reference(python, tiny_weights, [], "cpu", tmp_path)


def test_programs_are_installed_and_independent():
    folder = programs.FOLDER
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["vsvsrpp.tools.bench.programs"]
    for path in folder.iterdir():
        if path.is_file() and path.suffix != ".py":  # modules are installed anyway; the rest is data
            assert any(path.match(p) for p in patterns), f"{path.name} is not in package-data"
    assert programs.path("end_to_end.vpy").is_file()
    with pytest.raises(FileNotFoundError):
        programs.path("missing.vpy")
    for name in ("reference_probe.py", "reference_timer.py", "forward_timing.py"):
        tree = ast.parse((folder / name).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.split(".")[0] == "vsvsrpp" for m in imported), name  # they run in the reference venv


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


def test_to_json_infinities_are_null():
    doc = json.loads(_result([_row(model=bench.Timing(0.0, 10))]).to_json())
    assert doc["results"][0]["model_only"]["fps"] is None


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------


def test_cli_help(capsys):
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--sizes", "--frames", "--device", "--precision", "--model-only", "--reference", "--json", "--weights",
                   "--model", "--arch", "--mid-channels", "--num-blocks", "--refine-threshold", "realbasicvsr"):  # fmt: skip
        assert option in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "180"], "bad size"),
        (["--precision", "fp8"], "bad precision"),
        (["--weights", "/nonexistent/x.pth"], "weights file not found"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "reds4", "--weights", "/x.pth"], "not allowed with argument"),
        (["--arch", "edvr"], "invalid choice"),
        (["--weights", "/x.pth", "--arch", "basicvsr"], "--arch describe random weights"),
        (["--model", "reds4", "--mid-channels", "8", "--num-blocks", "1"], "--mid-channels, --num-blocks describe random weights"),
        (["--mid-channels", "8", "--num-blocks", "1", "--cleaning-passes", "2"], "cleaning_passes does not apply to BasicVSR++"),
        # issue 26, item 10: an internal deformable-convolution shape error once the network ran
        (["--mid-channels", "4", "--num-blocks", "1"], "mid_channels must be a multiple of 8 for BasicVSR++"),
    ],
)
def test_cli_bad_options(capsys, args, message):
    assert cli.main(["bench", *args]) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_cli_download_failure(capsys, monkeypatch):
    def fail(info, *, progress=None):
        raise download.DownloadError(f"no network for {info.name}")

    monkeypatch.setattr(download, "fetch", fail)
    assert cli.main(["bench", "--model", "reds4", "--model-only"]) == cli.EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out == "" and "no network for reds4" in captured.err


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


def test_cli_weights_and_model_of_another_family(capsys, monkeypatch, tiny_realbasicvsr_checkpoint):
    base = ["bench", "--sizes", "32x48", "--frames", "2", "--device", "cpu", "--model-only", "--json"]
    assert cli.main([*base, "--weights", str(tiny_realbasicvsr_checkpoint)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["network"] == "RealBasicVSR c8n1+1 x4, weights tiny_real.pth"
    assert doc["results"][0]["model_only"]["ms_per_frame"] > 0
    monkeypatch.setattr(download, "fetch", lambda info, *, progress=None: tiny_realbasicvsr_checkpoint)
    assert cli.main([*base, "--model", "realbasicvsr", "--cleaning-passes", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["network"] == "RealBasicVSR c8n1+1 x4, model realbasicvsr"
    assert doc["results"][0]["model_only"]["ms_per_frame"] > 0


@pytest.mark.slow
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
    assert float(bf16[2]) > 0  # model only runs bf16 on the CPU (fp32 where it has no native bf16)
    assert float(bf16[4]) > 0  # end to end passes precision="bf16" to the filter
    fell_back = "64x64 bf16: ran as fp32: no native bf16 on this CPU" in out
    assert fell_back == (not device.cpu_has_native_bf16())
    assert "64x64 fp32: vspipe start-up subtracted" in out and "vspipe's own timer" in out


@pytest.mark.slow
def test_cli_realbasicvsr_end_to_end_without_reference(capsys, tmp_path):
    venv = tmp_path / "never-built"
    argv = ["bench", "--sizes", "64x64", "--frames", "2", "--device", "cpu", "--json", "--arch", "realbasicvsr",
            "--mid-channels", "8", "--num-blocks", "1", "--cleaning-passes", "1", "--reference", str(venv)]  # fmt: skip
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["network"] == "RealBasicVSR c8n1+1 x4, random weights"
    (row,) = doc["results"]
    assert row["notes"] == [] and row["model_only"]["ms_per_frame"] > 0
    assert row["end_to_end"]["ms_per_frame"] > 0 and row["end_to_end"]["startup_seconds_subtracted"] > 0
    assert row["reference"] is None and doc["reference_environment"] is None
    assert doc["notes"] == ["reference skipped: vsbasicvsrpp has BasicVSR++ networks only, not RealBasicVSR"]
    assert not venv.exists()
