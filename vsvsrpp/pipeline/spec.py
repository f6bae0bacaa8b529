"""What a file run is: :class:`RunSpec` (what to run, how to encode, where to write) and
:class:`Encoding` (the encoder settings). Plain data: the command line builds a ``RunSpec``
from argv, the single-process run (:mod:`vsvsrpp.pipeline.run`) and the distributed run
(:mod:`vsvsrpp.cluster`) take it, and it travels to Ray workers as it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LOSSLESS", "Encoding", "RunSpec"]


@dataclass(frozen=True)
class Encoding:
    """ffmpeg encoder settings.

    Attributes:
        codec: ffmpeg's video encoder (``libx264``, ``ffv1``...).
        crf: rate factor, or None (not passed).
        preset: encoder preset, or None (not passed).
        pix_fmt: output pixel format, or None (that of the frames fed to ffmpeg).
    """

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None

    @property
    def is_lossless(self) -> bool:
        return self.codec == "ffv1"


#: Lossless FFV1: the cluster's default segment encoding.
LOSSLESS = Encoding("ffv1", None, None)


@dataclass(frozen=True)
class RunSpec:
    """One run over files.

    Attributes:
        pairs: ``(input, output)`` for each file; ``output`` is a path (a regular file written
            atomically, or an existing FIFO/device written in place) or ``"-"`` for stdout.
        filter_kwargs: filter arguments (:func:`vsvsrpp.plugin.entry.apply`: ``model`` or
            ``weights``, ``device``, ``window``, ``precision``, family options...); those not
            given keep the filter's defaults.
        encoding: the output's encoder settings.
        container: ffmpeg's container format name, or None to guess it from the output's
            extension (``"matroska"`` on stdout).
        progress: show a progress bar on stderr.
        verbose: let ffmpeg print its warnings.
    """

    pairs: tuple[tuple[Path, Path | str], ...]
    filter_kwargs: Mapping[str, Any] = field(default_factory=dict)
    encoding: Encoding = Encoding()
    container: str | None = None
    progress: bool = True
    verbose: bool = False
