"""The registry of network families: detection of a state dict's family, and loading.

:data:`ARCHITECTURES` lists every family's :class:`~vsvsrpp.arch.descriptor.Architecture` in
detection order; a new family is one new module plus one line here and one in
:data:`vsvsrpp.arch.options.FAMILIES`.
"""

from __future__ import annotations

from . import basicvsr, basicvsrpp, realbasicvsr
from .descriptor import Architecture, ModelDescriptor
from .options import CALL_OPTIONS
from .state_dict import StateDict, check_finite

__all__ = ["ARCHITECTURES", "CALL_OPTIONS", "detect", "get", "load"]

#: Every family, in detection order. A state dict that matches none is reported against the
#: first (the package's main family), whose error names the keys it misses.
ARCHITECTURES: tuple[Architecture, ...] = (basicvsrpp.ARCH, realbasicvsr.ARCH, basicvsr.ARCH)



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
