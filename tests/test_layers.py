"""The package's layers, read from the source: nothing below the command line imports it, and
the command line's help and usage errors import none of the heavy libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vsvsrpp"


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``path`` names (function
    level included), relative imports resolved to absolute names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if path.name == "__init__.py":
        module = module.removesuffix(".__init__")
        package = module
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def test_imported_modules_resolves_relative_and_function_level_imports(tmp_path):
    sample = PACKAGE / "cluster" / "driver.py"
    names = imported_modules(sample)
    assert "vsvsrpp.pipeline.source" in names  # a function-level relative import
    assert "vsvsrpp.errors" in names


def test_nothing_below_the_command_line_imports_it():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        bad = sorted(m for m in imported_modules(path) if m == "vsvsrpp.cli" or m.startswith("vsvsrpp.cli."))
        if bad:
            offenders[str(rel)] = bad
    assert offenders == {}


_PROBE = """
import json, sys, time
from vsvsrpp import cli
started = time.perf_counter()
code = cli.main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "torchvision", "numpy", "vapoursynth") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy, "seconds": time.perf_counter() - started}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["upscale", "--help"], 0),
        (["compare", "--help"], 0),
        (["bench", "--help"], 0),
        (["eval", "--help"], 0),
        (["download", "--help"], 0),
        (["upscale", "missing-input.mp4", "out.mkv"], 2),
        (["upscale", "in.mp4", "out.mkv", "--window", "0"], 2),
        (["upscale", "in.mp4", "out.mkv", "--precision", "fp64"], 2),
        (["compare", "missing-input.mp4"], 2),
    ],
)
def test_help_and_usage_errors_import_no_heavy_library(argv, code, tmp_path):
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == code, proc.stderr
    assert report["heavy"] == [], f"{argv} imported {report['heavy']}"


def test_family_names_and_options_declared_without_torch_match_the_families():
    from vsvsrpp import arch
    from vsvsrpp.arch import options

    assert tuple((a.id, a.name) for a in arch.ARCHITECTURES) == options.FAMILIES
    assert {a.id: a.options for a in arch.ARCHITECTURES} == options.FAMILY_OPTIONS
    assert {o.name for o in arch.CALL_OPTIONS} == {o.name for a in arch.ARCHITECTURES for o in a.options}


def test_bench_help_states_the_random_networks_defaults(capsys):
    from vsvsrpp import cli
    from vsvsrpp.tools.bench import BenchOptions

    assert cli.main(["bench", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {BenchOptions.arch})" in text
    assert f"(default: {BenchOptions.mid_channels}," in text and f"(default: {BenchOptions.num_blocks}," in text


def test_precision_names_match_the_runtime():
    from vsvsrpp.plugin.params import PRECISION_NAMES
    from vsvsrpp.runtime.device import PRECISIONS

    assert PRECISION_NAMES == ("auto", *PRECISIONS)


def test_run_options_are_generated_from_the_filter_arguments():
    from vsvsrpp import cli
    from vsvsrpp.cli.options import run_kwargs
    from vsvsrpp.plugin.params import PARAMS

    offered = [p for p in PARAMS if p.parse is not None]
    assert {p.name for p in offered} >= {"device", "window", "overlap", "precision", "tile", "exact_tiles", "offload", "dither"}
    argv = ["upscale", "in.mp4", "out.mkv", "--precision", "bf16", "--tile", "96", "--exact-tiles", "no", "--offload", "yes",
            "--dither", "ordered", "--scene-threshold", "0.2", "--cleaning-passes", "2"]
    args = cli.build_parser("upscale").parse_args(argv)
    assert run_kwargs(args) == {"precision": "bf16", "tile": 96, "exact_tiles": False, "offload": True, "dither": "ordered",
                                "scene_threshold": 0.2, "cleaning_passes": 2}
