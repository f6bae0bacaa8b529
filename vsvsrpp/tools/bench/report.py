"""Benchmark results: timings, one row per (size, precision), and the table and JSON of a run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .reference import REFERENCE_CLASS, REFERENCE_PACKAGE

#: Table columns: (header, width, alignment).
COLUMNS = (
    ("size", 9, "<"),
    ("prec", 4, "<"),
    ("model ms/f", 10, ">"),
    ("model fps", 9, ">"),
    ("e2e ms/f", 9, ">"),
    ("e2e fps", 8, ">"),
    ("e2e/model", 9, ">"),
    ("ref ms/f", 9, ">"),
    ("ref fps", 8, ">"),
    ("speed-up", 8, ">"),
)

LEGEND = (
    "model: one forward over the clip after a warm-up; e2e: vspipe -c y4m to /dev/null, one window, "
    "start-up (vspipe --info) subtracted; e2e/model = end-to-end / model-only time; "
    "speed-up = reference time / our model-only time."
)


@dataclass(frozen=True)
class Timing:
    """Wall-clock ``seconds`` for ``frames`` frames."""

    seconds: float
    frames: int

    @property
    def ms_per_frame(self) -> float:
        """Milliseconds per frame."""
        return 1000.0 * self.seconds / self.frames

    @property
    def fps(self) -> float:
        """Frames per second (infinite for a zero time)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds, "ms_per_frame": self.ms_per_frame, "fps": self.fps}


@dataclass
class BenchRow:
    """The measurements of one (size, precision) pair; ``None`` where not measured.

    Attributes:
        height, width: input size in pixels; precision: its name; frames: frames per clip.
        model, end_to_end, reference: the timings.
        startup_seconds: the vspipe start-up subtracted from the end-to-end time.
        vspipe_seconds: vspipe's own figure for the run (``-p``), None if it printed none.
        notes: what failed or was skipped for this row.
    """

    height: int
    width: int
    precision: str
    frames: int
    model: Timing | None = None
    end_to_end: Timing | None = None
    startup_seconds: float | None = None
    vspipe_seconds: float | None = None
    reference: Timing | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> str:
        """``"HEIGHTxWIDTH"``."""
        return f"{self.height}x{self.width}"

    @property
    def end_to_end_ratio(self) -> float | None:
        """End-to-end time / model-only time (1.0: the pipeline costs nothing)."""
        if self.model is None or self.end_to_end is None:
            return None
        return self.end_to_end.seconds / self.model.seconds

    @property
    def speed_up(self) -> float | None:
        """Reference time / our model-only time (> 1: ours is faster)."""
        if self.model is None or self.reference is None:
            return None
        return self.reference.seconds / self.model.seconds

    def _end_to_end_dict(self) -> dict[str, Any] | None:
        if self.end_to_end is None:
            return None
        return dict(
            self.end_to_end.to_dict(),
            startup_seconds_subtracted=self.startup_seconds,
            vspipe_own_output_seconds=self.vspipe_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "height": self.height,
            "width": self.width,
            "precision": self.precision,
            "frames": self.frames,
            "model_only": self.model.to_dict() if self.model else None,
            "end_to_end": self._end_to_end_dict(),
            "reference": self.reference.to_dict() if self.reference else None,
            "end_to_end_over_model_only": self.end_to_end_ratio,
            "speed_up_over_reference": self.speed_up,
            "notes": list(self.notes),
        }

    def cells(self) -> list[str]:
        """The row's table cells, in :data:`COLUMNS` order (``-`` where not measured)."""

        def fmt(value: float | None, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        def pair(t: Timing | None) -> list[str]:
            return [fmt(t.ms_per_frame if t else None, ".1f"), fmt(t.fps if t else None, ".3f")]

        return [
            self.size,
            self.precision,
            *pair(self.model),
            *pair(self.end_to_end),
            fmt(self.end_to_end_ratio, ".3f"),
            *pair(self.reference),
            fmt(self.speed_up, ".3f"),
        ]

    def note_lines(self) -> list[str]:
        """``"SIZE PRECISION: ..."`` lines: the start-up subtracted, then the notes."""
        lines = []
        if self.startup_seconds is not None:
            own = ""
            if self.vspipe_seconds is not None:
                own = f"; vspipe's own timer {1000 * self.vspipe_seconds / self.frames:.1f} ms/frame"
            lines.append(f"{self.size} {self.precision}: vspipe start-up subtracted {self.startup_seconds:.2f} s{own}")
        return lines + [f"{self.size} {self.precision}: {note}" for note in self.notes]


def _finite(o: Any) -> Any:
    """``o`` with non-finite floats replaced by None, through dicts and lists."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_finite(v) for v in o]
    return o


@dataclass
class BenchResult:
    """Everything a benchmark run measured, with the environment it ran in.

    Attributes:
        environment: :func:`~vsvsrpp.tools.bench.environment.environment_info`, plus
            ``load_average_end``.
        network: what was timed, e.g. ``"BasicVSR++ c64n7 x4, random weights"``.
        frames: frames per clip.
        rows: one per (size, precision), sizes outermost.
        notes: run-wide notes (a skipped end to end or reference, and why).
        reference_env: the reference venv's description, when it was used.
    """

    environment: dict[str, Any]
    network: str
    frames: int
    rows: list[BenchRow]
    notes: list[str] = field(default_factory=list)
    reference_env: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "network": self.network,
            "frames": self.frames,
            "results": [r.to_dict() for r in self.rows],
            "reference_environment": self.reference_env,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON document (infinities, impossible here in practice, as null)."""
        return json.dumps(_finite(self.to_dict()), indent=indent, allow_nan=False)

    def _header(self) -> list[str]:
        env = self.environment

        def get(d: dict[str, Any], key: str) -> Any:
            return "?" if d.get(key) is None else d[key]

        if env.get("device_type") == "cuda":
            where = f"{env['device']} ({get(env, 'gpu')}, driver {get(env, 'gpu_driver')}, CUDA {get(env, 'cuda')})"
        else:
            where = f"{env['device']} ({get(env, 'cpu')}, {get(env, 'cpu_count')} logical CPUs)"
        lines = [
            f"# vsvsrpp bench: {self.network}, {self.frames} frames per clip",
            f"# device: {where}; torch {env['torch']} ({env['threads']} threads), "
            f"torchvision {get(env, 'torchvision')}, VapourSynth {get(env, 'vapoursynth')}, Python {env['python']}",
        ]
        if self.reference_env:
            r = self.reference_env
            lines.append(
                f"# reference: {REFERENCE_PACKAGE} {get(r, 'version')} ({REFERENCE_CLASS}), "
                f"torch {get(r, 'torch')}, mmengine {get(r, 'mmengine')}, venv {get(r, 'venv')}"
            )
        if "load_average_start" in env:
            start, end = env["load_average_start"], env.get("load_average_end")
            lines.append(
                f"# load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in start)} at start"
                + (f", {' '.join(f'{x:.2f}' for x in end)} at end" if end else "")
            )
        return lines

    def format_table(self) -> str:
        """A plain-text header (environment), one table row per (size, precision), the legend,
        then the rows' notes and the run's notes."""
        header = "  ".join(f"{name:{align}{width}}" for name, width, align in COLUMNS)
        lines = [*self._header(), "", header, "-" * len(header)]
        for row in self.rows:
            lines.append("  ".join(f"{c:{align}{width}}" for c, (_, width, align) in zip(row.cells(), COLUMNS, strict=True)))
        lines += ["", LEGEND]
        for row in self.rows:
            lines += row.note_lines()
        lines += self.notes
        return "\n".join(lines)
