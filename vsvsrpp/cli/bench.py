"""``vsvsrpp bench``: time the network alone, through vspipe, and the reference
(:mod:`vsvsrpp.tools.bench`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_FAILURE, EXIT_OK, UsageError, VsvsrppError
from .options import add_family_options, add_model_source, family_options, positive_int


NAME = "bench"
HELP = "time the network alone, through vspipe, and (optionally) the reference vsbasicvsrpp"


def random_defaults() -> dict:
    """The random network when neither --model nor --weights is given: the official c64n7 shape."""
    from ..tools.bench.options import BenchOptions

    return {k: getattr(BenchOptions, k) for k in ("arch", "mid_channels", "num_blocks")}


def _add_network(p: argparse.ArgumentParser) -> None:
    """--model / --weights (exclusive; default random weights) and the random network's shape
    (its defaults, :class:`~vsvsrpp.tools.bench.BenchOptions`'s, are applied when it runs, so
    that ``--help`` imports no network)."""
    from ..arch.options import FAMILIES

    add_model_source(p, "time", "random weights")
    families = ", ".join(f"{family} ({name})" for family, name in FAMILIES)
    p.add_argument("--arch", choices=[family for family, _ in FAMILIES], default=None, help=f"family of the random network: {families} (default: {FAMILIES[0][0]})")
    p.add_argument("--mid-channels", type=positive_int, default=None, metavar="N", help="channels of the random network (default: 64, as BasicVSR++ c64n7)")
    p.add_argument("--num-blocks", type=positive_int, default=None, metavar="N", help="residual blocks per branch of the random network (default: 7, as BasicVSR++ c64n7)")
    add_family_options(p)


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Time a network on a synthetic clip for each size and precision: one model forward "
        "(after a warm-up), the same clip end to end through vspipe to /dev/null (vspipe start-up "
        "subtracted), and with --reference the vsbasicvsrpp network in a throwaway venv (BasicVSR++ "
        "only). Prints a table (or JSON) on stdout; progress goes to stderr. The network is --model, "
        "--weights, or random weights of --arch (default: BasicVSR++ c64n7).",
    )
    p.add_argument("--sizes", default="180x320", metavar="HxW[,HxW...]", help="input sizes, height x width (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=10, metavar="N", help="frames per clip (default: %(default)s)")
    p.add_argument("--device", default=None, metavar="DEV", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    p.add_argument("--precision", default="fp32", metavar="P[,P...]", help="fp32, fp16 and/or bf16, comma-separated (default: %(default)s)")
    p.add_argument("--model-only", action="store_true", help="skip the end-to-end (vspipe) runs")
    p.add_argument(
        "--reference",
        nargs="?",
        const="",
        default=None,
        metavar="VENV_DIR",
        help="also time the reference vsbasicvsrpp network (BasicVSR++ only), installed into VENV_DIR "
        "(default: <user cache>/vsvsrpp/reference-venv; created on first use, needs PyPI)",
    )
    _add_network(p)
    p.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="model-only and reference runs, the fastest kept (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def _random_shape(args: argparse.Namespace) -> dict:
    """--arch, --mid-channels and --num-blocks with their defaults.

    Raises:
        vsvsrpp.errors.UsageError: when one is given with --model or --weights (they describe random weights).
    """
    defaults = random_defaults()
    given = [f"--{k.replace('_', '-')}" for k in defaults if getattr(args, k) is not None]
    if given and (args.model is not None or args.weights is not None):
        raise UsageError(f"{', '.join(given)} describe random weights; not with --model or --weights")
    return {k: default if getattr(args, k) is None else getattr(args, k) for k, default in defaults.items()}


def run(args: argparse.Namespace) -> int:
    from ..hub.download import DownloadError
    from ..tools import bench

    try:
        options = bench.BenchOptions(
            sizes=bench.parse_sizes(args.sizes),
            frames=args.frames,
            device=args.device,
            precisions=bench.parse_precisions(args.precision),
            model_only=args.model_only,
            reference=args.reference is not None,
            reference_venv=Path(args.reference) if args.reference else None,
            model=args.model,
            weights=args.weights,
            call_options=family_options(args),
            repeat=args.repeat,
            **_random_shape(args),
        )
        result = bench.run_benchmark(options)
    except bench.BenchError as e:
        raise UsageError(str(e)) from None
    except DownloadError as e:  # the message names the model, the URL and what to do offline
        raise VsvsrppError(str(e)) from None
    print(result.to_json() if args.json else result.format_table())
    sys.stdout.flush()
    measured = [r for r in result.rows if r.model is not None or r.end_to_end is not None]
    return EXIT_OK if measured else EXIT_FAILURE
