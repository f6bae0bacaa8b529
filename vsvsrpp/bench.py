"""Speed benchmark: the network alone, the whole VapourSynth pipeline, and the reference.

For every (size, precision) pair, on the same synthetic clip (a smooth random texture panning
two pixels per frame; speed does not depend on the picture):

* **model only**: one forward of the network as :func:`vsvsrpp.load_model` returns it, over all
  ``frames`` frames at once, after a warm-up forward of two frames at the same size (oneDNN and
  cuDNN pick their kernels per shape). The input is on the device before the clock starts; on
  CUDA the device is synchronised before and after. With ``repeat > 1`` the best run is kept.
* **end to end**: ``vspipe -c y4m SCRIPT /dev/null`` of a generated script that builds the clip
  from the frames (saved as ``.npy``), runs :func:`vsvsrpp.BasicVSRPP` with one window covering
  the clip (no overlap, no scene detection) and converts the result to YUV420P8. The script's
  start-up (Python imports, model load), measured with ``vspipe --info`` on the same script,
  is subtracted.
* **reference** (optional): the network class of the ``vsbasicvsrpp`` package (HolyWu's
  VapourSynth plugin, built on mmengine), installed into a throwaway virtual environment with the
  same torch and torchvision versions as this one, built with the same configuration, loaded with
  the same weights, and timed like *model only* in a subprocess with the same thread count, in
  its own defaults (eager, ``cpu_cache=False``). The speed-up is reference time / ours.

Weights are random at the official c64n7 shape unless a checkpoint is given.

Precision: *model only* runs the network as :class:`~vsvsrpp.engine.Engine` prepares it for the
precision (:func:`prepare_network`: reduced-precision convolutions; SPyNet, the flow warping
and the deformable sampling in float32). End to end passes the same precision to
:func:`vsvsrpp.BasicVSRPP` (:func:`filter_kwargs`; always explicitly, since the filter's own
default is "auto": fp16 on CUDA). The reference casts its whole network, as it does for RGBH.

Progress goes to the ``vsvsrpp.bench`` logger; the results are returned as :class:`BenchResult`
(:meth:`~BenchResult.format_table`, :meth:`~BenchResult.to_json`).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig
from .engine import Engine
from .loading import detect_arch, detect_config, load_model, read_state_dict

log = logging.getLogger("vsvsrpp.bench")

__all__ = [
    "PRECISIONS",
    "BenchError",
    "BenchOptions",
    "BenchResult",
    "BenchRow",
    "ReferenceUnavailable",
    "Timing",
    "default_reference_venv",
    "ensure_reference_venv",
    "environment_info",
    "filter_kwargs",
    "parse_precisions",
    "parse_sizes",
    "prepare_network",
    "reference_state_dict",
    "run_benchmark",
    "synthetic_frames",
    "time_end_to_end",
    "time_model_only",
    "time_reference",
    "write_random_checkpoint",
]

#: Precision names and the dtype *model only* casts the network and its input to.
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

REFERENCE_PACKAGE = "vsbasicvsrpp"
REFERENCE_MODULE = "vsbasicvsrpp.basicvsr_plusplus_net"
REFERENCE_CLASS = "BasicVSRPlusPlusNet"
#: Written into a reference venv this module built: how and when it was made.
REFERENCE_MARKER = "vsvsrpp-reference.json"


class BenchError(ValueError):
    """Options that cannot be benchmarked (bad size, unknown precision, missing file...)."""


class ReferenceUnavailable(RuntimeError):
    """The reference environment could not be built or run (the message says why)."""


# ---------------------------------------------------------------------------------------------
# options and results
# ---------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"180x320,540x960"`` -> ``[(180, 320), (540, 960)]`` (height x width, in that order).

    Raises:
        BenchError: for anything else than comma-separated ``HxW`` with positive integers.
    """
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        h, sep, w = part.partition("x")
        if not sep or not h.isdigit() or not w.isdigit() or int(h) <= 0 or int(w) <= 0:
            raise BenchError(f"bad size {part!r}: expected HEIGHTxWIDTH, e.g. 180x320")
        sizes.append((int(h), int(w)))
    if not sizes:
        raise BenchError("no size given: expected HEIGHTxWIDTH[,HEIGHTxWIDTH...], e.g. 180x320")
    return list(dict.fromkeys(sizes))


