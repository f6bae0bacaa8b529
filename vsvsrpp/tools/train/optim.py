"""The paper's objective and optimiser: Charbonnier loss, Adam with a slower SPyNet, cosine
annealing, SPyNet frozen at first, and mixed precision on CUDA.

Sources: BasicVSR++ (Chan et al., CVPR 2022, implementation details) and the OpenMMLab config
``basicvsr_plusplus_c64n7_8x1_600k_reds4`` (``lr_mult=0.25`` for SPyNet, ``fix_iter=5000``,
``CosineRestart`` with one period and ``min_lr=1e-7``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig


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


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an :attr:`TrainConfig.amp` mode on ``device`` (``None``: float32;
    always on the CPU)."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


class Optimisation:
    """Adam over two parameter groups (the network at ``config.lr``, SPyNet at
    ``config.spynet_lr``), the cosine schedule of both over ``config.iterations``, autocast and
    the fp16 loss scaler.

    Args:
        model: the network, already on ``device`` (its parameters are taken as they are).
        config: the run.
        device: where the batches go.

    Attributes:
        optimizer, scheduler, scaler: the torch objects (the scaler is disabled unless fp16).
        amp_dtype: the autocast dtype, ``None`` for float32.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device):
        self.model, self.config, self.device = model, config, device
        self.spynet_params = [p for n, p in model.named_parameters() if n.startswith("spynet.")]
        other_params = [p for n, p in model.named_parameters() if not n.startswith("spynet.")]
        self.optimizer = torch.optim.Adam(
            [{"params": other_params, "lr": config.lr}, {"params": self.spynet_params, "lr": config.spynet_lr}],
            betas=tuple(config.betas),
        )
        total, min_lr = config.iterations, config.min_lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            [
                lambda it, b=config.lr: cosine_factor(it, total, b, min_lr),
                lambda it, b=config.spynet_lr: cosine_factor(it, total, b, min_lr),
            ],
        )
        self.amp_dtype = amp_dtype(config.amp, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    @property
    def lr(self) -> float:
        """The network's current learning rate."""
        return self.optimizer.param_groups[0]["lr"]

    def step(self, lq: torch.Tensor, gt: torch.Tensor, iteration: int) -> float:
        """Run iteration ``iteration`` (0-based) on one batch and step the schedule.

        Args:
            lq, gt: ``(n, t, 3, h, w)`` and ``(n, t, 3, 4h, 4w)`` float32 in [0, 1], any device.
            iteration: iterations completed before this one (decides whether SPyNet is frozen).

        Returns:
            The loss (before the update).

        Raises:
            FloatingPointError: the loss is NaN or infinite.
        """
        frozen = iteration < self.config.spynet_fix_iters
        for p in self.spynet_params:
            p.requires_grad_(not frozen)
        lq = lq.to(self.device, non_blocking=True)
        gt = gt.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            out = self.model(lq)
        loss = charbonnier_loss(out, gt, self.config.charbonnier_eps)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss.item()} at iteration {iteration}; lower the learning rate or use --amp off")
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.item()

    def state_dict(self) -> dict:
        """``{"optimizer", "scheduler", "scaler"}`` state dicts (``scaler``: ``{}`` unless fp16)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (extra keys are ignored)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
