"""``vsvsrpp train``: train or fine-tune a 4x BasicVSR++ (:mod:`vsvsrpp.tools.train`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from ..errors import EXIT_OK, UsageError, VsvsrppError
from .options import non_negative_float, non_negative_int, positive_float, positive_int

log = logging.getLogger("vsvsrpp.cli")


NAME = "train"
HELP = "train or fine-tune a 4x BasicVSR++ model"


def _options():
    """``(flag, config field, type or choices, metavar, help)`` of the options that set a :class:`TrainConfig` field;
    defaults and choices are the config's."""
    from ..tools.degradations import DEGRADATIONS
    from ..tools.train import AMP_MODES

    return (
        ("--val-dir", "val_dir", Path, "DIR", "folder of clip folders of ground truth for periodic validation"),
        ("--degradation", "degradation", DEGRADATIONS, None, "how the LR input is made"),
        ("--iterations", "iterations", positive_int, "N", "total iterations"),
        ("--batch-size", "batch_size", positive_int, "N", "sequences per iteration"),
        ("--frames", "num_frames", positive_int, "N", "frames per training sequence"),
        ("--patch-size", "patch_size", positive_int, "N", "LR patch side in pixels"),
        ("--mid-channels", "mid_channels", positive_int, "N", "feature channels (default: 64, or those of --init)"),
        ("--num-blocks", "num_blocks", positive_int, "N", "residual blocks per branch (default: 7, or those of --init)"),
        ("--init", "init", str, "NAME|PATH", "fine-tune from a registry model or checkpoint"),
        (("--spynet-init", "--spynet"), "spynet_init", str, "NAME|PATH", "take the initial SPyNet weights from this registry model or checkpoint (any BasicVSR, BasicVSR++ or RealBasicVSR, OpenMMLab or BasicSR layout; also with --init), or 'zero': train SPyNet from scratch, starting at zero flow"),
        ("--lr", "lr", positive_float, "LR", "learning rate of the network"),
        ("--spynet-lr", "spynet_lr", non_negative_float, "LR", "learning rate of SPyNet"),
        ("--min-lr", "min_lr", non_negative_float, "LR", "learning rate at the end of the cosine schedule"),
        ("--spynet-fix-iters", "spynet_fix_iters", non_negative_int, "N", "SPyNet is frozen for the first N iterations"),
        ("--amp", "amp", AMP_MODES, None, "mixed precision on CUDA"),
        ("--checkpoint-interval", "checkpoint_interval", positive_int, "N", "iterations between checkpoints"),
        ("--val-interval", "val_interval", non_negative_int, "N", "iterations between validations (0: never)"),
        ("--val-frames", "val_frames", positive_int, "N", "validate on the first N frames of each clip"),
        ("--val-window", "val_window", positive_int, "N", "window of the validation passes"),
        ("--val-overlap", "val_overlap", non_negative_int, "N", "overlap of the validation passes"),
        ("--seed", "seed", non_negative_int, "N", "seeds the initialisation and every data-pipeline choice"),
        ("--device", "device", str, "DEV", "torch device (default: automatic)"),
    )


def add_parser(sub) -> None:
    from ..tools.train import TrainConfig

    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Train a 4x BasicVSR++ network on ground-truth sequences with the paper's recipe "
        "(Charbonnier loss, Adam, cosine annealing, SPyNet frozen at first, BI/BD degradation made on the fly). "
        "Checkpoints (official layout, loadable by --weights) and a resumable state go to WORK_DIR.",
    )
    p.add_argument("train_dir", metavar="TRAIN_DIR", type=Path, help="folder of sequence folders of ground-truth frames")
    p.add_argument("work_dir", metavar="WORK_DIR", type=Path, help="folder for checkpoints and the training state")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for flag, name, kind, metavar, text in _options():
        default = defaults[name]
        shown = "" if default is None else " (default: %(default)s)"
        flags = (flag,) if isinstance(flag, str) else flag  # (the first is the name, the others aliases)
        if isinstance(kind, tuple):
            p.add_argument(*flags, dest=name, choices=kind, default=default, help=text + shown)
        else:
            p.add_argument(*flags, dest=name, type=kind, default=default, metavar=metavar, help=text + shown)
    p.add_argument("--workers", dest="num_workers", type=non_negative_int, default=min(8, os.cpu_count() or 1), metavar="N", help="data loader processes (default: %(default)s)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="STATE", help="continue from WORK_DIR's training state (or the given state file)")
    p.add_argument("--stop-at", type=positive_int, default=None, metavar="N", help="stop (and save) after N iterations in total; resume later")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="SECONDS", help="stop (and save) after the iteration that passes this many seconds; resume later")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tools import train as training

    if not args.train_dir.is_dir():
        raise UsageError(f"training folder not found: {args.train_dir}")
    if args.val_dir is not None and not args.val_dir.is_dir():
        raise UsageError(f"validation folder not found: {args.val_dir}")
    values = {name: getattr(args, name) for name in ["train_dir", "work_dir", "num_workers"] + [o[1] for o in _options()]}
    paths = {k: str(values[k]) for k in ("train_dir", "work_dir", "val_dir") if values[k] is not None}
    config = training.TrainConfig(**(values | paths))
    try:
        config.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        result = training.train(config, resume=args.resume, progress=not args.no_progress, stop_at=args.stop_at, time_limit=args.time_limit)
    except (FileNotFoundError, ValueError, FloatingPointError, RuntimeError) as e:
        log.debug("training failed", exc_info=True)
        raise VsvsrppError(f"training failed: {e}") from None
    print(f"iterations  {result.iteration}")
    if result.losses:
        tail = result.losses[-10:]
        print(f"loss        {result.losses[-1]:.6f} (mean of the last {len(tail)}: {sum(tail) / len(tail):.6f})")
    if result.val_history:
        it, psnr = result.val_history[-1]
        print(f"val PSNR    {psnr:.4f} dB (iteration {it})")
    if result.checkpoint is not None:
        print(f"checkpoint  {result.checkpoint}")
    sys.stdout.flush()
    return EXIT_OK
