"""What a benchmark measures: :class:`BenchOptions`, and the parsers of its list options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import arch
from ...errors import UsageError
from ...hub import registry
from ...runtime.device import PRECISIONS, resolve_device


class BenchError(UsageError):
    """Options that cannot be benchmarked (bad size, unknown precision, missing file...)."""


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"180x320,540x960"`` -> ``[(180, 320), (540, 960)]`` (height x width, in that order;
    duplicates dropped).

    Raises:
        BenchError: for anything else than comma-separated ``HxW`` with positive integers.
    """
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        h, sep, w = part.partition("x")
        if not sep or not h.isdigit() or not w.isdigit() or int(h) <= 0 or int(w) <= 0:
            raise BenchError(f"bad size {part!r}: expected HEIGHTxWIDTH, e.g. 180x320")
        sizes.append((int(h), int(w)))
    if not sizes:
        raise BenchError("no size given: expected HEIGHTxWIDTH[,HEIGHTxWIDTH...], e.g. 180x320")
    return list(dict.fromkeys(sizes))


def parse_precisions(text: str) -> list[str]:
    """``"fp32,fp16"`` -> ``["fp32", "fp16"]`` (case-insensitive; duplicates dropped).

    Raises:
        BenchError: for a name not in :data:`vsvsrpp.runtime.device.PRECISIONS`, or none.
    """
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PRECISIONS]
    if bad or not names:
        raise BenchError(f"bad precision {', '.join(bad) or repr(text)}: expected one or more of {', '.join(PRECISIONS)}")
    return list(dict.fromkeys(names))


@dataclass
class BenchOptions:
    """What :func:`~vsvsrpp.tools.bench.run.run_benchmark` measures.

    The network is ``model`` (a registry name, downloaded on first use), else ``weights`` (a
    checkpoint of any family), else random weights of ``arch`` at ``mid_channels`` and
    ``num_blocks`` (its ``make_config``; 64/7 is the official BasicVSR++ c64n7).

    Attributes:
        sizes: input (height, width) pairs, in pixels.
        frames: frames per clip (one forward / one window over all of them).
        device: torch device (``None``: CUDA when available, else CPU).
        precisions: names from :data:`vsvsrpp.runtime.device.PRECISIONS`.
        model_only: skip the end-to-end runs.
        reference: also time the ``vsbasicvsrpp`` network (BasicVSR++ networks only; skipped
            with a note for the other families).
        reference_venv: where its venv lives (``None``: the default, see
            :func:`~vsvsrpp.tools.bench.reference.default_reference_venv`).
        model: registry name of the network to time.
        weights: checkpoint file to time.
        arch: family id of the random network (``"basicvsrpp"``, ``"basicvsr"``, ``"iconvsr"``, ``"realbasicvsr"``).
        mid_channels, num_blocks: size of the random network.
        call_options: the family's call options (e.g. ``refine_threshold``); the others take
            the registry entry's or the family's defaults.
        repeat: model-only and reference runs per measurement; the fastest is kept.
        seed: seed of the random weights and frames.
    """

    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(180, 320)])
    frames: int = 10
    device: str | None = None
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    model_only: bool = False
    reference: bool = False
    reference_venv: Path | None = None
    model: str | None = None
    weights: Path | None = None
    arch: str = "basicvsrpp"
    mid_channels: int = 64
    num_blocks: int = 7
    call_options: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1
    seed: int = 0

    @property
    def random_weights(self) -> bool:
        """True when neither a model nor a checkpoint is given."""
        return self.model is None and self.weights is None

    def validate(self) -> None:
        """Check the options without loading anything.

        Raises:
            BenchError: for options that cannot run (the message names the option).
        """
        self._check_counts()
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise BenchError(f"bad precision {', '.join(bad)}: expected one of {', '.join(PRECISIONS)}")
        self._check_network()
        try:
            resolve_device(self.device)
        except ValueError as e:
            raise BenchError(str(e)) from None

    def _check_counts(self) -> None:
        if not self.sizes:
            raise BenchError("no sizes given")
        for h, w in self.sizes:
            if h <= 0 or w <= 0:
                raise BenchError(f"bad size {h}x{w}")
        if self.frames < 1:
            raise BenchError(f"frames must be >= 1, got {self.frames}")
        if self.repeat < 1:
            raise BenchError(f"repeat must be >= 1, got {self.repeat}")
        if self.mid_channels < 1 or self.num_blocks < 1:
            raise BenchError("mid_channels and num_blocks must be >= 1")

    def _check_network(self) -> None:
        if self.model is not None and self.weights is not None:
            raise BenchError("give a model or weights, not both")
        if self.model is not None and self.model not in registry.MODELS:
            raise BenchError(f"unknown model {self.model!r}; available: {', '.join(registry.MODELS)}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise BenchError(f"weights file not found: {self.weights}")
        try:
            arch.get(self.arch).make_config(self.mid_channels, self.num_blocks)  # a size the family can build
        except ValueError as e:
            raise BenchError(str(e)) from None
