"""The command line's error type and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: The reader of the output pipe went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


class CliError(Exception):
    """A failure reported to the user as one message, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code
