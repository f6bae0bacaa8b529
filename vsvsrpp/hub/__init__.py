"""Where weights come from: the pretrained registry, verified downloads, checkpoint files.

* :mod:`~vsvsrpp.hub.registry`: the official checkpoints (file, URL, sha256, licence, task,
  reported result, inference defaults);
* :mod:`~vsvsrpp.hub.download`: the cache, verified atomic downloads;
* :mod:`~vsvsrpp.hub.checkpoint`: reading files safely, and :func:`resolve` /
  :func:`load_descriptor` / :func:`load_model` for "a registry name or a checkpoint path".
"""

from __future__ import annotations

from .checkpoint import Checkpoint, CheckpointError, load_descriptor, load_model, read_state_dict, resolve
from .download import DownloadError
from .registry import DEFAULT_MODEL, MODELS, PretrainedModel

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "Checkpoint",
    "CheckpointError",
    "DownloadError",
    "PretrainedModel",
    "load_descriptor",
    "load_model",
    "read_state_dict",
    "resolve",
]
