"""Cancellation and progress of network passes, between the engine and whoever drives it.

A pass can take minutes on the CPU, and VapourSynth runs it on one of its own threads, where no
signal handler can reach. So the engine checks a process-wide cancellation flag between the
steps of a pass (before every propagation or reconstruction step of every frame, and before
flow estimation) and reports each finished step. The command line sets the flag on SIGINT,
SIGTERM, SIGHUP or a closed output pipe, and turns the reports into a progress bar that moves
during a pass.

* :func:`cancel` / :func:`cancelled` / :func:`reset` / :func:`check`: the flag;
* :func:`add_listener` / :func:`remove_listener` / :func:`report`: progress in output frames
  (fractions of a window's frames while its pass runs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Cancelled", "add_listener", "cancel", "cancelled", "check", "remove_listener", "report", "reset"]

_flag = threading.Event()
_listeners: list[Callable[[float], None]] = []
_listeners_guard = threading.Lock()


from ..errors import Cancelled  # noqa: E402  (raised inside a pass, and before one starts, once cancel() was called)


def cancel() -> None:
    """Ask every running and future pass to stop at its next step (until :func:`reset`)."""
    _flag.set()


def cancelled() -> bool:
    """True once :func:`cancel` was called and :func:`reset` was not called since."""
    return _flag.is_set()


def reset() -> None:
    """Let passes run again."""
    _flag.clear()


def check() -> None:
    """Raise :class:`Cancelled` if :func:`cancel` was called."""
    if _flag.is_set():
        raise Cancelled("cancelled")


def add_listener(listener: Callable[[float], None]) -> None:
    """Call ``listener(frames)`` for every progress report: ``frames`` (float, > 0) output frames
    more are done (a window's pass reports its emitted frames in fractions, step by step)."""
    with _listeners_guard:
        _listeners.append(listener)


def remove_listener(listener: Callable[[float], None]) -> None:
    """Stop calling ``listener``; unknown listeners are ignored."""
    with _listeners_guard:
        if listener in _listeners:
            _listeners.remove(listener)


def report(frames: float) -> None:
    """Tell every listener that ``frames`` more output frames are done (called by the filters'
    window graph from the pass's thread; listeners must be quick and thread-safe)."""
    if frames <= 0:
        return
    with _listeners_guard:
        listeners = list(_listeners)
    for listener in listeners:
        listener(frames)
