"""The network families and their registry.

Each family is one module (:mod:`~vsvsrpp.arch.basicvsrpp`, :mod:`~vsvsrpp.arch.basicvsr`,
:mod:`~vsvsrpp.arch.realbasicvsr`) over shared building blocks (:mod:`~vsvsrpp.arch.blocks`); it
defines its network, its config and one :class:`~vsvsrpp.arch.descriptor.Architecture`. A new
family is one new module plus one line in :data:`ARCHITECTURES`.

    >>> from vsvsrpp import arch
    >>> descriptor = arch.load(state_dict)      # detect the family, build, load strictly
    >>> descriptor.scale, descriptor.memory, descriptor.architecture.entry_point
"""

from __future__ import annotations

from . import basicvsr, basicvsrpp, realbasicvsr
from .descriptor import Architecture, CallOption, MemoryShape, ModelDescriptor, SizeRequirements
from .state_dict import CheckpointError, StateDict, check_finite

__all__ = [
    "ARCHITECTURES",
    "CALL_OPTIONS",
    "Architecture",
    "CallOption",
    "CheckpointError",
    "MemoryShape",
    "ModelDescriptor",
    "SizeRequirements",
    "StateDict",
    "detect",
    "get",
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


def detect(sd: StateDict) -> Architecture:
    """The family whose keys ``sd`` has; the first family when none matches (see above)."""
    return next((a for a in ARCHITECTURES if a.matches(sd)), ARCHITECTURES[0])


def load(sd: StateDict) -> ModelDescriptor:
    """Detect the family of a bare state dict, build its network and load it strictly.

    Args:
        sd: a bare state dict (no ``generator.`` prefix); see
            :func:`vsvsrpp.hub.checkpoint.read_state_dict` for files.

    Returns:
        The :class:`ModelDescriptor`; its network is in eval mode, float32, on the CPU.

    Raises:
        CheckpointError: when no family's keys match, a shape is wrong, or a floating tensor
            holds NaN or infinity (the message names the key).
    """
    architecture = detect(sd)
    descriptor = architecture.load(sd)
    check_finite(sd)
    return descriptor
