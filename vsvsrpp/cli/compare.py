"""``vsvsrpp compare``: one PNG showing, for chosen frames, the source upscaled by a plain
resampler next to the network's output, labelled.

Each row is one frame: on the left the source resized to the output size with ``--method``
(bicubic or nearest), on the right the network's output, both cropped to ``--crop`` (in source
pixels) and converted to 8-bit RGB with the source's colour metadata; a label strip above each
panel names what it shows. The network runs window by window as in ``upscale``, so a chosen
frame gets the same temporal context as in a full run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..hub.registry import DEFAULT_MODEL
from ..errors import EXIT_OK, OutputError, ReaderGone, UsageError, VsvsrppError
from ..pipeline.encode import in_place
from .options import add_overwrite, add_run_options, check_overwrite, check_writable_dir, run_kwargs

log = logging.getLogger("vsvsrpp.cli")

NAME = "compare"
HELP = "render chosen frames, resampled and through the network, side by side in one PNG"

#: Height of the label strip above each panel, in pixels.
LABEL_HEIGHT = 20
#: Gap between panels and rows, in pixels.
GAP = 4


def _frames(text: str) -> list[int]:
    try:
        frames = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame numbers separated by commas, got {text!r}") from None
    if not frames or any(n < 0 for n in frames):
        raise argparse.ArgumentTypeError(f"expected frame numbers >= 0 separated by commas, got {text!r}")
    return frames


def _crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected X,Y >= 0 and W,H >= 1, got {text!r}")
    return x, y, w, h


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="For each chosen frame of INPUT, render the source resized to the output size with a plain "
        "resampler next to the network's output, labelled, as rows of one PNG. Crop to look closely.",
    )
    p.add_argument("input", metavar="INPUT", type=Path, help="input video file, or an image sequence pattern such as frames/%%08d.png")
    p.add_argument("-o", "--output", type=Path, default=Path("compare.png"), help="PNG to write: a file (written atomically), '-' for stdout, or an existing FIFO or device (default: %(default)s)")
    p.add_argument("--frames", type=_frames, default=None, metavar="N[,N...]", help="frame numbers (default: the middle frame)")
    p.add_argument("--crop", type=_crop, default=None, metavar="X,Y,W,H", help="region of the source, in source pixels (default: the whole frame)")
    p.add_argument("--method", choices=("bicubic", "nearest"), default="bicubic", help="resampler of the left panel (default: %(default)s)")
    add_overwrite(p)
    add_run_options(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace, num_frames: int, width: int, height: int) -> tuple[list[int], tuple[int, int, int, int]]:
    frames = args.frames if args.frames is not None else [num_frames // 2]
    bad = [n for n in frames if n >= num_frames]
    if bad:
        raise UsageError(f"--frames {','.join(map(str, bad))}: {args.input} has frames 0-{num_frames - 1}")
    x, y, w, h = args.crop if args.crop is not None else (0, 0, width, height)
    if x + w > width or y + h > height:
        raise UsageError(f"--crop {x},{y},{w},{h} reaches outside the {width}x{height} source")
    return frames, (x, y, w, h)


def _image(frame, box: tuple[int, int, int, int]):
    """An RGB24 frame's region ``box`` (output pixels) as a PIL image."""
    import numpy as np
    from PIL import Image

    x, y, w, h = box
    rgb = np.stack([np.asarray(frame[p]) for p in range(3)], axis=-1)[y : y + h, x : x + w]
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


