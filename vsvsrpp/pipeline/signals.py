"""SIGINT, SIGTERM and SIGHUP: end the command promptly, leaving nothing half-written.

:func:`install` makes each of them raise :class:`Interrupted` in the main thread (as Ctrl-C
raises ``KeyboardInterrupt``) and ask running network passes to stop
(:func:`vsvsrpp.runtime.control.cancel`): they stop at their next step, on whatever thread they
run. The ``finally`` clauses on the way out stop ffmpeg and remove temporary outputs and
``.part`` downloads; the command exits with ``128 + signal number`` (130, 143, 129) and one
line on stderr. Further signals while it cleans up are ignored, so cleaning up is not cut short.
"""

from __future__ import annotations

import signal

from ..runtime import control

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A handled signal arrived. ``signum`` is its number, ``code`` the exit code (128 + it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum


def _handle(signum: int, frame) -> None:
    if _received:
        return  # already ending: let the cleanup finish
    _received.append(signum)
    control.cancel()
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as described above (main thread only)."""
    _received.clear()
    for sig in HANDLED:
        signal.signal(sig, _handle)


def restore() -> None:
    """Back to Python's defaults (for callers of :func:`vsvsrpp.cli.main` in-process)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
