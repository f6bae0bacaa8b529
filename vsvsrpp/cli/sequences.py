"""``vsvsrpp make-sequences``: training sequences from openly licensed photos
(:mod:`vsvsrpp.tools.train.sequences`)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..errors import EXIT_OK, UsageError, VsvsrppError
from .options import non_negative_float, non_negative_int, positive_int

NAME = "make-sequences"
HELP = "make training sequences from photos by simulated camera motion"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected a positive WIDTHxHEIGHT, got {text!r}")
    return w, h


def add_parser(sub) -> None:
    from ..tools.train.photos import DEFAULT_LICENSES
    from ..tools.train.sequences import SequenceSpec

    d = SequenceSpec()
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Film each photo with a simulated camera (smooth sub-pixel pans, zooms and small rolls over "
        "the photo downscaled so that its JPEG artefacts vanish) and write the sequences as folders of PNG frames "
        "that 'vsvsrpp train' reads, with manifest.json recording the source, author and licence of every photo "
        "used. A photo's source comes from its folder's sources.json or from the known Debian photos "
        "(scripts/get_open_photos); photos of unknown source are refused.",
    )
    p.add_argument("photo_dirs", metavar="PHOTO_DIR", nargs="+", type=Path, help="folders of photos")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder for the sequences (an interrupted build continues)")
    p.add_argument("--sequences", type=positive_int, default=d.sequences, metavar="N", help="how many sequences (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=d.frames, metavar="N", help="frames per sequence (default: %(default)s)")
    p.add_argument("--size", type=_size, default=(d.width, d.height), metavar="WxH", help=f"frame size (default: {d.width}x{d.height})")
    p.add_argument("--min-downscale", type=non_negative_float, default=d.min_downscale, metavar="F", help="smallest factor photos are shrunk by (default: %(default)s)")
    p.add_argument("--max-downscale", type=non_negative_float, default=d.max_downscale, metavar="F", help="largest factor (default: %(default)s)")
    p.add_argument("--max-speed", type=non_negative_float, default=d.max_speed, metavar="PX", help="fastest pan in pixels per frame (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, metavar="N", help="seeds every random choice (default: %(default)s)")
    p.add_argument("--licenses", default=",".join(DEFAULT_LICENSES), metavar="A,B", help="SPDX licences to accept (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tools.train.photos import find_photos
    from ..tools.train.sequences import SequenceSpec, build_sequences

    width, height = args.size
    spec = SequenceSpec(args.sequences, args.frames, height, width, args.min_downscale, args.max_downscale, args.max_speed, args.seed)
    try:
        spec.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        photos = find_photos(args.photo_dirs, [s.strip() for s in args.licenses.split(",") if s.strip()])
        manifest = build_sequences(photos, args.output, spec, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        raise VsvsrppError(str(e)) from None
    licences = Counter(p["license"] for p in manifest["photos"])
    print(f"sequences  {len(manifest['sequences'])} x {spec.frames} frames of {width}x{height} in {args.output}")
    print(f"photos     {len(manifest['photos'])} ({', '.join(f'{n} {k}' for k, n in sorted(licences.items()))})")
    print(f"manifest   {args.output / 'manifest.json'}")
    sys.stdout.flush()
    return EXIT_OK