def render(rows: list[tuple[str, list[tuple[str, object]]]]):
    """One image of labelled panels: ``rows`` of ``(row label, [(panel label, PIL image), ...])``,
    panels of a row side by side, rows one under the other, each panel under a
    :data:`LABEL_HEIGHT` strip reading ``"<row label>  <panel label>"``. Every panel must have
    the size of the first."""
    from PIL import Image, ImageDraw

    w, h = rows[0][1][0][1].size
    columns = max(len(panels) for _, panels in rows)
    sheet = Image.new("RGB", (columns * w + (columns - 1) * GAP, len(rows) * (h + LABEL_HEIGHT) + (len(rows) - 1) * GAP), "black")
    draw = ImageDraw.Draw(sheet)
    for r, (row_label, panels) in enumerate(rows):
        top = r * (h + LABEL_HEIGHT + GAP)
        for c, (label, image) in enumerate(panels):
            left = c * (w + GAP)
            draw.text((left + 4, top + 4), f"{row_label}  {label}", fill="white")
            sheet.paste(image, (left, top + LABEL_HEIGHT))
    return sheet


def _write(sheet, output: Path, stream: bool) -> None:
    """Save ``sheet`` as a PNG to ``output``: stdout (``-``), a FIFO or device in place
    (``stream``), or a file written atomically.

    Raises:
        vsvsrpp.errors.ReaderGone: the reader of stdout or of the FIFO went away.
        vsvsrpp.errors.OutputError: the write failed (a full disk, a read-only file system...).
    """
    from ..pipeline.encode import atomic_output

    try:
        if str(output) == "-":
            sheet.save(sys.stdout.buffer, format="PNG")
            sys.stdout.flush()
        elif stream:
            with open(output, "wb") as f:
                sheet.save(f, format="PNG")
        else:
            with atomic_output(output) as tmp:
                sheet.save(tmp, format="PNG")
    except BrokenPipeError:
        if str(output) == "-":  # what is still buffered for stdout goes nowhere at exit, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise ReaderGone("the reader of the output pipe went away; stopped") from None
    except OSError as e:
        raise OutputError(f"cannot write {output}: {e.strerror or e}") from None


def run(args: argparse.Namespace) -> int:
    stream = str(args.output) == "-" or in_place(args.output)  # stdout, a FIFO or a device: no rename
    check_overwrite(args.output, args.overwrite)
    if not stream and not args.output.parent.is_dir():
        raise UsageError(f"output directory does not exist: {args.output.parent}")
    if not stream:
        check_writable_dir(args.output.parent)
    if not args.input.is_file() and "%" not in args.input.name:  # "%08d.png": an image sequence
        raise UsageError(f"input file not found: {args.input}")
    import vapoursynth as vs

    from ..pipeline.encode import request_frame
    from ..pipeline.source import network_clip
    from ..plugin.colors import to_rgb

    kwargs = run_kwargs(args)
    if args.model is None and args.weights is None:  # the default, or the shipped model in its place: label the one that runs
        from ..hub.checkpoint import resolve

        try:
            kwargs["model"] = resolve(DEFAULT_MODEL, fallback=True).label
        except Exception as e:  # the default cannot be fetched and nothing can stand in
            raise VsvsrppError(f"cannot load {DEFAULT_MODEL}: {e}") from None
    src, out, colors = network_clip(args.input, kwargs, vs.core.get_video_format(vs.RGB24), check_rate=False)
    frames, (x, y, w, h) = _check(args, src.num_frames, src.width, src.height)
    s = out.width // src.width
    resize = vs.core.resize.Bicubic if args.method == "bicubic" else vs.core.resize.Point
    plain = resize(to_rgb(src, colors), out.width, out.height, format=vs.RGB24)
    box = (x * s, y * s, w * s, h * s)
    network = args.weights.name if args.weights is not None else kwargs["model"]
    rows = []
    for n in frames:
        panels = [(f"{args.method} x{s}", _image(request_frame(plain, n), box)), (f"{network} x{s}", _image(request_frame(out, n), box))]
        rows.append((f"frame {n}", panels))
    sheet = render(rows)
    _write(sheet, args.output, stream)
    log.info("wrote %s (%dx%d, %d frame(s))", args.output, sheet.width, sheet.height, len(frames))
    if str(args.output) != "-":
        print(args.output)
    return EXIT_OK
