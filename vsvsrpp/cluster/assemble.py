"""Joining a file's segments into the output: concatenation, audio, a frame count check, rename.

The segments are read in order through ffmpeg's concat demuxer. Lossless (FFV1) segments are
encoded once more, with the user's encoder settings, into the output; segments already in the
final codec are copied as they are (each one starts on a keyframe, being a separate encode). The
source's audio is muxed in, the output's frame count is checked against the source's, and the
file is renamed into place; on any failure no output is left. The video keeps the source's start
offset to its audio; its sample aspect ratio comes with the segments (each written with it).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from ..runtime.segments import Segment
from . import workdir as wd
from ..errors import OutputError
from ..pipeline.ffmpeg import SourceStreams, command, count_frames, encoder_options, file_url, video_input_options, video_output_options
from ..pipeline.spec import Encoding

log = logging.getLogger("vsvsrpp.cluster")


def concat_list(workdir: Path, segments: list[Segment]) -> Path:
    """Write the concat demuxer's list of the segment files, in frame order; returns its path."""
    lines = [f"file '{wd.segment_path(workdir, s.index).name}'\n" for s in sorted(segments, key=lambda s: s.start)]
    path = workdir / "segments.txt"
    path.write_text("ffconcat version 1.0\n" + "".join(lines))
    return path


def assemble(workdir: Path, segments: list[Segment], source: SourceStreams, output: Path, num_frames: int, fps: tuple[int, int],
             colors_args: dict[str, str], segment_encoding: Encoding, final: Encoding, container: str | None,
             rgb: bool = False) -> None:  # fmt: skip
    """Write ``output`` from the segment files (see the module's description).

    Args:
        workdir: the file's work directory, every segment done.
        segments: all of the file's segments.
        source: what the output keeps of the input file (:func:`vsvsrpp.pipeline.ffmpeg.probe_source`):
            its audio streams, copied, and the video's start offset to them.
        output: the file to write (atomically: a temporary name next to it, renamed).
        num_frames: the source's frame count; the output must have as many.
        fps: the source's frame rate ``(num, den)``.
        colors_args: ffmpeg's colour tags (:func:`vsvsrpp.pipeline.ffmpeg.color_args`).
        segment_encoding: how the segments were encoded; lossless ones are encoded with
            ``final``, others are copied.
        final: the output's encoder settings.
        container: ffmpeg's format name, or None to guess it from ``output``'s extension.
        rgb: the segments hold RGB frames (converted and tagged like a single run's when the
            final encoder takes only YUV: :func:`vsvsrpp.pipeline.ffmpeg.encoder_options`).

    Raises:
        vsvsrpp.errors.OutputError: ffmpeg failed, or the output's frame count is wrong.
    """
    import subprocess

    import ffmpeg

    from ..pipeline.encode import atomic_output

    listing = concat_list(workdir, segments)
    in_opts = video_input_options(source, Fraction(*fps))
    video = ffmpeg.input(str(listing), format="concat", safe=0, **in_opts)
    opts: dict = {"r": f"{fps[0]}/{fps[1]}", **colors_args, **video_output_options(source, in_opts)}
    if segment_encoding.is_lossless:
        stream, encoder = encoder_options(video["v"], final, rgb)
        opts |= encoder
    else:
        stream, opts["vcodec"] = video["v"], "copy"
    streams = [stream]
    if source.audio:
        streams.append(ffmpeg.input(file_url(source.path))["a?"])
        opts["acodec"] = "copy"
    if container:
        opts["format"] = container
    with atomic_output(output) as tmp:
        cmd = command(ffmpeg.output(*streams, file_url(tmp), **opts))
        log.debug("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip()[-4000:]
            raise OutputError(f"joining the segments of {output.name} failed (ffmpeg exit code {proc.returncode})" + (f":\n{tail}" if tail else ""))
        found = count_frames(tmp)
        if found != num_frames:
            raise OutputError(f"{output.name}: the joined segments hold {found} frames, the source {num_frames}; nothing written")
