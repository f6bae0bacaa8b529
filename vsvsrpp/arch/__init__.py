"""The network families and their registry.

Each family is one module (:mod:`~vsvsrpp.arch.basicvsrpp`, :mod:`~vsvsrpp.arch.basicvsr`,
:mod:`~vsvsrpp.arch.realbasicvsr`, :mod:`~vsvsrpp.arch.iconvsr`) over shared building blocks
(:mod:`~vsvsrpp.arch.blocks`); it defines its network, its config and one :class:`~vsvsrpp.arch.descriptor.Architecture`. A new
family is one new module plus one line in :data:`ARCHITECTURES` (:mod:`~vsvsrpp.arch.families`)
and one in :data:`~vsvsrpp.arch.options.FAMILIES`.

Importing this package imports nothing heavy: the names below are imported on first use, so the
command line reads :mod:`~vsvsrpp.arch.options` (family names and call options) without torch.

    >>> from vsvsrpp import arch
    >>> descriptor = arch.load(state_dict)      # detect the family, build, load strictly
    >>> descriptor.scale, descriptor.memory, descriptor.architecture.entry_point

State dicts come in the official OpenMMLab (mmediting) names, which the networks here use, or in
another toolbox's names for the same modules (BasicSR's BasicVSR, BasicVSR++ and IconVSR): each family lists
those as :attr:`Architecture.layouts`, and :func:`identify` is the one place that detects the family
and the layout and renames the keys.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "ARCHITECTURES": "families",
    "CALL_OPTIONS": "options",
    "Architecture": "descriptor",
    "CallOption": "options",
    "CheckpointError": "state_dict",
    "MemoryShape": "descriptor",
    "ModelDescriptor": "descriptor",
    "SizeRequirements": "descriptor",
    "StateDict": "state_dict",
    "check_finite": "state_dict",
    "Identified": "families",
    "OFFICIAL_LAYOUT": "families",
    "detect": "families",
    "get": "families",
    "identify": "families",
    "load": "families",
    "rename_keys": "state_dict",
}
_SUBMODULES = (
    "basicvsr", "basicvsrpp", "blocks", "deform", "descriptor", "families", "iconvsr", "options", "realbasicvsr", "state_dict",
)

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
