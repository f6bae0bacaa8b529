"""The package's one error family.

Every failure the package reports on purpose is a :class:`VsvsrppError`, whose message is one
line that says what was wrong and what to do. Callers tell apart only the few subclasses below;
each edge turns them into its own form:

* the filters (:mod:`vsvsrpp.plugin.entry`): ``vs.Error("<Filter>: <message>")``;
* the command line (:mod:`vsvsrpp.cli`): ``vsvsrpp: error: <message>`` on stderr and an exit
  code (:data:`EXIT_CODES`: 2 for a :class:`UsageError`, 141 for :class:`ReaderGone`, 1 for
  the rest).

The subclasses also derive from the built-in exception they used to be (``ValueError`` for
bad arguments and checkpoints, ``RuntimeError`` for downloads and cancellation), so code that
catches those keeps working. This module imports nothing.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Cancelled",
    "CheckpointError",
    "DownloadError",
    "OutputError",
    "ReaderGone",
    "UsageError",
    "VsvsrppError",
    "exit_code",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: The reader of the output pipe went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


class VsvsrppError(Exception):
    """A failure reported to the user as one message (exit code 1 on the command line)."""


class UsageError(VsvsrppError, ValueError):
    """A bad argument, option or path given by the caller, found before any work (exit code 2)."""


class CheckpointError(VsvsrppError, ValueError):
    """A state dict or file is not a checkpoint this package can load (the reason and what to do)."""


class DownloadError(VsvsrppError, RuntimeError):
    """A checkpoint could not be downloaded or failed verification. The message names the URL,
    what went wrong, and where the file can be placed by hand."""


class Cancelled(VsvsrppError, RuntimeError):
    """A network pass stopped because :func:`vsvsrpp.runtime.control.cancel` was called (a
    signal, a closed output pipe)."""


class OutputError(VsvsrppError):
    """The output could not be written (ffmpeg failed, a write failed, nothing was written)."""


class ReaderGone(OutputError):
    """The program reading the output (a pipe, a FIFO) went away (exit code 141)."""


def exit_code(error: VsvsrppError) -> int:
    """The command line's exit code for ``error``: 2, 141 or 1 (see the module's description)."""
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, ReaderGone):
        return EXIT_BROKEN_PIPE
    return EXIT_FAILURE
