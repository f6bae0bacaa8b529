"""``vsvsrpp eval``: score bicubic or a model (any family) on a benchmark with the papers'
protocol (:mod:`vsvsrpp.tools.evaluate`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW
from ..errors import EXIT_OK, UsageError, VsvsrppError
from .options import add_family_options, add_model_source, family_options, model_source, non_negative_int, positive_int


NAME = "eval"
HELP = "score bicubic or a model on a benchmark (PSNR/SSIM, the papers' protocol)"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Degrade the ground truth of every clip in GT_DIR (BI: MATLAB bicubic x4; BD: Gaussian "
        "blur sigma 1.6 + every 4th pixel), upscale it with bicubic or a model (run window by window like "
        "the filter), round to 8 bits and score it: PSNR and SSIM on the BT.601 Y channel (or RGB), "
        "averaged per clip, then over clips.",
    )
    p.add_argument("gt_dir", metavar="GT_DIR", type=Path, help="folder of clip folders of ground-truth frames (or one clip folder)")
    p.add_argument("--lq", type=Path, default=None, metavar="DIR", help="read the low-resolution frames from this folder of clip folders instead of degrading GT_DIR")
    p.add_argument("--method", choices=("bicubic", "model"), default=None, help="'bicubic' (MATLAB imresize) or 'model' (default: model)")
    add_model_source(p, "evaluate")
    p.add_argument("--degradation", choices=("bi", "bd"), default="bi", help="how the LR input is made (default: %(default)s)")
    p.add_argument("--bd-offset", type=float, default=None, metavar="PX", help="BD's sampling phase in ground-truth pixels: 0 reproduces the official Vid4 BDx4 frames (default), 1.5 centres the blur on each 4x4 block, as the data BasicSR's BD checkpoint (basicsr-basicvsr-vimeo90k-bd) was trained on")
    p.add_argument("--metric-channel", choices=("y", "rgb"), default="y", help="Y of BT.601 (Vid4, UDM10, Vimeo-90K-T) or RGB (REDS4) (default: %(default)s)")
    p.add_argument("--crop-border", type=non_negative_int, default=0, metavar="N", help="border pixels ignored by the metrics (default: %(default)s, as the OpenMMLab configs)")
    p.add_argument("--limit-frames", type=positive_int, default=None, metavar="N", help="use only the first N frames of each clip")
    p.add_argument("--clips", default=None, metavar="A,B", help="comma-separated clip names (default: all)")
    p.add_argument("--window", type=positive_int, default=None, metavar="N", help=f"output frames per network pass (default: the filter's, {DEFAULT_WINDOW})")
    p.add_argument("--overlap", type=non_negative_int, default=None, metavar="N", help=f"context frames on each side of a window (default: the filter's, {DEFAULT_OVERLAP})")
    p.add_argument("--device", default=None, metavar="DEV", help="torch device for the model (default: automatic)")
    add_family_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _model_method(args: argparse.Namespace, window: int, overlap: int):
    """The network of ``--model``/``--weights`` (any 4x family) as an evaluation method."""
    from ..hub.checkpoint import call_options, load_descriptor, resolve
    from ..runtime.engine import Engine
    from ..tools import evaluate

    source = model_source(args)
    try:
        checkpoint = resolve(source, fallback=args.model is None and args.weights is None)
        descriptor = load_descriptor(checkpoint.path)
        options = call_options(descriptor, checkpoint, family_options(args))
        engine = Engine(descriptor, args.device)
    except Exception as e:  # unknown name, bad checkpoint, failed download, bad device, foreign option
        raise VsvsrppError(f"cannot load {source}: {e}") from None
    if engine.scale != 4:
        raise UsageError(f"{source} is a {engine.scale}x model; the benchmarks are 4x super-resolution")
    return evaluate.model_method(engine, window, overlap, **options), f"{checkpoint.label} ({descriptor.name})"


def run(args: argparse.Namespace) -> int:
    from ..tools import evaluate

    if not args.gt_dir.is_dir():
        raise UsageError(f"ground-truth folder not found: {args.gt_dir}")
    if args.lq is not None and not args.lq.is_dir():
        raise UsageError(f"LR folder not found: {args.lq}")
    if args.method == "bicubic" and (args.model is not None or args.weights is not None or family_options(args)):
        raise UsageError("--method bicubic takes no --model, --weights or network options")
    if args.weights is not None and not args.weights.is_file():
        raise UsageError(f"weights file not found: {args.weights}")
    if args.bd_offset is not None and (args.degradation != "bd" or args.lq is not None):
        raise UsageError("--bd-offset sets how --degradation bd samples the ground truth; it takes no --lq and no other degradation")
    window = args.window if args.window is not None else DEFAULT_WINDOW
    overlap = args.overlap if args.overlap is not None else DEFAULT_OVERLAP
    if args.method == "bicubic":
        method, name = evaluate.bicubic_method(4), "bicubic"
    else:
        method, name = _model_method(args, window, overlap)
    try:
        result = evaluate.evaluate(
            args.gt_dir,
            method,
            degradation=args.degradation,
            channel=args.metric_channel,
            crop_border=args.crop_border,
            limit_frames=args.limit_frames,
            clips=[c for c in args.clips.split(",") if c] if args.clips else None,
            lq_root=args.lq,
            method_name=name,
            progress=not args.no_progress,
            bd_offset=args.bd_offset or 0.0,
        )
    except (FileNotFoundError, ValueError) as e:
        raise VsvsrppError(str(e)) from None
    print(result.to_json() if args.json else result.format_table())
    sys.stdout.flush()
    return EXIT_OK
