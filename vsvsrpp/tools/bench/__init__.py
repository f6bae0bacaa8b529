"""Speed benchmark: the network alone, the whole VapourSynth pipeline, and the reference.

For every (size, precision) pair, on the same synthetic clip (a smooth random texture panning
two pixels per frame; speed does not depend on the picture):

* **model only** (:mod:`.model_only`): one forward of the network as
  :class:`~vsvsrpp.runtime.engine.Engine` prepares it for the precision (reduced-precision
  convolutions; the family's flow modules, the flow warping and the deformable sampling in
  float32), over all ``frames`` frames at once, after a warm-up forward of two frames at the
  same size. The input is on the device before the clock starts; on CUDA the device is
  synchronised before and after. With ``repeat > 1`` the best run is kept.
* **end to end** (:mod:`.end_to_end`): ``vspipe -c y4m programs/end_to_end.vpy /dev/null``,
  which builds the clip from the frames, runs :func:`vsvsrpp.plugin.entry.apply` with one window
  covering the clip (no overlap, no scene detection, the precision always explicit: the filter's
  default "auto" is fp16 on CUDA) and converts the result to YUV420P8; the script's start-up
  (``vspipe --info``) is subtracted.
* **reference** (:mod:`.reference`, optional, BasicVSR++ only): the ``vsbasicvsrpp`` network in
  a throwaway venv with our torch, timed like *model only* in that venv's Python. The speed-up
  is reference time / ours. For the other families it is skipped with a note.

The network (:mod:`.network`) is a registry model (``model``), a checkpoint of any family
(``weights``), or random weights of any family (``arch``, ``mid_channels``, ``num_blocks``;
the default is the official BasicVSR++ c64n7 shape). The family's call options (registry or
family defaults, unless given) reach both *model only* and *end to end*.

Progress goes to the ``vsvsrpp.bench`` logger; the results are returned as
:class:`~.report.BenchResult` (:meth:`~.report.BenchResult.format_table`,
:meth:`~.report.BenchResult.to_json`); nothing is printed.

    >>> from vsvsrpp.tools import bench
    >>> result = bench.run_benchmark(bench.BenchOptions(sizes=[(64, 64)], frames=2, arch="basicvsr"))
"""

from __future__ import annotations

from ...runtime.device import PRECISIONS
from .end_to_end import filter_kwargs, find_vspipe, time_end_to_end
from .environment import cpu_model, environment_info
from .model_only import prepare_engine, synthetic_frames, time_model_only
from .network import BenchNetwork, select_network, write_random_checkpoint
from .options import BenchError, BenchOptions, parse_precisions, parse_sizes
from .reference import (
    ReferenceUnavailable,
    default_reference_venv,
    ensure_reference_venv,
    reference_state_dict,
    skip_reason,
    time_reference,
)
from .report import BenchResult, BenchRow, Timing
from .run import run_benchmark

__all__ = [
    "PRECISIONS",
    "BenchError",
    "BenchNetwork",
    "BenchOptions",
    "BenchResult",
    "BenchRow",
    "ReferenceUnavailable",
    "Timing",
    "cpu_model",
    "default_reference_venv",
    "ensure_reference_venv",
    "environment_info",
    "filter_kwargs",
    "find_vspipe",
    "parse_precisions",
    "parse_sizes",
    "prepare_engine",
    "reference_state_dict",
    "run_benchmark",
    "select_network",
    "skip_reason",
    "synthetic_frames",
    "time_end_to_end",
    "time_model_only",
    "time_reference",
    "write_random_checkpoint",
]
