"""Option types and option groups shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..hub.registry import DEFAULT_MODEL, OFFLINE_MODELS

if TYPE_CHECKING:
    from ..arch import CallOption


def _number(kind: type, low: float, inclusive: bool, words: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)``, at least ``low`` (or above it), else an error quoting it."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if math.isnan(value) or not (value >= low if inclusive else value > low):
            raise argparse.ArgumentTypeError(f"expected {words}, got {text}")
        return value

    parse.__name__ = words
    return parse


positive_int = _number(int, 1, True, "a positive integer")
non_negative_int = _number(int, 0, True, "a non-negative integer")
positive_float = _number(float, 0, False, "a positive number")
non_negative_float = _number(float, 0, True, "a non-negative number")


def add_model_source(parser: argparse.ArgumentParser, what: str = "run", default: str = DEFAULT_MODEL) -> None:
    """``--model NAME`` or ``--weights PATH`` (exclusive): what :func:`vsvsrpp.hub.resolve` takes;
    ``default`` says what is used when neither is given."""
    if default == DEFAULT_MODEL:
        default += f"; when {DEFAULT_MODEL} cannot be downloaded, the first of {', '.join(OFFLINE_MODELS)} that is installed"
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", default=None, metavar="NAME", help=f"pretrained model to {what}, downloaded on first use (default: {default})")
    group.add_argument("--weights", type=Path, default=None, metavar="PATH", help=f"checkpoint file of any family to {what} (default: {default})")


def model_source(args: argparse.Namespace) -> str | Path:
    """The ``--weights`` path, else the ``--model`` name, else the default model."""
    if args.weights is not None:
        return args.weights
    return args.model if args.model is not None else DEFAULT_MODEL


def _option_type(option: "CallOption") -> Callable[[str], Any]:
    def parse(text: str):
        try:
            return option.check(option.type(text))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = option.type.__name__
    return parse


def family_option_table() -> tuple[tuple["CallOption", str], ...]:
    """Every family's call options: ``(option, names of the families that take it)`` (imports
    the networks, so only the subcommands that run one call it)."""
    from ..arch import ARCHITECTURES, CALL_OPTIONS

    return tuple((option, ", ".join(a.name for a in ARCHITECTURES if option in a.options)) for option in CALL_OPTIONS)


def add_family_options(parser: argparse.ArgumentParser) -> None:
    """``--refine-threshold`` etc.: the call options of the families, for checkpoints of those."""
    for option, families in family_option_table():
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            type=_option_type(option),
            default=None,
            metavar=option.type.__name__.upper(),
            help=f"({families} only) {option.doc}".replace("%", "%%"),
        )


def family_options(args: argparse.Namespace) -> dict[str, Any]:
    """The family call options given on the command line."""
    return {o.name: getattr(args, o.name) for o, _ in family_option_table() if getattr(args, o.name, None) is not None}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """What runs the network on a clip: --model/--weights, --device, --window, --overlap and the
    family options (``upscale`` and ``compare``); :func:`run_kwargs` reads them back."""
    add_model_source(parser)
    parser.add_argument("--device", default=None, metavar="DEV", help="torch device, e.g. cuda, cuda:1, cpu (default: automatic)")
    parser.add_argument("--window", type=positive_int, default=None, metavar="N", help="output frames per network pass (>= 1; default: the filter's)")
    parser.add_argument("--overlap", type=non_negative_int, default=None, metavar="N", help="context frames run on each side of a window and discarded (>= 0; default: the filter's)")
    add_family_options(parser)


def run_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_run_options` the user gave, as filter arguments (the others
    keep the filter's defaults)."""
    kwargs: dict[str, Any] = {}
    for name in ("model", "weights", "device", "window", "overlap"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    return kwargs | family_options(args)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """``-y``/``--overwrite``: what :func:`check_overwrite` asks for before an existing file is replaced."""
    parser.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it is an existing file (refused otherwise)")


def check_overwrite(output: Path, overwrite: bool) -> None:
    """Refuse (exit code 2) an existing regular file unless ``overwrite``.

    Raises:
        vsvsrpp.cli.errors.CliError: naming the file and the option.
    """
    from .errors import EXIT_USAGE, CliError

    if output.is_file() and not overwrite:
        raise CliError(f"{output} already exists; give --overwrite (-y) to replace it", EXIT_USAGE)


def in_place(output: Path) -> bool:
    """True when ``output`` exists and is not a regular file (a FIFO, a device): it is written
    as a stream, not replaced by a renamed temporary file."""
    try:
        mode = output.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)
