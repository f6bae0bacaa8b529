"""The reference: the network of ``vsbasicvsrpp`` (HolyWu's VapourSynth plugin, on mmengine).

It is installed into a throwaway virtual environment with the same torch and torchvision
versions as ours (:func:`ensure_reference_venv`), built with the same configuration, loaded
with the same weights (:func:`reference_state_dict`) and timed like *model only* by
``programs/reference_timer.py`` in that venv's Python, with the same thread count, in its own
defaults (eager, ``cpu_cache=False``; the whole network cast to the precision, as it does for
RGBH). It has BasicVSR++ networks only: for the other families it is skipped
(:func:`skip_reason`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ... import arch
from ...arch import Architecture
from ...arch.basicvsrpp import BasicVSRPPConfig
from ...errors import VsvsrppError
from ...hub.checkpoint import read_state_dict
from ...runtime.device import PRECISIONS
from . import programs
from .environment import package_version

log = logging.getLogger("vsvsrpp.bench")

REFERENCE_PACKAGE = "vsbasicvsrpp"
REFERENCE_MODULE = "vsbasicvsrpp.basicvsr_plusplus_net"
REFERENCE_CLASS = "BasicVSRPlusPlusNet"
#: The only family the reference has.
REFERENCE_FAMILY = arch.basicvsrpp.ARCH
#: Written into a reference venv this module built: how and when it was made.
REFERENCE_MARKER = "vsvsrpp-reference.json"
#: pip's output while building a reference venv, in the venv.
INSTALL_LOG = "vsvsrpp-install.log"


class ReferenceUnavailable(VsvsrppError, RuntimeError):
    """The reference environment could not be built or run (the message says why)."""


def skip_reason(architecture: Architecture) -> str | None:
    """Why the reference cannot time a network of this family, or None when it can."""
    if architecture is REFERENCE_FAMILY:
        return None
    return f"{REFERENCE_PACKAGE} has {REFERENCE_FAMILY.name} networks only, not {architecture.name}"


def default_reference_venv() -> Path:
    """``<user cache dir>/vsvsrpp/reference-venv``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("vsvsrpp")) / "reference-venv"


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def probe_reference(python: Path) -> dict[str, Any] | None:
    """The versions in the reference venv (``programs/reference_probe.py``) if its network
    module imports, else None."""
    if not python.is_file():
        return None
    probe = programs.path("reference_probe.py")
    proc = subprocess.run(
        [str(python), str(probe), REFERENCE_MODULE, REFERENCE_PACKAGE],
        capture_output=True, text=True, errors="replace", env=programs.child_env(),
    )  # fmt: skip
    if proc.returncode != 0:
        log.debug("reference probe failed: %s", programs.tail(proc.stderr))
        return None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def ensure_reference_venv(venv: str | os.PathLike | None = None) -> dict[str, Any]:
    """Create (or reuse) a venv holding the reference package, with our torch/torchvision pinned.

    The venv is made with ``python -m venv`` from the running interpreter, then
    ``pip install vsbasicvsrpp torch==<ours> torchvision==<ours>`` (public versions, without a
    ``+cu132``-style local tag; unpinned if that cannot be resolved). It is reused when the
    reference network module already imports in it.

    Returns:
        ``{"venv", "python", "created", "install_seconds", "version", "torch", ...}``.

    Raises:
        ReferenceUnavailable: if the venv cannot be made or the package cannot be installed
            (e.g. no network); the message says why.
    """
    venv = Path(venv) if venv is not None else default_reference_venv()
    python = venv_python(venv)
    found = probe_reference(python)
    if found is None:
        return _build_reference_venv(venv, python)
    info = {"venv": str(venv), "python": str(python), "created": False, **found}
    try:
        previous = json.loads((venv / REFERENCE_MARKER).read_text(encoding="utf-8"))
        info["install_seconds"] = previous.get("install_seconds")
        info["installed_at"] = previous.get("installed_at")
    except (OSError, ValueError):
        pass
    log.info("reusing the reference venv %s (%s %s, torch %s)", venv, REFERENCE_PACKAGE, found.get("version"), found.get("torch"))
    return info


