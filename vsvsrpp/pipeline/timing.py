"""Frame timing of a source: is it safe to write it at a constant frame rate?

``vsvsrpp upscale`` writes its output at the rate the source reports (BestSource's average rate).
For a variable frame rate source that moves frames in time and puts the audio out of sync, so
the source's real frame times (a timecode v2 file, which BestSource writes from its index
without decoding) are compared with the times at the constant rate, and the run is refused
when any frame would move by half a frame interval or more.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fastest_rate", "read_timecodes", "retiming_problem"]


def read_timecodes(path: str | os.PathLike) -> list[float]:
    """The frame times, in milliseconds, of a timecode format v2 file (one time per line after
    a ``# timecode format v2`` header; comment lines start with ``#``).

    Raises:
        ValueError: if the file is not in timecode format v2, quoting the bad line.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].lower().startswith("# timecode format v2"):
        raise ValueError(f"{path}: not a timecode format v2 file (first line {lines[0] if lines else ''!r})")
    times = []
    for line in lines[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            times.append(float(line))
        except ValueError:
            raise ValueError(f"{path}: bad time {line!r}") from None
    return times


def fastest_rate(times_ms: list[float]) -> str:
    """The source's fastest frame rate, as text for ``ffmpeg -r`` (e.g. ``"24"``, ``"24000/1001"``):
    the mean of the shortest intervals (those within 10% of the 10th percentile, which averages
    out times rounded to whole milliseconds), snapped to a whole or NTSC (N*1000/1001) rate when
    within 0.01 fps of one. ``"30"`` for fewer than two frames."""
    intervals = sorted(b - a for a, b in zip(times_ms, times_ms[1:]) if b > a)
    if not intervals:
        return "30"
    short = intervals[len(intervals) // 10] * 1.1
    fastest = [d for d in intervals if d <= short]
    rate = 1000.0 * len(fastest) / sum(fastest)
    if abs(rate - round(rate)) < 0.01:
        return str(round(rate))
    ntsc = round(rate * 1.001)
    if abs(rate - ntsc / 1.001) < 0.01:
        return f"{ntsc * 1000}/1001"
    return f"{rate:.3f}".rstrip("0").rstrip(".")


def retiming_problem(times_ms: list[float], fps_num: int, fps_den: int) -> str | None:
    """Why frames at ``times_ms`` cannot be written at ``fps_num/fps_den`` frames per second, or
    ``None`` when every frame stays within half a frame interval of its time.

    Args:
        times_ms: the source's frame times in milliseconds, in display order.
        fps_num, fps_den: the constant rate the output would have (``fps_num`` 0: unknown).

    Returns:
        ``None``, or a sentence naming the frame that moves most, by how much, and a constant
        rate to convert to (the source's fastest rate, so that no frame is dropped).
    """
    if len(times_ms) < 2:
        return None
    suggestion = fastest_rate(times_ms)
    if fps_num <= 0 or fps_den <= 0:
        return f"no constant frame rate is known (try converting at {suggestion} fps)"
    period = 1000.0 * fps_den / fps_num
    drift, frame = max((abs(t - times_ms[0] - i * period), i) for i, t in enumerate(times_ms))
    if drift < period / 2:
        return None
    return (
        f"variable frame rate: frame {frame} is at {(times_ms[frame] - times_ms[0]) / 1000:.3f} s in the source but "
        f"would be at {frame * period / 1000:.3f} s at the constant {fps_num / fps_den:.3f} fps of the output "
        f"(the source's fastest rate is about {suggestion} fps)"
    )
