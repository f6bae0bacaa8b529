"""What defines a training run (:class:`TrainConfig`) and what a run did (:class:`TrainResult`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ...runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW
from .. import degradations

#: Values of :attr:`TrainConfig.amp`.
AMP_MODES = ("auto", "bf16", "fp16", "off")


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
        init: registry name or checkpoint path to fine-tune from.
        spynet_init: registry name or checkpoint path whose SPyNet weights initialise the flow
            network (the paper starts from a pretrained SPyNet; any BasicVSR, BasicVSR++ or
            RealBasicVSR checkpoint, OpenMMLab or BasicSR layout, or a bare SPyNet), or
            ``"zero"``: SPyNet trained from scratch starting at zero flow. With ``init``, it
            replaces the SPyNet of that checkpoint.
        lr, spynet_lr, betas, min_lr: Adam and the cosine schedule.
        spynet_fix_iters: SPyNet is frozen while ``iteration < spynet_fix_iters``.
        charbonnier_eps: the loss's epsilon (added to the squared difference).
        amp: ``"auto"`` (bf16 where supported, else fp16), ``"bf16"``, ``"fp16"`` or ``"off"``;
            only used on CUDA.
        checkpoint_interval: iterations between checkpoints (and training-state saves).
        val_interval: iterations between validations (0: never).
        val_frames: score only the first N frames of each validation clip.
        val_window, val_overlap: window grid used for validation (the filter's defaults,
            :data:`~vsvsrpp.runtime.windows.DEFAULT_WINDOW` and
            :data:`~vsvsrpp.runtime.windows.DEFAULT_OVERLAP`).
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
    val_window: int = DEFAULT_WINDOW
    val_overlap: int = DEFAULT_OVERLAP
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
        if self.mid_channels is not None:
            from ...arch.basicvsrpp import check_mid_channels

            check_mid_channels(self.mid_channels)  # before anything is made: the network would fail at its first step
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
    """What a call to :func:`~vsvsrpp.tools.train.train` did.

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
