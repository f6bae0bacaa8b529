"""The whole run: every (size, precision) measured as :class:`BenchOptions` asks."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...runtime.device import resolve_device, resolve_precision
from .end_to_end import find_vspipe, time_end_to_end
from .environment import environment_info, load_average
from .model_only import synthetic_frames, time_model_only
from .network import BenchNetwork, select_network
from .options import BenchOptions
from .reference import REFERENCE_CLASS, ReferenceUnavailable, ensure_reference_venv, skip_reason, time_reference
from .report import BenchResult, BenchRow, Timing

log = logging.getLogger("vsvsrpp.bench")


def run_benchmark(options: BenchOptions) -> BenchResult:
    """Run every measurement the options ask for; failures become notes, not errors.

    For each size a synthetic clip (:func:`~vsvsrpp.tools.bench.model_only.synthetic_frames`)
    is timed model only and end to end in each precision; the reference, when asked for and
    available, times all of them at the end. Progress goes to the ``vsvsrpp.bench`` logger.

    Raises:
        BenchError: for invalid options, or a checkpoint that cannot be loaded.
        vsvsrpp.hub.download.DownloadError: if a registry model cannot be downloaded.
    """
    options.validate()
    device = resolve_device(options.device)
    env = environment_info(device)
    with tempfile.TemporaryDirectory(prefix="vsvsrpp-bench-") as tmp:
        run = _Run(options, device, Path(tmp))
        run.measure_all()
    load = load_average()
    if load is not None:
        env["load_average_end"] = load
    return BenchResult(env, run.network.name, options.frames, run.rows, run.notes, run.reference_env)


class _Run:
    """One benchmark run in its working directory: the network, the tools, the rows, the notes."""

    def __init__(self, options: BenchOptions, device: torch.device, workdir: Path):
        self.options = options
        self.device = device
        self.workdir = workdir
        self.rows: list[BenchRow] = []
        self.notes: list[str] = []
        self.reference_env: dict[str, Any] | None = None
        self.network: BenchNetwork = select_network(options, workdir)
        self.vspipe = None if options.model_only else self._find_vspipe()
        self.reference_python = self._reference_python() if options.reference else None

    def _find_vspipe(self) -> str | None:
        vspipe = find_vspipe()
        if vspipe is None:
            self.notes.append("end to end skipped: vspipe not found next to the interpreter or on PATH")
        return vspipe

    def _reference_python(self) -> str | None:
        """The reference venv's interpreter, or None with a note saying why not."""
        reason = skip_reason(self.network.architecture)
        if reason is not None:
            return self._skip_reference(reason)
        try:
            self.reference_env = ensure_reference_venv(self.options.reference_venv)
        except (ReferenceUnavailable, OSError) as e:
            return self._skip_reference(str(e))
        return self.reference_env["python"]

    def _skip_reference(self, reason: str) -> None:
        log.warning("reference skipped: %s", reason)
        self.notes.append(f"reference skipped: {reason}")

    def measure_all(self) -> None:
        """Every (size, precision) row, then the reference over all of them."""
        jobs = []
        for h, w in self.options.sizes:
            frames = synthetic_frames(self.options.frames, h, w, self.options.seed)
            npy = self.workdir / f"frames_{h}x{w}.npy"
            np.save(npy, frames)
            for precision in self.options.precisions:
                row = BenchRow(h, w, precision, self.options.frames)
                self.rows.append(row)
                self._model_only(row, frames)
                if self.vspipe is not None:
                    self._end_to_end(row, npy)
                jobs.append({"index": len(self.rows) - 1, "frames": str(npy), "precision": precision})
            del frames
        if self.reference_python is not None and jobs:
            self._reference(jobs)

    def _model_only(self, row: BenchRow, frames: np.ndarray) -> None:
        log.info("model only %s %s (%d frames) ...", row.size, row.precision, row.frames)
        ran = resolve_precision(row.precision, self.device)
        if ran != row.precision:  # bf16 on a CPU without native bf16
            row.notes.append(f"ran as {ran}: no native {row.precision} on this CPU (the reference ran {row.precision})")
        try:
            row.model = time_model_only(
                self.network.path, frames, self.device, row.precision, self.options.repeat, self.network.options
            )
            log.info("  %.1f ms/frame", row.model.ms_per_frame)
        except Exception as e:  # unsupported dtype on this device, out of memory...
            log.warning("model only %s %s failed: %s", row.size, row.precision, e)
            row.notes.append(f"model only failed: {type(e).__name__}: {e}")

    def _end_to_end(self, row: BenchRow, npy: Path) -> None:
        log.info("end to end %s %s (vspipe) ...", row.size, row.precision)
        try:
            row.end_to_end, row.startup_seconds, row.vspipe_seconds = time_end_to_end(
                self.network.path, npy, row.frames, self.device, row.precision, self.vspipe, self.network.options
            )
            log.info("  %.1f ms/frame (start-up %.2f s subtracted)", row.end_to_end.ms_per_frame, row.startup_seconds)
        except Exception as e:
            log.warning("end to end %s %s failed: %s", row.size, row.precision, e)
            row.notes.append(f"end to end failed: {e}")

    def _reference(self, jobs: list[dict[str, Any]]) -> None:
        log.info("reference (%s) on %d configuration(s) ...", REFERENCE_CLASS, len(jobs))
        try:
            results = time_reference(
                self.reference_python, self.network.path, jobs, self.device, self.workdir, self.options.repeat
            )
        except (ReferenceUnavailable, ValueError, OSError) as e:
            self._skip_reference(str(e))
            return
        for job in results:
            row = self.rows[job["index"]]
            if "seconds" in job:
                row.reference = Timing(job["seconds"], row.frames)
                log.info("  %s %s: %.1f ms/frame", row.size, row.precision, row.reference.ms_per_frame)
            else:
                row.notes.append(f"reference failed: {job.get('error')}")
