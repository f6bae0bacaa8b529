"""The registry of network families: detection of a state dict's family, and loading.

:data:`ARCHITECTURES` lists every family's :class:`~vsvsrpp.arch.descriptor.Architecture` in
detection order; a new family is one new module plus one line here and one in
:data:`vsvsrpp.arch.options.FAMILIES`.
"""

from __future__ import annotations

from typing import NamedTuple

from . import basicvsr, basicvsrpp, iconvsr, realbasicvsr
from .descriptor import Architecture, ModelDescriptor
from .options import CALL_OPTIONS
from .state_dict import StateDict, check_finite, rename_keys

__all__ = ["ARCHITECTURES", "CALL_OPTIONS", "OFFICIAL_LAYOUT", "Identified", "detect", "get", "identify", "load"]

#: Every family, in detection order (IconVSR before BasicVSR, whose keys it holds too). A state
#: dict that matches none is reported against the first (the package's main family), whose error
#: names the keys it misses.
ARCHITECTURES: tuple[Architecture, ...] = (basicvsrpp.ARCH, realbasicvsr.ARCH, iconvsr.ARCH, basicvsr.ARCH)


def get(arch_id: str) -> Architecture:
    """The family with this id (``"basicvsrpp"``, ``"basicvsr"``, ``"realbasicvsr"``, ``"iconvsr"``).

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
