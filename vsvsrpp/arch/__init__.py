"""The network families and their registry.

Each family is one module (:mod:`~vsvsrpp.arch.basicvsrpp`, :mod:`~vsvsrpp.arch.basicvsr`,
:mod:`~vsvsrpp.arch.realbasicvsr`) over shared building blocks (:mod:`~vsvsrpp.arch.blocks`); it
defines its network, its config and one :class:`~vsvsrpp.arch.descriptor.Architecture`. A new
family is one new module plus one line in :data:`ARCHITECTURES`.

    >>> from vsvsrpp import arch
    >>> descriptor = arch.load(state_dict)      # detect the family, build, load strictly
    >>> descriptor.scale, descriptor.memory, descriptor.architecture.entry_point

State dicts come in the official OpenMMLab (mmediting) names, which the networks here use, or in
another toolbox's names for the same modules (BasicSR's BasicVSR and BasicVSR++): each family lists
those as :attr:`Architecture.layouts`, and :func:`identify` is the one place that detects the family
and the layout and renames the keys.
"""

from __future__ import annotations

from . import basicvsr, basicvsrpp, realbasicvsr
from typing import NamedTuple

from .descriptor import Architecture, CallOption, MemoryShape, ModelDescriptor, SizeRequirements
from .state_dict import CheckpointError, StateDict, check_finite, rename_keys

__all__ = [
    "ARCHITECTURES",
    "CALL_OPTIONS",
    "Architecture",
    "CallOption",
    "CheckpointError",
    "Identified",
    "MemoryShape",
    "OFFICIAL_LAYOUT",
    "ModelDescriptor",
    "SizeRequirements",
    "StateDict",
    "detect",
    "get",
    "identify",
    "load",
]

#: Every family, in detection order. A state dict that matches none is reported against the
#: first (the package's main family), whose error names the keys it misses.
ARCHITECTURES: tuple[Architecture, ...] = (basicvsrpp.ARCH, realbasicvsr.ARCH, basicvsr.ARCH)

#: Every family's call options, once each (the filters' ``apply`` and the command line offer
#: them all and check them against the family a checkpoint holds).
CALL_OPTIONS: tuple[CallOption, ...] = tuple({o.name: o for a in ARCHITECTURES for o in a.options}.values())


def get(arch_id: str) -> Architecture:
    """The family with this id (``"basicvsrpp"``, ``"basicvsr"``, ``"realbasicvsr"``).

    Raises:
        ValueError: for an unknown id (the message lists the known ones).
    """
    for a in ARCHITECTURES:
        if a.id == arch_id:
            return a
    raise ValueError(f"unknown network family {arch_id!r}; known: {', '.join(a.id for a in ARCHITECTURES)}")


#: The name of the official layout (the keys the networks here have).
OFFICIAL_LAYOUT = "OpenMMLab"


class Identified(NamedTuple):
    """What :func:`identify` found: the family, the state dict with the official key names, and the
    layout it came in (:data:`OFFICIAL_LAYOUT` or a key of the family's ``layouts``)."""

    architecture: Architecture
    state_dict: StateDict
    layout: str


def identify(sd: StateDict) -> Identified:
    """The family and layout of a bare state dict, and the state dict in the official names.

    A foreign layout is taken when its rules rename at least one key and the family
    :meth:`~Architecture.matches` the result; otherwise the official layout of the first family
    that matches; otherwise the first family (its :meth:`~Architecture.read_config` then names the
    keys it misses and the modules found). Only key names are looked at here; the tensors are not
    copied.
    """
    for architecture in ARCHITECTURES:
        for layout, rules in architecture.layouts.items():
            renamed = rename_keys(sd, rules)
            if renamed.keys() != sd.keys() and architecture.matches(renamed):
                return Identified(architecture, renamed, layout)
    architecture = next((a for a in ARCHITECTURES if a.matches(sd)), ARCHITECTURES[0])
    return Identified(architecture, sd, OFFICIAL_LAYOUT)


def detect(sd: StateDict) -> Architecture:
    """The family of a bare state dict in any layout :func:`identify` knows; the first family when
    none matches (see above)."""
    return identify(sd).architecture


def load(sd: StateDict) -> ModelDescriptor:
    """Detect the family (and layout) of a bare state dict, build its network and load it strictly.

    Args:
        sd: a bare state dict (no ``generator.`` prefix) in the official layout or one that
            :func:`identify` knows (BasicSR's); see :func:`vsvsrpp.hub.checkpoint.read_state_dict`
            for files.

    Returns:
        The :class:`ModelDescriptor`; its network is in eval mode, float32, on the CPU.

    Raises:
        CheckpointError: when no family's keys match, a shape is wrong, or a floating tensor
            holds NaN or infinity (the message names the key).
    """
    architecture, sd, _ = identify(sd)
    descriptor = architecture.load(sd)
    check_finite(sd)
    return descriptor
