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
  :mod:`vsvsrpp.tools.degradations`, rounded to 8 bits like the published LR files;
* mixed precision (bf16, or fp16 with loss scaling) on CUDA only.

Every random choice of the data pipeline is a pure function of ``(seed, sample index)``, so any
number of loader workers gives the same batches and a resumed run continues exactly as an
uninterrupted one. Checkpoints use the official layout (``{"state_dict": {"generator.*": ...},
"meta": {...}}``) and load with :func:`vsvsrpp.load_model`; a separate training state (weights,
optimizer, scheduler, loss scaler, iteration, RNG) makes ``resume`` exact. Files are written
atomically (temporary file + ``os.replace``).

The modules, by concern:

* :mod:`~vsvsrpp.tools.train.config`: :class:`TrainConfig` and :class:`TrainResult`;
* :mod:`~vsvsrpp.tools.train.data`: the dataset, patch degradation and the batch order;
* :mod:`~vsvsrpp.tools.train.network`: the network a run starts from (``init``, ``spynet_init``);
* :mod:`~vsvsrpp.tools.train.optim`: loss, optimizer, schedule and one optimisation step;
* :mod:`~vsvsrpp.tools.train.checkpoints`: checkpoints and the resumable training state;
* :mod:`~vsvsrpp.tools.train.loop`: :func:`train`, periodic validation and saving.
"""

from __future__ import annotations

from .checkpoints import STATE_FILE, checkpoint_name, save_checkpoint
from .config import AMP_MODES, TrainConfig, TrainResult
from .data import TrainingSequences, degrade_patch
from .loop import train
from .optim import charbonnier_loss, cosine_factor

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
