"""Test sources made with ffmpeg that carry what an output must keep of them (test-only)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

#: Seconds the video of :func:`late_anamorphic_source` starts after its audio.
VIDEO_DELAY = 1.023


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def late_anamorphic_source(directory: Path, size: str = "96x64", frames: int = 6, rate: int = 24) -> Path:
    """An MP4 whose audio starts at 0 s and whose H.264 video (SAR 4:3) starts at
    :data:`VIDEO_DELAY`, as an edit list says."""
    video, audio, out = directory / "late-v.mkv", directory / "late-a.mka", directory / "late.mp4"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-frames:v", str(frames), "-vf", "setsar=4/3",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video))  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(VIDEO_DELAY + frames / rate), "-c:a", "aac", str(audio))
    _ffmpeg("-i", str(audio), "-itsoffset", str(VIDEO_DELAY), "-i", str(video), "-map", "1:v", "-map", "0:a", "-c", "copy", str(out))
    video.unlink()
    audio.unlink()
    return out


def streams(path: Path) -> dict[str, dict]:
    """ffprobe's first video and first audio stream of ``path`` (``{"video": ..., "audio": ...}``,
    frames counted)."""
    cmd = ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)]
    found = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["streams"]
    out: dict[str, dict] = {}
    for s in found:
        out.setdefault(s["codec_type"], s)
    return out


def first_time(path: Path, stream: str) -> float:
    """The time of the first decoded frame of ``stream`` (``"v:0"``, ``"a:0"``) in ``path``
    (a Matroska stream's ``start_time`` is only ffprobe's estimate)."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", stream, "-read_intervals", "%+#1",
           "-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)]  # fmt: skip
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[0].strip(","))


def video_delay(path: Path) -> float:
    """Seconds the video of ``path`` starts after its audio."""
    return first_time(path, "v:0") - first_time(path, "a:0")
