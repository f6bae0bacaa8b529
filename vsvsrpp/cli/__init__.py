"""The ``vsvsrpp`` command: ``download``, ``upscale``, ``compare``, ``ffmpeg-tags``, ``eval``,
``make-sequences``, ``train`` and ``bench``.

One module per subcommand (each with ``NAME``, ``HELP``, ``add_parser`` and ``run``), light to
import: torch, torchvision and VapourSynth are imported only by the subcommand that runs, so
``vsvsrpp --help`` and ``--version`` answer at once. The command line maps argv to the package's
calls (``upscale`` to a :class:`~vsvsrpp.pipeline.spec.RunSpec` run by :mod:`vsvsrpp.pipeline`
or :mod:`vsvsrpp.cluster`) and errors to exit codes (:func:`vsvsrpp.errors.exit_code`);
:mod:`~vsvsrpp.cli.options` holds the option types shared by the subcommands. Nothing outside
this package imports it. Messages, warnings and progress go to stderr;
stdout carries only the result (paths, tables, JSON, or the video with ``upscale ... -``).

Exit codes: 0 success, 1 failure while processing, 2 bad command line, 129/130/143 ended by
SIGHUP/SIGINT/SIGTERM, 141 the reader of the output pipe went away.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, VsvsrppError, exit_code
from ..pipeline import signals
from ..runtime import control
from . import bench, compare, download, evaluate, sequences, tags, train, upscale

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

_SUBCOMMANDS = (download, upscale, compare, tags, evaluate, sequences, train, bench)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that subcommand gets its options (the others are
    listed with their one-line help), so that building it imports only what that one needs."""
    parser = argparse.ArgumentParser(
        prog="vsvsrpp",
        description="BasicVSR++ video super-resolution and restoration (VapourSynth + PyTorch).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages on stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _SUBCOMMANDS:
        if command is None or module.NAME == command:
            module.add_parser(sub)
        else:
            sub.add_parser(module.NAME, help=module.HELP)
    return parser


def _command(argv: Sequence[str]) -> str:
    """The subcommand named on the command line ('' if none): the first word that is not an
    option (the top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), "")


def setup_logging(verbosity: int) -> None:
    """Log the ``vsvsrpp`` loggers to stderr (INFO, or DEBUG with -v), once."""
    level = logging.INFO if verbosity <= 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vsvsrpp: %(message)s" if verbosity <= 1 else "%(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger("vsvsrpp")
    for old in list(root.handlers):
        if getattr(old, "_vsvsrpp_cli", False):
            root.removeHandler(old)
    handler._vsvsrpp_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vsvsrpp`` console script and ``python -m vsvsrpp``; returns the exit
    code. Handles SIGINT, SIGTERM and SIGHUP while it runs (:mod:`~vsvsrpp.pipeline.signals`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    control.reset()
    signals.install()
    try:
        return _main(argv)
    except signals.Interrupted as e:
        _error(f"interrupted by {e}")
        return e.code
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    finally:
        signals.restore()
        control.reset()


def _main(argv: list[str]) -> int:
    try:
        parser = build_parser(_command(argv))
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    setup_logging(args.verbose)
    try:
        return args.func(args)
    except VsvsrppError as e:
        _error(str(e))
        return exit_code(e)


def _error(message: str) -> None:
    sys.stderr.write(f"vsvsrpp: error: {message}\n")
    sys.stderr.flush()
