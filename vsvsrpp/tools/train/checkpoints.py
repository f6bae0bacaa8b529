"""What a run writes to its work folder, atomically (temporary file + ``os.replace``):

* ``iter_<n>.pth``: the network in the official OpenMMLab layout (``{"state_dict":
  {"generator.*": ...}, "meta": {...}}``), loadable by :func:`vsvsrpp.load_model`;
* :data:`STATE_FILE`: the resumable training state (weights, optimizer, scheduler, loss
  scaler, iteration, RNG, config, validation history), from which a resumed run continues
  exactly as an uninterrupted one.

Everything is read back with ``torch.load(..., weights_only=True)``: the files hold only
tensors and plain Python values.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from torch import nn

from ...arch.basicvsrpp import BasicVSRPlusPlus
from .config import TrainConfig
from .network import check_size, network_size, new_network

#: Name of the resumable training state inside the work folder.
STATE_FILE = "training_state.pth"


def checkpoint_name(iteration: int) -> str:
    """File name of the checkpoint written after ``iteration`` iterations."""
    return f"iter_{iteration}.pth"


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path`` (creating
    the folder); the temporary file never outlives the call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def save_checkpoint(model: nn.Module, path: str | os.PathLike, meta: dict | None = None, half: bool = False) -> Path:
    """Write a network in the official OpenMMLab layout, atomically.

    Args:
        model: a :class:`BasicVSRPlusPlus`.
        path: destination ``.pth``.
        meta: plain values stored under ``"meta"``.
        half: store the parameters as float16 (half the file; loading converts them back to
            the network's dtype). Buffers such as SPyNet's normalisation constants stay float32.

    Returns:
        ``path`` as a :class:`Path`. The file holds ``{"state_dict": {"generator.<key>":
        tensor (CPU)}, "meta": meta}`` and loads with :func:`vsvsrpp.load_model`.
    """
    path = Path(path)
    params = {name for name, _ in model.named_parameters()}
    sd = {f"generator.{k}": v.half() if half and k in params and v.is_floating_point() else v for k, v in _cpu_state_dict(model).items()}
    atomic_save({"state_dict": sd, "meta": dict(meta or {})}, path)
    return path


# ---------------------------------------------------------------------------------------------
# the training state
# ---------------------------------------------------------------------------------------------


def save_state(
    path: Path,
    *,
    iteration: int,
    model: BasicVSRPlusPlus,
    optimisation: dict,
    config: dict,
    val_history: list,
    device: torch.device,
) -> None:
    """Write the training state after ``iteration`` iterations, atomically.

    Args:
        optimisation: ``{"optimizer", "scheduler", "scaler"}`` state dicts
            (:meth:`~vsvsrpp.tools.train.optim.Optimisation.state_dict`).
        config: :meth:`TrainConfig.to_meta`.
        val_history: ``[iteration, PSNR dB]`` pairs of every validation so far.
        device: the training device (its CUDA generator is saved too).

    The file holds ``iteration``, ``arch`` (``mid_channels``, ``num_blocks``), ``model`` (the
    bare state dict on the CPU), ``optimizer``, ``scheduler``, ``scaler``, ``rng`` (``torch``,
    ``cuda``: generator states, ``cuda`` ``None`` off CUDA), ``config`` and ``val_history``.
    """
    rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    state = {"iteration": iteration, "arch": network_size(model.config), "model": _cpu_state_dict(model)}
    atomic_save({**state, **optimisation, "rng": rng, "config": config, "val_history": val_history}, path)


def state_path(work: Path, resume: bool | str | os.PathLike) -> Path:
    """The state a ``resume`` argument names: ``work/STATE_FILE`` for ``True``, else the path."""
    return work / STATE_FILE if resume is True else Path(resume)


def load_state(path: Path) -> dict:
    """Read a training state written by :func:`save_state` (weights only, onto the CPU).

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no training state to resume from at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def restore_network(state: dict, config: TrainConfig) -> BasicVSRPlusPlus:
    """The network of a training state (float32, CPU), loaded strictly.

    Raises:
        ValueError: ``config`` asks for another ``mid_channels`` or ``num_blocks``.
    """
    size = state["arch"]
    check_size(config, size, "the saved state")
    model = new_network(size["mid_channels"], size["num_blocks"])
    model.load_state_dict(state["model"], strict=True)
    return model


def restore_rng(state: dict, device: torch.device) -> None:
    """Set torch's generators (and ``device``'s CUDA generator) to those saved in ``state``."""
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