def parse_precisions(text: str) -> list[str]:
    """``"fp32,fp16"`` -> ``["fp32", "fp16"]``.

    Raises:
        BenchError: for a name not in :data:`PRECISIONS`.
    """
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PRECISIONS]
    if bad or not names:
        raise BenchError(f"bad precision {', '.join(bad) or repr(text)}: expected one or more of {', '.join(PRECISIONS)}")
    return list(dict.fromkeys(names))


@dataclass
class BenchOptions:
    """What :func:`run_benchmark` measures.

    Attributes:
        sizes: input (height, width) pairs.
        frames: frames per clip (one forward / one window over all of them).
        device: torch device (``None``: CUDA when available, else CPU).
        precisions: names from :data:`PRECISIONS`.
        model_only: skip the end-to-end runs.
        reference: also time the ``vsbasicvsrpp`` network.
        reference_venv: where its venv lives (``None``: :func:`default_reference_venv`).
        weights: checkpoint to time (``None``: random weights of ``mid_channels``/``num_blocks``).
        mid_channels, num_blocks: shape of the random 4x BasicVSR++ (64/7: the official c64n7).
        repeat: model-only and reference runs per measurement; the fastest is kept.
        seed: seed of the random weights and frames.
    """

    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(180, 320)])
    frames: int = 10
    device: str | None = None
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    model_only: bool = False
    reference: bool = False
    reference_venv: Path | None = None
    weights: Path | None = None
    mid_channels: int = 64
    num_blocks: int = 7
    repeat: int = 1
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`BenchError` for options that cannot run."""
        if not self.sizes:
            raise BenchError("no sizes given")
        for h, w in self.sizes:
            if h <= 0 or w <= 0:
                raise BenchError(f"bad size {h}x{w}")
        if self.frames < 1:
            raise BenchError(f"frames must be >= 1, got {self.frames}")
        if self.repeat < 1:
            raise BenchError(f"repeat must be >= 1, got {self.repeat}")
        if self.mid_channels < 1 or self.num_blocks < 1:
            raise BenchError("mid_channels and num_blocks must be >= 1")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise BenchError(f"bad precision {', '.join(bad)}: expected one of {', '.join(PRECISIONS)}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise BenchError(f"weights file not found: {self.weights}")
        try:
            device = torch.device(self.device) if self.device is not None else None
        except (RuntimeError, TypeError) as e:
            raise BenchError(f"invalid device {self.device!r}: {e}") from None
        if device is not None and device.type == "cuda" and not torch.cuda.is_available():
            raise BenchError(f"device {self.device!r} requested but CUDA is not available; use --device cpu")


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds for ``frames`` frames."""

    seconds: float
    frames: int

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds, "ms_per_frame": self.ms_per_frame, "fps": self.fps}


@dataclass
class BenchRow:
    """The measurements of one (size, precision) pair; ``None`` where not measured."""

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "height": self.height,
            "width": self.width,
            "precision": self.precision,
            "frames": self.frames,
            "model_only": self.model.to_dict() if self.model else None,
            "end_to_end": (
                dict(
                    self.end_to_end.to_dict(),
                    startup_seconds_subtracted=self.startup_seconds,
                    vspipe_own_output_seconds=self.vspipe_seconds,
                )
                if self.end_to_end
                else None
            ),
            "reference": self.reference.to_dict() if self.reference else None,
            "end_to_end_over_model_only": self.end_to_end_ratio,
            "speed_up_over_reference": self.speed_up,
            "notes": list(self.notes),
        }


