"""Where weights come from: the pretrained registry, verified downloads, checkpoint files.

* :mod:`~vsvsrpp.hub.registry`: the official checkpoints (file, URL, sha256, licence, task,
  reported result, inference defaults);
* :mod:`~vsvsrpp.hub.download`: the cache, verified atomic downloads;
* :mod:`~vsvsrpp.hub.checkpoint`: reading files safely, and :func:`resolve` /
  :func:`load_descriptor` / :func:`load_model` for "a registry name or a checkpoint path".
"""

from __future__ import annotations

import importlib

# Imported on first use, so that the registry (pure data) can be read without importing torch.
_WHERE = {
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "load_descriptor": "checkpoint",
    "load_model": "checkpoint",
    "read_state_dict": "checkpoint",
    "resolve": "checkpoint",
    "DownloadError": "download",
    "DEFAULT_MODEL": "registry",
    "MODELS": "registry",
    "PretrainedModel": "registry",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
