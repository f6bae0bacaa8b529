"""A file run in this process: decode, network, encode, for each ``(input, output)`` of a
:class:`~vsvsrpp.pipeline.spec.RunSpec`.

Where the result goes:

* a regular file (new, or existing and replaced): written atomically. ffmpeg writes a hidden
  temporary file next to it, renamed on success and deleted on any failure or signal;
* anything else that exists (a FIFO, a character or block device such as ``/dev/null``):
  written in place, as a stream; the node itself is left as it was;
* ``"-"``: the container goes to stdout; when the reader goes away the run stops within a step
  of the running pass (:class:`vsvsrpp.errors.ReaderGone`).

Audio streams are copied, with the source's start offset between them and the video; the
sample aspect ratio and the colour description are written as ffmpeg options and tags.
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import ffmpeg
from .encode import atomic_output, encode, in_place
from .source import network_clip
from .spec import RunSpec

log = logging.getLogger("vsvsrpp.pipeline")


def prepare_clip(spec: RunSpec, source: Path):
    """The network's output for ``source``, as ffmpeg reads it; returns ``(clip, colour tags)``."""
    _, out, colors = network_clip(source, dict(spec.filter_kwargs))
    return ffmpeg.for_ffmpeg(out), ffmpeg.clip_color_args(out, colors)


def upscale_file(spec: RunSpec, source: Path, output: Path | str) -> None:
    """Run the network on ``source`` and write ``output`` (see the module's description).

    Raises:
        vsvsrpp.errors.VsvsrppError: the source, the network or the encode failed (nothing is
            left at a regular file output); :class:`~vsvsrpp.errors.ReaderGone` when the
            reader of a stream output went away.
    """
    clip, tags = prepare_clip(spec, source)
    streams = ffmpeg.probe_source(source)

    def command(target: str) -> list[str]:
        return ffmpeg.encode_command(clip, tags, spec.encoding, target, streams, spec.container, spec.verbose)

    if output == "-":
        encode(clip, command("pipe:1"), spec.progress, watch_stdout=True)
        return
    output = Path(output)
    if in_place(output):
        encode(clip, command(ffmpeg.file_url(output)), spec.progress)
    else:
        with atomic_output(output) as tmp:
            encode(clip, command(ffmpeg.file_url(tmp)), spec.progress)
    log.info("wrote %s (%dx%d, %d frames)", output, clip.width, clip.height, clip.num_frames)


def run(spec: RunSpec) -> None:
    """:func:`upscale_file` for every pair of ``spec``, in order."""
    for source, output in spec.pairs:
        upscale_file(spec, source, output)