@dataclass
class BenchResult:
    """Everything a benchmark run measured, with the environment it ran in."""

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

        def clean(o):
            if isinstance(o, float) and not np.isfinite(o):
                return None
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            return o

        return json.dumps(clean(self.to_dict()), indent=indent, allow_nan=False)

    def format_table(self) -> str:
        """A plain-text header (environment) and one table row per (size, precision)."""
        env = self.environment
        if env.get("device_type") == "cuda":
            where = f"{env['device']} ({env.get('gpu', '?')}, driver {env.get('gpu_driver', '?')}, CUDA {env.get('cuda', '?')})"
        else:
            where = f"{env['device']} ({env.get('cpu', '?')}, {env.get('cpu_count', '?')} logical CPUs)"
        lines = [
            f"# vsvsrpp bench: {self.network}, {self.frames} frames per clip",
            f"# device: {where}; torch {env['torch']} ({env['threads']} threads), "
            f"torchvision {env.get('torchvision', '?')}, VapourSynth {env.get('vapoursynth', '?')}, Python {env['python']}",
        ]
        if self.reference_env:
            r = self.reference_env
            lines.append(
                f"# reference: {REFERENCE_PACKAGE} {r.get('version', '?')} ({REFERENCE_CLASS}), "
                f"torch {r.get('torch', '?')}, mmengine {r.get('mmengine', '?')}, venv {r.get('venv', '?')}"
            )
        if "load_average_start" in env:
            start, end = env["load_average_start"], env.get("load_average_end")
            lines.append(
                f"# load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in start)} at start"
                + (f", {' '.join(f'{x:.2f}' for x in end)} at end" if end else "")
            )
        cols = [
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
        ]
        header = "  ".join(f"{name:{align}{width}}" for name, width, align in cols)
        lines += ["", header, "-" * len(header)]

        def fmt(value: float | None, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        for r in self.rows:
            cells = [
                r.size,
                r.precision,
                fmt(r.model.ms_per_frame if r.model else None, ".1f"),
                fmt(r.model.fps if r.model else None, ".3f"),
                fmt(r.end_to_end.ms_per_frame if r.end_to_end else None, ".1f"),
                fmt(r.end_to_end.fps if r.end_to_end else None, ".3f"),
                fmt(r.end_to_end_ratio, ".3f"),
                fmt(r.reference.ms_per_frame if r.reference else None, ".1f"),
                fmt(r.reference.fps if r.reference else None, ".3f"),
                fmt(r.speed_up, ".3f"),
            ]
            lines.append("  ".join(f"{c:{align}{width}}" for c, (_, width, align) in zip(cells, cols)))
        lines.append("")
        lines.append(
            "model: one forward over the clip after a warm-up; e2e: vspipe -c y4m to /dev/null, one window, "
            "start-up (vspipe --info) subtracted; e2e/model = end-to-end / model-only time; "
            "speed-up = reference time / our model-only time."
        )
        for r in self.rows:
            if r.startup_seconds is not None:
                own = (
                    f"; vspipe's own timer {1000 * r.vspipe_seconds / r.frames:.1f} ms/frame"
                    if r.vspipe_seconds is not None
                    else ""
                )
                lines.append(f"{r.size} {r.precision}: vspipe start-up subtracted {r.startup_seconds:.2f} s{own}")
            for note in r.notes:
                lines.append(f"{r.size} {r.precision}: {note}")
        lines.extend(self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# environment, weights and frames
# ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_driver() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_info(device: torch.device) -> dict[str, Any]:
    """Versions, device name, thread count and the CPU model or GPU name and driver."""
    info: dict[str, Any] = {
        "device": str(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "vapoursynth": _version("vapoursynth"),
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
            gpu_driver=_gpu_driver(),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = list(os.getloadavg())
    return info


def write_random_checkpoint(path: str | os.PathLike, mid_channels: int = 64, num_blocks: int = 7, seed: int = 0) -> Path:
    """Save a random-weight 4x BasicVSR++ in the official layout (``generator.`` keys)."""
    torch.manual_seed(seed)
    model = BasicVSRPlusPlus(BasicVSRPPConfig(mid_channels=mid_channels, num_blocks=num_blocks, is_low_res_input=True))
    path = Path(path)
    torch.save({"state_dict": {f"generator.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


def synthetic_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture panning 2 px per frame: ``(frames, 3, height, width)`` float32 in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    rows = -(-height // 4) + 2
    cols = -(-(width + 2 * frames) // 4) + 2
    texture = torch.rand(1, 3, rows, cols, generator=g)
    big = torch.nn.functional.interpolate(texture, scale_factor=4, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    out = torch.stack([big[:, 4 : 4 + height, 4 + 2 * i : 4 + 2 * i + width] for i in range(frames)])
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---------------------------------------------------------------------------------------------
# model only
# ---------------------------------------------------------------------------------------------


def prepare_network(weights: str | os.PathLike, device: torch.device, precision: str) -> tuple[torch.nn.Module, torch.dtype]:
    """The network as the engine runs it in ``precision``, and the dtype its input is given in."""
    engine = Engine(load_model(weights), device, precision=precision)
    return engine.model, engine.dtype


def time_model_only(
    weights: str | os.PathLike,
    frames: np.ndarray,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    repeat: int = 1,
) -> Timing:
    """Time one forward of the network over all of ``frames`` (``(t, 3, h, w)`` float32).

    The network is loaded with :func:`vsvsrpp.load_model` and prepared for ``precision`` by
    :func:`prepare_network`; a warm-up forward of (at most) two frames at the same size runs
    first. Returns the fastest of ``repeat`` runs.
    """
    device = torch.device(device)
    model, dtype = prepare_network(weights, device, precision)
    x = torch.from_numpy(frames)[None].to(device, dtype)
    best = float("inf")
    with torch.inference_mode():
        model(x[:, : min(2, x.shape[1])])
        for _ in range(repeat):
            _synchronize(device)
            t0 = time.perf_counter()
            out = model(x)
            _synchronize(device)
            best = min(best, time.perf_counter() - t0)
    if out.shape[-2:] != (frames.shape[-2] * model.scale, frames.shape[-1] * model.scale):
        raise RuntimeError(f"unexpected output shape {tuple(out.shape)}")
    del model, x, out
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Timing(best, frames.shape[0])


# ---------------------------------------------------------------------------------------------
# end to end (vspipe)
# ---------------------------------------------------------------------------------------------


def filter_kwargs(device: torch.device, precision: str) -> dict[str, Any]:
    """Keyword arguments of :func:`vsvsrpp.BasicVSRPP` in the end-to-end script, besides
    ``weights`` and the window. The precision is always explicit: the filter's default is
    "auto" (fp16 on CUDA)."""
    return {"device": str(device), "precision": precision}


_VPY = """\
# Generated by vsvsrpp.bench: the benchmark clip through vsvsrpp.BasicVSRPP.
import numpy as np
import vapoursynth as vs
import vsvsrpp

core = vs.core
frames = np.load({npy!r})
t, _, h, w = frames.shape
blank = core.std.BlankClip(format=vs.RGBS, width=w, height=h, length=t, keep=True)


def fill(n, f):
    out = f.copy()
    for plane in range(3):
        np.copyto(np.asarray(out[plane]), frames[n, plane])
    return out


clip = core.std.ModifyFrame(blank, blank, fill)
clip = vsvsrpp.BasicVSRPP(clip, weights={weights!r}, window=t, overlap=0, scene_detect=False, **{kwargs!r})
core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s="709").set_output()
"""


def find_vspipe() -> str | None:
    """``vspipe`` next to the running interpreter, else on PATH."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return shutil.which("vspipe", path=path)


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def time_end_to_end(
    weights: str | os.PathLike,
    frames_npy: str | os.PathLike,
    frames: int,
    device: str | torch.device,
    precision: str,
    workdir: str | os.PathLike,
    vspipe: str | None = None,
) -> tuple[Timing, float, float | None]:
    """Time ``vspipe -c y4m`` of the generated script to /dev/null, start-up subtracted.

    Returns:
        ``(timing, startup_seconds, vspipe_seconds)``: the start-up is ``vspipe --info`` on the
        same script; ``vspipe_seconds`` is vspipe's own "Output N frames in S seconds" (``-p``),
        None if it printed none. Should start-up noise exceed the run itself (tiny clips), the
        timing falls back to vspipe's own figure.

    Raises:
        RuntimeError: if vspipe is missing or fails (the message ends with its stderr).
    """
    vspipe = vspipe or find_vspipe()
    if vspipe is None:
        raise RuntimeError("vspipe not found next to the interpreter or on PATH")
    script = Path(workdir) / f"bench_{precision}.vpy"
    script.write_text(
        _VPY.format(npy=str(frames_npy), weights=str(weights), kwargs=filter_kwargs(torch.device(device), precision)),
        encoding="utf-8",
    )

    def run(args: list[str]) -> tuple[float, str]:
        t0 = time.perf_counter()
        proc = subprocess.run([vspipe, *args], capture_output=True, text=True, errors="replace")
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"vspipe {args[0]} failed (exit {proc.returncode}): {_tail(proc.stderr)}")
        return elapsed, proc.stderr

    startup, _ = run(["--info", str(script), "-"])
    total, stderr = run(["-p", "-c", "y4m", str(script), os.devnull])
    match = _VSPIPE_OUTPUT.search(stderr)
    own = float(match.group(2)) if match and int(match.group(1)) == frames else None
    seconds = total - startup
    if seconds <= 0:
        if own is None or own <= 0:
            raise RuntimeError(f"vspipe start-up ({startup:.2f} s) exceeded the whole run ({total:.2f} s); use more frames")
        log.warning("vspipe start-up noise exceeds the run; using vspipe's own timer")
        seconds = own
    return Timing(seconds, frames), startup, own


_VSPIPE_OUTPUT = re.compile(r"Output (\d+) frames in ([0-9.]+) seconds")


# ---------------------------------------------------------------------------------------------
# reference (vsbasicvsrpp in its own venv)
# ---------------------------------------------------------------------------------------------


def default_reference_venv() -> Path:
    """``<user cache dir>/vsvsrpp/reference-venv``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("vsvsrpp")) / "reference-venv"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


_PROBE = """\
import json, sys, importlib.metadata as md
import torch
import {module}
def v(d):
    try:
        return md.version(d)
    except md.PackageNotFoundError:
        return None
sys.stdout.write(json.dumps({{"version": v("{package}"), "torch": torch.__version__, "torchvision": v("torchvision"),
                  "mmengine": v("mmengine"), "numpy": v("numpy")}}))
""".format(module=REFERENCE_MODULE, package=REFERENCE_PACKAGE)


def _probe_reference(python: Path) -> dict[str, Any] | None:
    """Versions in the reference venv if its network module imports, else None."""
    if not python.is_file():
        return None
    proc = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, errors="replace", env=_child_env())
    if proc.returncode != 0:
        log.debug("reference probe failed: %s", _tail(proc.stderr))
        return None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def ensure_reference_venv(venv: str | os.PathLike | None = None) -> dict[str, Any]:
    """Create (or reuse) a venv holding the reference package, with our torch/torchvision pinned.

    The venv is made with ``python -m venv`` from the running interpreter, then
    ``pip install vsbasicvsrpp torch==<ours> torchvision==<ours>`` (public versions, without a
    ``+cu132``-style local tag; unpinned if that cannot be resolved). It is reused when the reference network module already imports in it.

    Returns:
        ``{"venv", "python", "created", "install_seconds", "version", "torch", ...}``.

    Raises:
        ReferenceUnavailable: if the venv cannot be made or the package cannot be installed
            (e.g. no network); the message says why.
    """
    venv = Path(venv) if venv is not None else default_reference_venv()
    python = _venv_python(venv)
    marker = venv / REFERENCE_MARKER
    found = _probe_reference(python)
    if found is not None:
        info = {"venv": str(venv), "python": str(python), "created": False, **found}
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
            info["install_seconds"] = previous.get("install_seconds")
            info["installed_at"] = previous.get("installed_at")
        except (OSError, ValueError):
            pass
        log.info("reusing the reference venv %s (%s %s, torch %s)", venv, REFERENCE_PACKAGE, found.get("version"), found.get("torch"))
        return info

    t0 = time.perf_counter()
    log.info("building the reference venv %s (python -m venv; pip install %s) ...", venv, REFERENCE_PACKAGE)
    venv.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or not python.is_file():
        raise ReferenceUnavailable(f"python -m venv {venv} failed: {_tail(proc.stderr or proc.stdout)}")
    # The public version: "2.15.0" also matches local builds such as 2.15.0+cu132 in an index.
    pins = [f"torch=={torch.__version__.split('+')[0]}"]
    tv = _version("torchvision")
    if tv:
        pins.append(f"torchvision=={tv.split('+')[0]}")
    install_log = venv / "vsvsrpp-install.log"
    attempts = [[REFERENCE_PACKAGE, *pins], [REFERENCE_PACKAGE]]
    errors = []
    for packages in attempts:
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *packages]
        log.info("  %s", " ".join(cmd[1:]))
        with open(install_log, "a", encoding="utf-8") as logf:
            logf.write(f"$ {' '.join(cmd)}\n")
            logf.flush()
            proc = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env=_child_env())
        if proc.returncode == 0:
            break
        tail = _tail(install_log.read_text(encoding="utf-8", errors="replace"), 4)
        errors.append(f"pip install {' '.join(packages)} failed (exit {proc.returncode}): {tail}")
        log.info("  failed; %s", "retrying without pins" if packages is not attempts[-1] else "giving up")
    else:
        raise ReferenceUnavailable("; ".join(errors) + f" (log: {install_log})")
    seconds = time.perf_counter() - t0
    found = _probe_reference(python)
    if found is None:
        raise ReferenceUnavailable(f"{REFERENCE_PACKAGE} installed in {venv} but {REFERENCE_MODULE} does not import (log: {install_log})")
    info = {
        "venv": str(venv),
        "python": str(python),
        "created": True,
        "install_seconds": seconds,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pinned": len(errors) == 0,
        **found,
    }
    marker.write_text(json.dumps(info, indent=2), encoding="utf-8")
    log.info("reference venv ready in %.0f s (%s %s, torch %s)", seconds, REFERENCE_PACKAGE, found.get("version"), found.get("torch"))
    return info


def reference_state_dict(weights: str | os.PathLike) -> tuple[dict[str, torch.Tensor], BasicVSRPPConfig]:
    """Our checkpoint as the state dict the reference's ``BasicVSRPlusPlusNet`` loads, and its config.

    Official checkpoints hold the generator under ``state_dict`` with ``generator.``-prefixed
    keys (the mmediting wrapper model); the reference network is the bare generator, whose
    parameter and buffer names are the official ones without the prefix (its SPyNet keeps
    ``spynet.mean``/``spynet.std`` buffers and ``basic_module.N.basic_module.M.conv.*`` convs, the
    deformable alignment ``deform_align.<branch>.weight/bias/conv_offset.*``). So the mapping
    drops the wrapper and the prefix (``generator_ema.`` preferred, as in the official test code).

    Raises:
        ValueError: if the checkpoint is not a BasicVSR++ (the reference times only that family).
    """
    sd = read_state_dict(weights)
    if detect_arch(sd) != "basicvsrpp":
        raise ValueError(f"{weights} is not a BasicVSR++ checkpoint; the reference network is BasicVSR++ only")
    config = detect_config(sd)
    return {k: v.contiguous() for k, v in sd.items()}, config


_REFERENCE_TIMER = """\
# Generated by vsvsrpp.bench: times the reference network; prints one JSON line.
import json, sys, time
import numpy as np
import torch

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
from {module} import {cls}

device = torch.device(spec["device"])
dtypes = {{"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}}
state = torch.load(spec["weights"], map_location="cpu", weights_only=True)


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


results = []
for job in spec["jobs"]:
    entry = dict(job)
    try:
        net = {cls}(mid_channels=spec["mid_channels"], num_blocks=spec["num_blocks"],
                    is_low_res_input=spec["is_low_res_input"])
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RuntimeError(f"state dict mismatch: missing {{sorted(missing)[:5]}}, unexpected {{sorted(unexpected)[:5]}}")
        dtype = dtypes[job["precision"]]
        net = net.eval().to(device, dtype)
        x = torch.from_numpy(np.load(job["frames"]))[None].to(device, dtype)
        best = float("inf")
        with torch.inference_mode():
            net(x[:, : min(2, x.shape[1])])
            for _ in range(spec["repeat"]):
                sync()
                t0 = time.perf_counter()
                out = net(x)
                sync()
                best = min(best, time.perf_counter() - t0)
        entry["seconds"] = best
        entry["output_shape"] = list(out.shape)
        del net, x, out
    except Exception as e:
        entry["error"] = f"{{type(e).__name__}}: {{e}}"
    results.append(entry)
sys.stdout.write(json.dumps({{"threads": torch.get_num_threads(), "torch": torch.__version__, "results": results}}))
""".format(module=REFERENCE_MODULE, cls=REFERENCE_CLASS)


def time_reference(
    python: str | os.PathLike,
    weights: str | os.PathLike,
    jobs: Sequence[dict[str, Any]],
    device: str | torch.device,
    workdir: str | os.PathLike,
    repeat: int = 1,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Time the reference network in the venv's ``python`` for each job.

    Args:
        python: interpreter of the reference venv.
        weights: our checkpoint; converted with :func:`reference_state_dict`.
        jobs: ``{"frames": npy_path, "precision": name, ...}`` each (other keys are echoed back).
        device, repeat: as for :func:`time_model_only`.
        threads: torch threads in the child (default: ours).

    Returns:
        The jobs, each with ``seconds`` or ``error`` added.

    Raises:
        ReferenceUnavailable: if the timing subprocess fails as a whole.
    """
    workdir = Path(workdir)
    sd, config = reference_state_dict(weights)
    ref_weights = workdir / "reference_state_dict.pth"
    torch.save(sd, ref_weights)
    timer = workdir / "reference_timer.py"
    timer.write_text(_REFERENCE_TIMER, encoding="utf-8")
    spec = {
        "weights": str(ref_weights),
        "device": str(device),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "repeat": repeat,
        "mid_channels": config.mid_channels,
        "num_blocks": config.num_blocks,
        "is_low_res_input": config.is_low_res_input,
        "jobs": list(jobs),
    }
    proc = subprocess.run(
        [str(python), str(timer), json.dumps(spec)], capture_output=True, text=True, errors="replace", cwd=workdir, env=_child_env()
    )
    if proc.returncode != 0:
        raise ReferenceUnavailable(f"the reference timing script failed (exit {proc.returncode}): {_tail(proc.stderr)}")
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ReferenceUnavailable(f"the reference timing script printed no result: {_tail(proc.stdout + proc.stderr)}") from None
    return report["results"]


# ---------------------------------------------------------------------------------------------
# the whole run
# ---------------------------------------------------------------------------------------------


def _describe(weights: Path, random: bool) -> str:
    config = detect_config(read_state_dict(weights))
    arch = {BasicVSRPPConfig: "BasicVSR++"}.get(type(config), type(config).__name__.removesuffix("Config"))
    blocks = getattr(config, "num_blocks", getattr(config, "num_propagation_blocks", "?"))
    scale = getattr(config, "scale", 4)
    source = "random weights" if random else f"weights {weights.name}"
    return f"{arch} c{config.mid_channels}n{blocks} x{scale}, {source}"


def run_benchmark(options: BenchOptions) -> BenchResult:
    """Run every measurement :class:`BenchOptions` asks for; failures become notes, not errors.

    Raises:
        BenchError: for invalid options.
    """
    options.validate()
    device = _resolve_device(options.device)
    env = environment_info(device)
    notes: list[str] = []
    rows: list[BenchRow] = []
    reference_env: dict[str, Any] | None = None

    with tempfile.TemporaryDirectory(prefix="vsvsrpp-bench-") as tmp_name:
        tmp = Path(tmp_name)
        random_weights = options.weights is None
        if random_weights:
            weights = write_random_checkpoint(tmp / "random.pth", options.mid_channels, options.num_blocks, options.seed)
        else:
            weights = Path(options.weights).resolve()
        network = _describe(weights, random_weights)

        vspipe = None
        if not options.model_only:
            vspipe = find_vspipe()
            if vspipe is None:
                notes.append("end to end skipped: vspipe not found next to the interpreter or on PATH")

        ref_python = None
        if options.reference:
            try:
                reference_env = ensure_reference_venv(options.reference_venv)
                ref_python = reference_env["python"]
            except (ReferenceUnavailable, OSError) as e:
                log.warning("reference skipped: %s", e)
                notes.append(f"reference skipped: {e}")

        ref_jobs = []
        for h, w in options.sizes:
            frames = synthetic_frames(options.frames, h, w, options.seed)
            npy = tmp / f"frames_{h}x{w}.npy"
            np.save(npy, frames)
            for precision in options.precisions:
                row = BenchRow(h, w, precision, options.frames)
                rows.append(row)
                log.info("model only %dx%d %s (%d frames) ...", h, w, precision, options.frames)
                try:
                    row.model = time_model_only(weights, frames, device, precision, options.repeat)
                    log.info("  %.1f ms/frame", row.model.ms_per_frame)
                except Exception as e:  # unsupported dtype on this device, out of memory...
                    log.warning("model only %dx%d %s failed: %s", h, w, precision, e)
                    row.notes.append(f"model only failed: {type(e).__name__}: {e}")
                if vspipe is not None:
                    log.info("end to end %dx%d %s (vspipe) ...", h, w, precision)
                    try:
                        row.end_to_end, row.startup_seconds, row.vspipe_seconds = time_end_to_end(
                            weights, npy, options.frames, device, precision, tmp, vspipe
                        )
                        log.info("  %.1f ms/frame (start-up %.2f s subtracted)", row.end_to_end.ms_per_frame, row.startup_seconds)
                    except Exception as e:
                        log.warning("end to end %dx%d %s failed: %s", h, w, precision, e)
                        row.notes.append(f"end to end failed: {e}")
                ref_jobs.append({"index": len(rows) - 1, "frames": str(npy), "precision": precision})
            del frames

        if ref_python is not None and ref_jobs:
            log.info("reference (%s) on %d configuration(s) ...", REFERENCE_CLASS, len(ref_jobs))
            try:
                for job in time_reference(ref_python, weights, ref_jobs, device, tmp, options.repeat):
                    row = rows[job["index"]]
                    if "seconds" in job:
                        row.reference = Timing(job["seconds"], options.frames)
                        log.info("  %s %s: %.1f ms/frame", row.size, row.precision, row.reference.ms_per_frame)
                    else:
                        row.notes.append(f"reference failed: {job.get('error')}")
            except (ReferenceUnavailable, ValueError, OSError) as e:
                log.warning("reference skipped: %s", e)
                notes.append(f"reference skipped: {e}")

    if hasattr(os, "getloadavg"):
        env["load_average_end"] = list(os.getloadavg())
    return BenchResult(env, network, options.frames, rows, notes, reference_env)
