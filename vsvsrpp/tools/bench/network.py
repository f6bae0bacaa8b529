"""The network a benchmark times: a registry model, a checkpoint file, or random weights.

Every measurement reads the network from one checkpoint file (the end-to-end script runs in
vspipe and each precision needs a network of its own), so random weights are written to one
first (:func:`write_random_checkpoint`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ... import arch
from ...arch import Architecture, CheckpointError
from ...hub.checkpoint import Checkpoint, call_options, load_descriptor, resolve
from .options import BenchError, BenchOptions

log = logging.getLogger("vsvsrpp.bench")


@dataclass(frozen=True)
class BenchNetwork:
    """What is timed.

    Attributes:
        checkpoint: its file (and registry entry, for ``--model``).
        architecture: its family.
        name: the descriptor's name and where the weights come from, e.g.
            ``"BasicVSR++ c8n1 x4, random weights"``.
        options: the family call options every forward gets (model only and end to end).
    """

    checkpoint: Checkpoint
    architecture: Architecture
    name: str
    options: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.checkpoint.path


def write_random_checkpoint(
    path: str | os.PathLike, mid_channels: int = 64, num_blocks: int = 7, seed: int = 0, *, family: str = "basicvsrpp"
) -> Path:
    """Save a random-weight 4x network of ``family`` in the official layout (``generator.`` keys
    under ``state_dict``), built from the family's ``make_config(mid_channels, num_blocks)``.

    Returns:
        ``path``.

    Raises:
        ValueError: for an unknown family.
    """
    model = arch.get(family).random(mid_channels, num_blocks, scale=4, seed=seed)
    path = Path(path)
    torch.save({"state_dict": {f"generator.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


def _checkpoint(options: BenchOptions, workdir: Path) -> tuple[Checkpoint, str]:
    """The checkpoint to time and where its weights come from (for the network's name)."""
    if options.model is not None:
        return resolve(options.model), f"model {options.model}"
    if options.weights is not None:
        path = Path(options.weights).resolve()
        return Checkpoint(path), f"weights {path.name}"
    path = write_random_checkpoint(
        workdir / "random.pth", options.mid_channels, options.num_blocks, options.seed, family=options.arch
    )
    return Checkpoint(path), "random weights"


def select_network(options: BenchOptions, workdir: Path) -> BenchNetwork:
    """Resolve (download) or write the checkpoint the options name and describe it.

    Args:
        options: validated options.
        workdir: where random weights are written.

    Raises:
        BenchError: if the checkpoint cannot be loaded, or a call option does not apply to
            its family.
        vsvsrpp.hub.download.DownloadError: if a registry model is missing and cannot be fetched.
    """
    checkpoint, origin = _checkpoint(options, workdir)
    try:
        descriptor = load_descriptor(checkpoint.path)
        family_options = call_options(descriptor, checkpoint, options.call_options)
    except CheckpointError as e:
        raise BenchError(f"cannot load {checkpoint.path}: {e}") from None
    except ValueError as e:  # an option of another family
        raise BenchError(str(e)) from None
    name = f"{descriptor.name}, {origin}"
    log.info("network: %s", name)
    return BenchNetwork(checkpoint, descriptor.architecture, name, family_options)
