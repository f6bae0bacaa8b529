"""Training and fine-tuning BasicVSR++ with the paper's recipe.

Defaults follow BasicVSR++ (Chan et al., CVPR 2022, implementation details) and the official
OpenMMLab config ``basicvsr_plusplus_c64n7_8x1_600k_reds4``:

* Charbonnier loss ``mean(sqrt((out - gt)^2 + eps))`` with ``eps = 1e-12`` (mmediting's
  ``charbonnier_loss``);
* Adam, betas (0.9, 0.99), learning rate 1e-4 for the network and 2.5e-5 for SPyNet
  (``lr_mult=0.25``), cosine annealing over all iterations down to 1e-7 (``CosineRestart`` with
  one period and ``min_lr=1e-7``);
* SPyNet frozen for the first 5,000 iterations (``fix_iter=5000``);
* batches of 8 sequences of 30 frames, LR patches of 64x64 (GT 256x256), random horizontal and
  vertical flips and transposes;
* the LR input is made on the fly from ground-truth frames with the BI or BD degradation of
  :mod:`vsvsrpp.degradations`, rounded to 8 bits like the published LR files;
* mixed precision (bf16, or fp16 with loss scaling) on CUDA only.

Every random choice of the data pipeline is a pure function of ``(seed, sample index)``, so any
number of loader workers gives the same batches and a resumed run continues exactly as an
uninterrupted one. Checkpoints use the official layout (``{"state_dict": {"generator.*": ...},
"meta": {...}}``) and load with :func:`vsvsrpp.load_model`; a separate training state (weights,
optimizer, scheduler, loss scaler, iteration, RNG) makes ``resume`` exact. Files are written
atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__, degradations
from .basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig
from .evaluate import find_clips, list_frames, mod_crop, read_frames

log = logging.getLogger("vsvsrpp.train")

__all__ = [
    "AMP_MODES",
    "STATE_FILE",
    "TrainConfig",
    "TrainResult",
    "TrainingSequences",
    "charbonnier_loss",
    "checkpoint_name",
    "cosine_factor",
    "degrade_patch",
    "save_checkpoint",
    "train",
]

AMP_MODES = ("auto", "bf16", "fp16", "off")
#: Name of the resumable training state inside the work folder.
STATE_FILE = "training_state.pth"
#: LR pixels of context degraded around a patch so that it equals a crop of the degraded frame.
PATCH_MARGIN = 3


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults: the paper's REDS recipe).

    Attributes:
        train_dir: folder of sequence folders of ground-truth frames (PNG etc.).
        work_dir: where checkpoints (``iter_<n>.pth``) and the training state go.
        val_dir: folder of clip folders of ground truth for periodic validation (optional).
        degradation: ``"bi"`` or ``"bd"``, applied on the fly.
        iterations: total iterations (600k for REDS, 300k for Vimeo-90K in the paper).
        batch_size: sequences per iteration (8).
        num_frames: frames per training sequence (30).
        patch_size: LR patch side in pixels (64; the GT patch is 4x).
        mid_channels, num_blocks: network size; ``None``: 64 and 7, or those of ``init``.
        init: catalogue name or checkpoint path to fine-tune from.
        spynet_init: catalogue name or checkpoint path whose SPyNet weights initialise the flow
            network (the paper starts from a pretrained SPyNet); ignored with ``init``.
        lr, spynet_lr, betas, min_lr: Adam and the cosine schedule.
        spynet_fix_iters: SPyNet is frozen while ``iteration < spynet_fix_iters``.
        charbonnier_eps: the loss's epsilon (added to the squared difference).
        amp: ``"auto"`` (bf16 where supported, else fp16), ``"bf16"``, ``"fp16"`` or ``"off"``;
            only used on CUDA.
        checkpoint_interval: iterations between checkpoints (and training-state saves).
        val_interval: iterations between validations (0: never).
        val_frames: score only the first N frames of each validation clip.
        val_window, val_overlap: window grid used for validation (as the filter's).
        seed: seeds the network initialisation and every data-pipeline choice.
        num_workers: DataLoader worker processes (0: load in the training process).
        device: torch device (``None``: CUDA when available).
    """

    train_dir: str
    work_dir: str
    val_dir: str | None = None
    degradation: str = "bi"
    iterations: int = 600_000
    batch_size: int = 8
    num_frames: int = 30
    patch_size: int = 64
    mid_channels: int | None = None
    num_blocks: int | None = None
    init: str | None = None
    spynet_init: str | None = None
    lr: float = 1e-4
    spynet_lr: float = 2.5e-5
    betas: tuple[float, float] = (0.9, 0.99)
    min_lr: float = 1e-7
    spynet_fix_iters: int = 5000
    charbonnier_eps: float = 1e-12
    amp: str = "auto"
    checkpoint_interval: int = 5000
    val_interval: int = 5000
    val_frames: int | None = None
    val_window: int = 24
    val_overlap: int = 4
    seed: int = 0
    num_workers: int = 0
    device: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        if self.degradation not in degradations.DEGRADATIONS:
            raise ValueError(f"degradation must be one of {', '.join(degradations.DEGRADATIONS)}, got {self.degradation!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        for name in ("iterations", "batch_size", "num_frames", "patch_size", "checkpoint_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("mid_channels", "num_blocks", "val_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (the network propagates between frames), got {self.num_frames}")
        for name in ("val_interval", "spynet_fix_iters", "num_workers", "val_overlap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.spynet_lr < 0 or self.min_lr < 0:
            raise ValueError("learning rates must be positive")

    def to_meta(self) -> dict:
        """The config as plain Python values (safe for ``torch.load(weights_only=True)``)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    """What a call to :func:`train` did.

    Attributes:
        iteration: iterations completed in total (including those before a resume).
        losses: the training loss of every iteration run by this call, in order.
        val_history: ``(iteration, average PSNR dB)`` of every validation run by this call.
        checkpoint: the last checkpoint written (``None`` if none was).
    """

    iteration: int
    losses: list[float] = field(default_factory=list)
    val_history: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: Path | None = None


# ---------------------------------------------------------------------------------------------
# loss and schedule
# ---------------------------------------------------------------------------------------------


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps))`` (a smooth L1).

    As mmediting's ``charbonnier_loss`` (eps added to the square, default 1e-12); LapSRN
    (Lai et al., CVPR 2017) introduced it for super-resolution.

    Args:
        pred, target: tensors of the same shape (any float dtype; computed in float32).

    Returns:
        Scalar float32 tensor.
    """
    diff = pred.float() - target.float()
    return torch.sqrt(diff * diff + eps).mean()


def cosine_factor(iteration: int, total: int, base_lr: float, min_lr: float) -> float:
    """Multiplier of ``base_lr`` for cosine annealing from ``base_lr`` to ``min_lr``.

    ``lr(i) = min_lr + (base_lr - min_lr) (1 + cos(pi i / total)) / 2`` (SGDR, Loshchilov and
    Hutter 2017, one period; mmcv's ``CosineRestart`` with ``periods=[total]``).

    Returns:
        ``lr(i) / base_lr``.
    """
    t = min(max(iteration, 0), total) / total
    lr = min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * t))
    return lr / base_lr if base_lr > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def degrade_patch(
    frames: torch.Tensor,
    top: int,
    left: int,
    size: int,
    kind: str,
    scale: int = 4,
    margin: int = PATCH_MARGIN,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a GT patch and make its LR patch exactly as a crop of the degraded whole frame.

    The region degraded is the patch plus ``margin`` LR pixels of real context on each side
    (clipped at the frame border, where the degradation's own border rule applies), so the
    result does not depend on where the patch was cut.

    Args:
        frames: ``(t, 3, H, W)`` float RGB in [0, 1], ``H`` and ``W`` multiples of ``scale``.
        top, left: LR coordinates of the patch's top-left corner.
        size: LR patch side.
        kind: ``"bi"`` or ``"bd"``.

    Returns:
        ``(lq, gt)``: ``(t, 3, size, size)`` rounded to 8-bit levels, and
        ``(t, 3, scale*size, scale*size)``; both of ``frames``' dtype.
    """
    h, w = frames.shape[-2] // scale, frames.shape[-1] // scale
    if not (0 <= top and top + size <= h and 0 <= left and left + size <= w):
        raise ValueError(f"patch {size}x{size} at ({top}, {left}) does not fit an LR frame of {h}x{w}")
    y0, y1 = max(0, top - margin), min(h, top + size + margin)
    x0, x1 = max(0, left - margin), min(w, left + size + margin)
    region = frames[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale]
    lq = degradations.degrade(region, kind, scale)
    lq = lq[..., top - y0 : top - y0 + size, left - x0 : left - x0 + size]
    gt = frames[..., top * scale : (top + size) * scale, left * scale : (left + size) * scale]
    return lq, gt


class TrainingSequences(torch.utils.data.Dataset):
    """Random training samples from a folder of ground-truth sequences.

    Sample ``k`` is a pure function of ``(seed, k)``: a sequence chosen uniformly, a random run of
    ``num_frames`` consecutive frames, a random patch, the degradation, then a random horizontal
    flip, vertical flip and transpose (each with probability 1/2, the same for every frame).

    Args:
        root: folder of sequence folders of frames; every sequence needs at least
            ``num_frames`` frames of at least ``scale * patch_size`` pixels per side.
        num_frames, patch_size, degradation, scale, seed: see :class:`TrainConfig`.
        length: the dataset's nominal length (sample indices beyond it are still valid).

    Items are ``(lq, gt)``: ``(num_frames, 3, patch, patch)`` and
    ``(num_frames, 3, scale*patch, scale*patch)`` float32 RGB in [0, 1].

    Raises:
        FileNotFoundError: no sequences in ``root``.
        ValueError: no sequence is long or large enough.
    """

    def __init__(self, root: str | os.PathLike, num_frames: int, patch_size: int, degradation: str, scale: int = 4, seed: int = 0, length: int = 2**62):
        self.num_frames = num_frames
        self.patch_size = patch_size
        self.degradation = degradation
        self.scale = scale
        self.seed = seed
        self.length = length
        self.sequences: list[list[Path]] = []
        skipped = []
        for name, folder in find_clips(root).items():
            frames = list_frames(folder)
            if len(frames) < num_frames:
                skipped.append(f"{name} ({len(frames)} frames)")
                continue
            self.sequences.append(frames)
        if skipped:
            log.warning("skipping %d sequence(s) shorter than %d frames: %s", len(skipped), num_frames, ", ".join(skipped[:5]))
        if not self.sequences:
            raise ValueError(f"no sequence in {root} has {num_frames} or more frames")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        paths = self.sequences[int(rng.integers(len(self.sequences)))]
        start = int(rng.integers(len(paths) - self.num_frames + 1))
        gt_full = mod_crop(read_frames(paths[start : start + self.num_frames]), self.scale)
        h, w = gt_full.shape[-2] // self.scale, gt_full.shape[-1] // self.scale
        p = self.patch_size
        if h < p or w < p:
            raise ValueError(f"frames of {paths[0].parent} are {w * self.scale}x{h * self.scale}, smaller than the GT patch {p * self.scale}")
        top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        # Degrade only the patch plus context (in float64, exact), from 8-bit ground truth.
        s = self.scale
        y0, y1 = max(0, top - PATCH_MARGIN), min(h, top + p + PATCH_MARGIN)
        x0, x1 = max(0, left - PATCH_MARGIN), min(w, left + p + PATCH_MARGIN)
        region = gt_full[..., y0 * s : y1 * s, x0 * s : x1 * s].to(torch.float64) / 255
        lq, gt = degrade_patch(region, top - y0, left - x0, p, self.degradation, s)
        hflip, vflip, transpose = (bool(b) for b in rng.integers(2, size=3))
        lq, gt = lq.float(), gt.float()
        if hflip:
            lq, gt = lq.flip(-1), gt.flip(-1)
        if vflip:
            lq, gt = lq.flip(-2), gt.flip(-2)
        if transpose:
            lq, gt = lq.transpose(-1, -2), gt.transpose(-1, -2)
        return lq.contiguous(), gt.contiguous()


class _IndexRange(torch.utils.data.Sampler):
    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def checkpoint_name(iteration: int) -> str:
    """File name of the checkpoint written after ``iteration`` iterations."""
    return f"iter_{iteration}.pth"


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def save_checkpoint(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write a network in the official OpenMMLab layout, atomically.

    Args:
        model: a :class:`BasicVSRPlusPlus`.
        path: destination ``.pth``.
        meta: plain values stored under ``"meta"``.

    Returns:
        ``path`` as a :class:`Path`. The file holds ``{"state_dict": {"generator.<key>":
        tensor (CPU)}, "meta": meta}`` and loads with :func:`vsvsrpp.load_model`.
    """
    path = Path(path)
    sd = {f"generator.{k}": v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    _atomic_save({"state_dict": sd, "meta": dict(meta or {})}, path)
    return path


def _resolve_checkpoint(name_or_path: str) -> Path:
    from . import catalogue, weights

    if name_or_path in catalogue.MODELS:
        return weights.fetch(catalogue.MODELS[name_or_path])
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"{name_or_path!r} is neither a catalogue name nor a checkpoint file")
    return path


def _build_network(config: TrainConfig) -> BasicVSRPlusPlus:
    from .loading import build_model, read_state_dict

    if config.init is not None:
        model = build_model(read_state_dict(_resolve_checkpoint(config.init)))
        if not isinstance(model, BasicVSRPlusPlus) or not model.config.is_low_res_input:
            raise ValueError(f"{config.init}: only 4x BasicVSR++ networks can be trained here")
        for name in ("mid_channels", "num_blocks"):
            wanted = getattr(config, name)
            if wanted is not None and wanted != getattr(model.config, name):
                raise ValueError(f"{name}={wanted} does not match the init checkpoint ({getattr(model.config, name)})")
        return model
    model = BasicVSRPlusPlus(BasicVSRPPConfig(config.mid_channels or 64, config.num_blocks or 7, True))
    if config.spynet_init is not None:
        from .loading import read_state_dict

        sd = read_state_dict(_resolve_checkpoint(config.spynet_init))
        if any(k.startswith("spynet.") for k in sd):
            sd = {k[len("spynet.") :]: v for k, v in sd.items() if k.startswith("spynet.")}
        missing, unexpected = model.spynet.load_state_dict(sd, strict=False)
        if unexpected or any(k not in ("mean", "std") for k in missing):
            raise ValueError(f"{config.spynet_init}: not SPyNet weights (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


def _arch_of(model: BasicVSRPlusPlus) -> dict:
    return {"mid_channels": model.config.mid_channels, "num_blocks": model.config.num_blocks}


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "bf16" or (config.amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _validate(model: BasicVSRPlusPlus, config: TrainConfig, device: torch.device) -> float:
    from .engine import Engine
    from .evaluate import evaluate, model_method

    engine = Engine(model, device)
    try:
        result = evaluate(
            config.val_dir,
            model_method(engine, config.val_window, config.val_overlap),
            degradation=config.degradation,
            limit_frames=config.val_frames,
        )
    finally:
        model.train()
    return result.psnr


def train(
    config: TrainConfig,
    resume: bool | str | os.PathLike = False,
    progress: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train (or fine-tune) a 4x BasicVSR++ network.

    Args:
        config: the run (see :class:`TrainConfig`).
        resume: ``True`` to continue from ``work_dir/training_state.pth``, or the path of a
            training state; the run then continues from its iteration with the same batches,
            schedule and optimizer state as an uninterrupted run.
        progress: tqdm progress bar on stderr.
        on_iteration: called as ``on_iteration(iteration, loss)`` after every iteration
            (``iteration`` counts completed iterations), after any validation and checkpoint.
        stop_at: stop after this many iterations in total (saving a checkpoint and the
            training state there) although the schedule runs to ``config.iterations``; a later
            ``resume`` continues exactly. For time-boxed jobs.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: bad config, or a state that does not match the config's network.
        FileNotFoundError: missing folders, checkpoints or state.
    """
    from tqdm import tqdm

    config.validate()
    work = Path(config.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device) if config.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")

    state = None
    if resume:
        state_path = work / STATE_FILE if resume is True else Path(resume)
        if not state_path.is_file():
            raise FileNotFoundError(f"no training state to resume from at {state_path}")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        arch = state["arch"]
        for name in ("mid_channels", "num_blocks"):
            wanted = getattr(config, name)
            if wanted is not None and wanted != arch[name]:
                raise ValueError(f"{name}={wanted} does not match the saved state ({arch[name]})")
        model = BasicVSRPlusPlus(BasicVSRPPConfig(arch["mid_channels"], arch["num_blocks"], True))
        model.load_state_dict(state["model"], strict=True)
        start = int(state["iteration"])
        log.info("resuming from iteration %d (%s)", start, state_path)
    else:
        torch.manual_seed(config.seed)
        model = _build_network(config)
        start = 0
    model.to(device).train()

    spynet_params = [p for n, p in model.named_parameters() if n.startswith("spynet.")]
    other_params = [p for n, p in model.named_parameters() if not n.startswith("spynet.")]
    optimizer = torch.optim.Adam(
        [{"params": other_params, "lr": config.lr}, {"params": spynet_params, "lr": config.spynet_lr}],
        betas=tuple(config.betas),
    )
    total = config.iterations
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        [
            lambda it, b=config.lr: cosine_factor(it, total, b, config.min_lr),
            lambda it, b=config.spynet_lr: cosine_factor(it, total, b, config.min_lr),
        ],
    )
    amp_dtype = _amp_dtype(config, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    val_history_all: list = list(state.get("val_history", [])) if state is not None else []

    result = TrainResult(iteration=start)
    end = total if stop_at is None else min(total, stop_at)
    if start >= end:
        log.info("nothing to do: %d iterations already done (stopping at %d)", start, end)
        return result

    dataset = TrainingSequences(config.train_dir, config.num_frames, config.patch_size, config.degradation, 4, config.seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=_IndexRange(start * config.batch_size, end * config.batch_size),
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=False,
    )

    def save(iteration: int) -> Path:
        meta = {
            "iteration": iteration,
            "arch": "basicvsrpp",
            "config": config.to_meta(),
            "vsvsrpp_version": __version__,
            "val_history": [list(v) for v in val_history_all],
        }
        ckpt = save_checkpoint(model, work / checkpoint_name(iteration), meta)
        rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        training_state = {
            "iteration": iteration,
            "arch": _arch_of(model),
            "model": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "rng": rng,
            "config": config.to_meta(),
            "val_history": [list(v) for v in val_history_all],
        }
        _atomic_save(training_state, work / STATE_FILE)
        return ckpt

    bar = tqdm(total=total, initial=start, unit="it", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    iteration = start
    try:
        for lq, gt in loader:
            frozen = iteration < config.spynet_fix_iters
            for p in spynet_params:
                p.requires_grad_(not frozen)
            lq = lq.to(device, non_blocking=True)
            gt = gt.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = model(lq)
            loss = charbonnier_loss(out, gt, config.charbonnier_eps)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss is {loss.item()} at iteration {iteration}; lower the learning rate or use --amp off")
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            iteration += 1
            value = loss.item()
            result.losses.append(value)
            result.iteration = iteration
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}", refresh=False)
            if config.val_dir and config.val_interval and (iteration % config.val_interval == 0 or iteration == total):
                psnr = _validate(model, config, device)
                val_history_all.append((iteration, psnr))
                result.val_history.append((iteration, psnr))
                log.info("iteration %d: validation PSNR %.4f dB", iteration, psnr)
            if iteration % config.checkpoint_interval == 0 or iteration == end:
                result.checkpoint = save(iteration)
                log.debug("saved %s", result.checkpoint)
            if on_iteration is not None:
                on_iteration(iteration, value)
    finally:
        bar.close()
    return result
