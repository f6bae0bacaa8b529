"""The training loop: :func:`train`, and the run it drives (network, optimisation, periodic
validation and checkpoints)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ... import __version__
from ...arch import basicvsrpp
from ...arch.basicvsrpp import BasicVSRPlusPlus
from ...arch.deform import IMPLEMENTATIONS
from ...runtime.device import resolve_device
from ...runtime.engine import Engine
from ..evaluate import evaluate, model_method
from . import checkpoints
from .checkpoints import STATE_FILE, checkpoint_name
from .config import TrainConfig, TrainResult
from .data import training_batches
from .network import build_network
from .optim import Optimisation

log = logging.getLogger("vsvsrpp.train")


def validate(model: BasicVSRPlusPlus, config: TrainConfig, device: torch.device) -> float:
    """Score the network on ``config.val_dir`` as ``vsvsrpp eval`` would.

    An fp32 :class:`~vsvsrpp.runtime.engine.Engine` on ``device`` (the training device: the
    engine records the network there, in float32, which training keeps) runs each clip on the
    window grid ``val_window``/``val_overlap``; the LR input is made with ``config.degradation``
    and only the first ``config.val_frames`` frames are scored (see
    :func:`vsvsrpp.tools.evaluate.evaluate`). The network is in eval mode meanwhile and back in
    train mode afterwards, whatever happens.

    Returns:
        The mean over clips of the clip PSNRs, in dB (Y channel).
    """
    try:
        # the exact path: the fast one would leave the trained network channels_last, so that a
        # resumed run (placed afresh) would not repeat the same arithmetic
        engine = Engine(basicvsrpp.ARCH.describe(model), device, fast=False)
        model.eval()
        result = evaluate(
            config.val_dir,
            model_method(engine, config.val_window, config.val_overlap),
            degradation=config.degradation,
            limit_frames=config.val_frames,
        )
    finally:
        model.train()
    return result.psnr


class _Run:
    """A run in progress: the network on its device, its optimisation, the iterations done and
    every validation so far (those before a resume included)."""

    def __init__(self, config: TrainConfig, device: torch.device, model: BasicVSRPlusPlus, state: dict | None = None):
        self.config, self.device, self.work = config, device, Path(config.work_dir)
        self.model = model.to(device).train()
        for module in self.model.modules():  # the deformable convolution whose backward is fast here
            if hasattr(module, "deform_impl"):
                module.deform_impl = IMPLEMENTATIONS[device.type]
        self.optimisation = Optimisation(self.model, config, device)
        self.iteration = 0
        self.val_history: list = []
        if state is not None:
            self.optimisation.load_state_dict(state)
            checkpoints.restore_rng(state, device)
            self.iteration = int(state["iteration"])
            self.val_history = list(state.get("val_history", []))

    @classmethod
    def start(cls, config: TrainConfig, device: torch.device, resume: bool | str | os.PathLike) -> _Run:
        """A new run (torch seeded with ``config.seed``, then the network built), or the run a
        training state holds."""
        if not resume:
            torch.manual_seed(config.seed)
            return cls(config, device, build_network(config))
        path = checkpoints.state_path(Path(config.work_dir), resume)
        state = checkpoints.load_state(path)
        log.info("resuming from iteration %d (%s)", int(state["iteration"]), path)
        return cls(config, device, checkpoints.restore_network(state, config), state)

    def step(self, lq: torch.Tensor, gt: torch.Tensor) -> float:
        """One iteration on one batch; returns its loss."""
        loss = self.optimisation.step(lq, gt, self.iteration)
        self.iteration += 1
        return loss

    def validate_and_save(self, result: TrainResult, end: int) -> None:
        """Validate every ``val_interval`` iterations and at the end of the schedule; save every
        ``checkpoint_interval`` iterations and at ``end``; record both in ``result``."""
        config, it = self.config, self.iteration
        if config.val_dir and config.val_interval and (it % config.val_interval == 0 or it == config.iterations):
            psnr = validate(self.model, config, self.device)
            self.val_history.append((it, psnr))
            result.val_history.append((it, psnr))
            log.info("iteration %d: validation PSNR %.4f dB", it, psnr)
        if it % config.checkpoint_interval == 0 or it == end:
            result.checkpoint = self.save()
            log.debug("saved %s", result.checkpoint)

    def save(self) -> Path:
        """Write the checkpoint of the current iteration and the training state; return the
        checkpoint's path."""
        history = [list(v) for v in self.val_history]
        meta = {
            "iteration": self.iteration,
            "arch": basicvsrpp.ARCH.id,
            "config": self.config.to_meta(),
            "vsvsrpp_version": __version__,
            "val_history": history,
        }
        path = checkpoints.save_checkpoint(self.model, self.work / checkpoint_name(self.iteration), meta)
        checkpoints.save_state(
            self.work / STATE_FILE,
            iteration=self.iteration,
            model=self.model,
            optimisation=self.optimisation.state_dict(),
            config=meta["config"],
            val_history=history,
            device=self.device,
        )
        return path


def train(
    config: TrainConfig,
    resume: bool | str | os.PathLike = False,
    progress: bool = True,
    on_iteration: Callable[[int, float], None] | None = None,
    stop_at: int | None = None,
    time_limit: float | None = None,
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
        time_limit: stop (saving a checkpoint and the training state) after the first iteration
            that ends this many seconds or more after the call began; a later ``resume``
            continues exactly. For machines lent in short slices.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: bad config or device, or a state or ``init`` checkpoint that does not match
            the config's network.
        FileNotFoundError: missing folders, checkpoints or state.
        FloatingPointError: the loss became NaN or infinite.
    """
    from tqdm import tqdm

    started = time.monotonic()
    config.validate()
    Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    run = _Run.start(config, resolve_device(config.device), resume)
    result = TrainResult(iteration=run.iteration)
    end = config.iterations if stop_at is None else min(config.iterations, stop_at)
    if run.iteration >= end:
        log.info("nothing to do: %d iterations already done (stopping at %d)", run.iteration, end)
        return result
    batches = training_batches(config, run.iteration, end, pin_memory=run.device.type == "cuda")
    bar = tqdm(total=config.iterations, initial=run.iteration, unit="it", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    with bar:
        for lq, gt in batches:
            loss = run.step(lq, gt)
            result.losses.append(loss)
            result.iteration = run.iteration
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{run.optimisation.lr:.2e}", refresh=False)
            run.validate_and_save(result, end)
            if on_iteration is not None:
                on_iteration(run.iteration, loss)
            if time_limit is not None and run.iteration < end and time.monotonic() - started >= time_limit:
                if result.checkpoint is None or result.checkpoint.name != checkpoint_name(run.iteration):
                    result.checkpoint = run.save()
                log.info("time limit of %g s reached after iteration %d; resume to continue", time_limit, run.iteration)
                break
    return result