def _build_reference_venv(venv: Path, python: Path) -> dict[str, Any]:
    """Make the venv, install the reference, check that it imports and write the marker."""
    start = time.perf_counter()
    log.info("building the reference venv %s (python -m venv; pip install %s) ...", venv, REFERENCE_PACKAGE)
    venv.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or not python.is_file():
        raise ReferenceUnavailable(f"python -m venv {venv} failed: {programs.tail(proc.stderr or proc.stdout)}")
    pinned = _pip_install(python, venv / INSTALL_LOG)
    seconds = time.perf_counter() - start
    found = probe_reference(python)
    if found is None:
        raise ReferenceUnavailable(
            f"{REFERENCE_PACKAGE} installed in {venv} but {REFERENCE_MODULE} does not import (log: {venv / INSTALL_LOG})"
        )
    info = {
        "venv": str(venv),
        "python": str(python),
        "created": True,
        "install_seconds": seconds,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pinned": pinned,
        **found,
    }
    (venv / REFERENCE_MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
    log.info("reference venv ready in %.0f s (%s %s, torch %s)", seconds, REFERENCE_PACKAGE, found.get("version"), found.get("torch"))
    return info


def _pins() -> list[str]:
    """``torch==X`` and ``torchvision==Y`` of ours, public versions: "2.15.0" also matches
    local builds such as 2.15.0+cu132 in an index."""
    pins = [f"torch=={torch.__version__.split('+')[0]}"]
    tv = package_version("torchvision")
    if tv:
        pins.append(f"torchvision=={tv.split('+')[0]}")
    return pins


def _pip_install(python: Path, install_log: Path) -> bool:
    """Install the reference with our versions pinned, else unpinned; True when pinned.

    Raises:
        ReferenceUnavailable: if both fail (the message quotes pip's last lines).
    """
    attempts = [[REFERENCE_PACKAGE, *_pins()], [REFERENCE_PACKAGE]]
    errors = []
    for packages in attempts:
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *packages]
        log.info("  %s", " ".join(cmd[1:]))
        with open(install_log, "a", encoding="utf-8") as logf:
            logf.write(f"$ {' '.join(cmd)}\n")
            logf.flush()
            proc = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env=programs.child_env())
        if proc.returncode == 0:
            return not errors
        tail = programs.tail(install_log.read_text(encoding="utf-8", errors="replace"), 4)
        errors.append(f"pip install {' '.join(packages)} failed (exit {proc.returncode}): {tail}")
        log.info("  failed; %s", "retrying without pins" if packages is not attempts[-1] else "giving up")
    raise ReferenceUnavailable("; ".join(errors) + f" (log: {install_log})")


def reference_state_dict(weights: str | os.PathLike) -> tuple[dict[str, torch.Tensor], BasicVSRPPConfig]:
    """Our checkpoint as the state dict the reference's ``BasicVSRPlusPlusNet`` loads, and its config.

    Official checkpoints hold the generator under ``state_dict`` with ``generator.``-prefixed
    keys (the mmediting wrapper model); the reference network is the bare generator, whose
    parameter and buffer names are the official ones without the prefix (its SPyNet keeps
    ``spynet.mean``/``spynet.std`` buffers and ``basic_module.N.basic_module.M.conv.*`` convs, the
    deformable alignment ``deform_align.<branch>.weight/bias/conv_offset.*``). So the mapping
    drops the wrapper and the prefix (``generator_ema.`` preferred, as in the official test
    code): :func:`vsvsrpp.hub.checkpoint.read_state_dict`.

    Raises:
        ValueError: if the checkpoint is not a BasicVSR++ (the reference has only that family);
            vsvsrpp.arch.CheckpointError (a ValueError) if it cannot be read.
    """
    family, sd, _ = arch.identify(read_state_dict(weights))
    reason = skip_reason(family)
    if reason is not None:
        raise ValueError(f"{weights} is {'an' if family.name[0] in 'AEIOU' else 'a'} {family.name} checkpoint; {reason}")
    return {k: v.contiguous() for k, v in sd.items()}, REFERENCE_FAMILY.read_config(sd)


def _timer_spec(
    weights: Path, config: BasicVSRPPConfig, jobs: Sequence[dict[str, Any]], device: str | torch.device, repeat: int, threads: int | None
) -> dict[str, Any]:
    """The JSON argument of ``programs/reference_timer.py`` (see its docstring)."""
    return {
        "module": REFERENCE_MODULE,
        "class": REFERENCE_CLASS,
        "config": {"mid_channels": config.mid_channels, "num_blocks": config.num_blocks, "is_low_res_input": config.is_low_res_input},
        "weights": str(weights),
        "device": str(device),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "repeat": repeat,
        "jobs": [dict(job, dtype=str(PRECISIONS[job["precision"]]).removeprefix("torch.")) for job in jobs],
    }


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
        weights: our checkpoint; converted with :func:`reference_state_dict` into ``workdir``.
        jobs: ``{"frames": npy_path, "precision": name, ...}`` each (other keys are echoed back).
        device, repeat: as for :func:`~vsvsrpp.tools.bench.model_only.time_model_only`.
        threads: torch threads in the child (default: ours).

    Returns:
        The jobs, each with ``dtype`` and ``seconds`` (and ``output_shape``) or ``error`` added.

    Raises:
        ValueError: if ``weights`` is not a BasicVSR++ checkpoint.
        ReferenceUnavailable: if the timing program fails as a whole.
    """
    sd, config = reference_state_dict(weights)
    ref_weights = Path(workdir) / "reference_state_dict.pth"
    torch.save(sd, ref_weights)
    spec = _timer_spec(ref_weights, config, jobs, device, repeat, threads)
    timer = programs.path("reference_timer.py")
    proc = subprocess.run(
        [str(python), str(timer), json.dumps(spec)],
        capture_output=True, text=True, errors="replace", cwd=workdir, env=programs.child_env(),
    )  # fmt: skip
    if proc.returncode != 0:
        raise ReferenceUnavailable(f"the reference timer failed (exit {proc.returncode}): {programs.tail(proc.stderr)}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])["results"]
    except (ValueError, IndexError, KeyError):
        raise ReferenceUnavailable(f"the reference timer printed no result: {programs.tail(proc.stdout + proc.stderr)}") from None
