"""``vsvsrpp ffmpeg-tags``: the ffmpeg flags that describe the colours of the filter's output.

Y4M (what ``vspipe -c y4m`` writes) carries no matrix, transfer or primaries, so a ``vspipe |
ffmpeg`` encode of ``examples/upscale.vpy`` comes out untagged, and players guess (BT.709 for HD,
whatever the source was). The filter's output keeps the source's colours, read the way the
filter reads them; this prints them as ffmpeg output options, for the shell to paste in::

    vspipe -c y4m -a input=in.mp4 examples/upscale.vpy - | ffmpeg -i - $(vsvsrpp ffmpeg-tags in.mp4) out.mkv
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import EXIT_OK, UsageError

NAME = "ffmpeg-tags"
HELP = "print the ffmpeg flags that tag an upscaled video with the source's colours (for vspipe | ffmpeg)"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Print, on one line, the ffmpeg output options (-colorspace, -color_range, "
        "-chroma_sample_location, -color_primaries, -color_trc) describing the colours of the filter's output "
        "for INPUT: the source's own, read as the filter reads them (an untagged matrix from the frame size). "
        "Y4M carries none of them, so paste them into the ffmpeg command of a vspipe pipe.",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="the source video file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        raise UsageError(f"input file not found: {args.input}")
    from ..pipeline import ffmpeg
    from ..pipeline.source import open_source, source_colors

    src = open_source(args.input, check_rate=False)
    tags = ffmpeg.clip_color_args(src, source_colors(src, args.input))
    print(" ".join(shlex.quote(word) for word in ffmpeg.tag_flags(tags)))
    return EXIT_OK
