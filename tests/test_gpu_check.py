"""scripts/gpu_check's dry run: the same script as on a GPU machine, the CUDA steps listed and skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_lists_every_step_and_writes_its_report(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["ok"] is True
    steps = report["steps"]
    assert list(steps) == ["install", "environment", "cuda tests", "bench"]
    assert steps["environment"]["status"] == "ok" and report["environment"]["torch"]
    for name in ("install", "cuda tests", "bench"):
        assert steps[name]["status"] == "skipped (dry run)" and steps[name]["commands"]
    assert any("-m cuda" in c for c in steps["cuda tests"]["commands"])
    assert any("--device cuda" in c and "fp16,bf16,fp32" in c for c in steps["bench"]["commands"])
    log = (tmp_path / "gpu_check.log").read_text()
    assert "dry run, skipped" in log and "gpu_check.json: ok" in log
