"""Option types and option groups shared by the subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hub.registry import DEFAULT_MODEL, OFFLINE_MODELS


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


def _parser(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ``ValueError`` with its own message."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = name
    return convert


def _help(doc: str) -> str:
    """A docstring fragment as ``--help`` text (no reST markup; ``%`` escaped for argparse)."""
    return doc.replace("``", "").replace(":mod:", "").replace("`", "").replace("%", "%%")


def add_family_options(parser) -> None:
    """``--refine-threshold`` etc.: the call options of the families, for checkpoints of those
    (:data:`vsvsrpp.arch.options.CALL_OPTIONS`; no network is imported)."""
    from ..arch.options import CALL_OPTIONS, families_taking

    for option in CALL_OPTIONS:
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            type=_parser(lambda text, o=option: o.check(o.type(text)), option.type.__name__),
            default=None,
            metavar=option.type.__name__.upper(),
            help=f"({families_taking(option)} only) {_help(option.doc)}",
        )


def family_options(args: argparse.Namespace) -> dict[str, Any]:
    """The family call options given on the command line."""
    from ..arch.options import CALL_OPTIONS

    return {o.name: getattr(args, o.name) for o in CALL_OPTIONS if getattr(args, o.name, None) is not None}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """What runs the network on a clip (``upscale`` and ``compare``): ``--model``/``--weights``,
    every filter argument of :data:`vsvsrpp.plugin.params.PARAMS` the command line can set
    (``--device``, ``--window``, ``--overlap``, ``--precision``, ``--tile``, ``--exact-tiles``,
    ``--offload``, ``--dither``...), and the family options; :func:`run_kwargs` reads them back."""
    from ..plugin.params import PARAMS

    add_model_source(parser)
    group = parser.add_argument_group("network options (the filter's arguments; default: the filter's)")
    for param in PARAMS:
        if param.parse is None:
            continue
        default = "" if param.default is None else f" Filter default: {param.default}."
        group.add_argument(
            "--" + param.name.replace("_", "-"),
            dest=param.name,
            type=_parser(param.parse, param.metavar or param.name),
            default=None,
            metavar=param.metavar,
            help=_help(param.doc) + default.replace("%", "%%"),
        )
    add_family_options(group)


def run_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_run_options` the user gave, as filter arguments (the others
    keep the filter's defaults)."""
    from ..plugin.params import PARAMS

    names = ["model", "weights"] + [p.name for p in PARAMS if p.parse is not None]
    kwargs = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return kwargs | family_options(args)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """``-y``/``--overwrite``: what :func:`check_overwrite` asks for before an existing file is replaced."""
    parser.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it is an existing file (refused otherwise)")


def check_writable_dir(directory: Path) -> None:
    """Refuse (exit code 2) a directory where files cannot be created (read-only file system,
    permissions), before any work.

    Raises:
        vsvsrpp.errors.UsageError: naming the directory.
    """
    import os

    from ..errors import UsageError

    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create files in {directory} (read-only or permission denied)")


def check_overwrite(output: Path, overwrite: bool) -> None:
    """Refuse (exit code 2) an existing regular file unless ``overwrite``.

    Raises:
        vsvsrpp.errors.UsageError: naming the file and the option.
    """
    from ..errors import UsageError

    if output.is_file() and not overwrite:
        raise UsageError(f"{output} already exists; give --overwrite (-y) to replace it")
