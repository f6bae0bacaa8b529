"""What the command line must know of the network families without importing torch: their ids
and display names, and the extra keyword arguments ("call options") of each family's
``forward``, such as RealBasicVSR's ``refine_threshold``.

The family modules take their options from here, so each is declared once; ``--help`` and
usage errors of the command line read them without loading a network. Nothing here imports
torch (``tests/test_layers.py`` checks it, and that :data:`FAMILIES` matches
:data:`vsvsrpp.arch.ARCHITECTURES`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CALL_OPTIONS", "FAMILIES", "FAMILY_OPTIONS", "MAX_CLEANING_PASSES", "CallOption"]


@dataclass(frozen=True)
class CallOption:
    """An extra keyword argument of a family's ``forward``, offered by the filter entry point and
    the command line (e.g. RealBasicVSR's ``refine_threshold``).

    Attributes:
        name: the keyword (``--name-with-dashes`` on the command line).
        type: ``int`` or ``float``: what the command line parses.
        doc: one sentence with units and range, for docstrings and ``--help``.
        check: validates a value and returns it normalised; raises ``ValueError`` whose message
            starts with the option's name and quotes the bad value. ``None`` is always accepted
            and means "the model's default".
    """

    name: str
    type: type
    doc: str
    check: Callable[[Any], Any]

    def validate(self, value: Any) -> Any:
        """``None`` unchanged, else :attr:`check` applied."""
        return None if value is None else self.check(value)


#: ``(id, display name)`` of every family, in detection order.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("basicvsrpp", "BasicVSR++"), ("realbasicvsr", "RealBasicVSR"), ("iconvsr", "IconVSR"), ("basicvsr", "BasicVSR"),
)

#: RealBasicVSR's image cleaning runs at most this many times per window (Chan et al., CVPR 2022,
#: "Investigating Tradeoffs in Real-World Video Super-Resolution", dynamic refinement).
MAX_CLEANING_PASSES = 3


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"refine_threshold must be a number >= 0 (0..255 units), got {value!r}")
    return float(value)


def check_cleaning_passes(value: Any) -> int:
    """``value`` as a number of RealBasicVSR cleaning passes, 1 to :data:`MAX_CLEANING_PASSES`.

    Raises:
        ValueError: naming the option and quoting the value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"cleaning_passes must be an integer >= 1, got {value!r}")
    if value > MAX_CLEANING_PASSES:
        raise ValueError(f"cleaning_passes must be from 1 to {MAX_CLEANING_PASSES} (the network's maximum), got {value!r}")
    return int(value)


#: Each family's call options, by family id.
FAMILY_OPTIONS: dict[str, tuple[CallOption, ...]] = {
    "basicvsrpp": (),
    "basicvsr": (),
    "iconvsr": (),
    "realbasicvsr": (
        CallOption(
            "refine_threshold",
            float,
            "dynamic-refinement threshold in 0..255 units (>= 0): cleaning repeats, at most 3 times, while a "
            "pass changes the frames by at least this much on average; lower cleans more. Default: the "
            "model's (5 for the official checkpoint, OpenMMLab's evaluation value; 255 means one pass, as "
            "the official demo script)",
            _check_threshold,
        ),
        CallOption(
            "cleaning_passes",
            int,
            "a fixed number of cleaning passes (1-3) for every window, overriding refine_threshold",
            check_cleaning_passes,
        ),
    ),
}

#: Every family's call options, once each (the filters' ``apply`` and the command line offer
#: them all and check them against the family a checkpoint holds).
CALL_OPTIONS: tuple[CallOption, ...] = tuple({o.name: o for family, _ in FAMILIES for o in FAMILY_OPTIONS[family]}.values())


def families_taking(option: CallOption) -> str:
    """The display names of the families whose ``forward`` takes ``option`` (for ``--help``)."""
    return ", ".join(name for family, name in FAMILIES if option in FAMILY_OPTIONS[family])
