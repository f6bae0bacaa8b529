"""Training data: random ground-truth patches degraded on the fly, reproducible by sample index.

Every random choice is a pure function of ``(seed, sample index)`` and the sampler hands out a
contiguous range of indices (iteration ``i`` takes samples ``[i*batch, (i+1)*batch)``), so any
number of loader workers gives the same batches and a resumed run continues with the batches
an uninterrupted run would have drawn.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from .. import degradations
from ..evaluate import find_clips, list_frames, mod_crop, read_frames
from .config import TrainConfig

log = logging.getLogger("vsvsrpp.train")

#: LR pixels of context degraded around a patch so that it equals a crop of the degraded frame.
PATCH_MARGIN = 3


def _context_box(top: int, left: int, size: int, h: int, w: int, margin: int) -> tuple[int, int, int, int]:
    """LR box ``(y0, y1, x0, x1)``: the patch plus ``margin`` pixels each side, clipped to ``h x w``."""
    return max(0, top - margin), min(h, top + size + margin), max(0, left - margin), min(w, left + size + margin)


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
        kind: ``"bi"`` or ``"bd"`` (see :mod:`vsvsrpp.tools.degradations`).

    Returns:
        ``(lq, gt)``: ``(t, 3, size, size)`` rounded to 8-bit levels, and
        ``(t, 3, scale*size, scale*size)``; both of ``frames``' dtype.

    Raises:
        ValueError: the patch does not fit the LR frame.
    """
    h, w = frames.shape[-2] // scale, frames.shape[-1] // scale
    if not (0 <= top and top + size <= h and 0 <= left and left + size <= w):
        raise ValueError(f"patch {size}x{size} at ({top}, {left}) does not fit an LR frame of {h}x{w}")
    y0, y1, x0, x1 = _context_box(top, left, size, h, w, margin)
    region = frames[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale]
    lq = degradations.degrade(region, kind, scale)
    lq = lq[..., top - y0 : top - y0 + size, left - x0 : left - x0 + size]
    gt = frames[..., top * scale : (top + size) * scale, left * scale : (left + size) * scale]
    return lq, gt


def _augment(lq: torch.Tensor, gt: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flip, vertical flip and transpose (each with probability 1/2), applied
    to LR and GT alike; returns contiguous tensors."""
    hflip, vflip, transpose = (bool(b) for b in rng.integers(2, size=3))
    if hflip:
        lq, gt = lq.flip(-1), gt.flip(-1)
    if vflip:
        lq, gt = lq.flip(-2), gt.flip(-2)
    if transpose:
        lq, gt = lq.transpose(-1, -2), gt.transpose(-1, -2)
    return lq.contiguous(), gt.contiguous()


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
        ValueError: no sequence is long enough (on construction), or the frames of the sequence
            drawn for a sample are smaller than the GT patch (on access).
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
        s, p = self.scale, self.patch_size
        h, w = gt_full.shape[-2] // s, gt_full.shape[-1] // s
        if h < p or w < p:
            raise ValueError(f"frames of {paths[0].parent} are {w * s}x{h * s}, smaller than the GT patch {p * s}")
        top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        # Degrade only the patch plus context (in float64, exact), from 8-bit ground truth.
        y0, y1, x0, x1 = _context_box(top, left, p, h, w, PATCH_MARGIN)
        region = gt_full[..., y0 * s : y1 * s, x0 * s : x1 * s].to(torch.float64) / 255
        lq, gt = degrade_patch(region, top - y0, left - x0, p, self.degradation, s)
        return _augment(lq.float(), gt.float(), rng)


class IndexRange(torch.utils.data.Sampler):
    """The sample indices ``start, start + 1, ..., stop - 1``, in order."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def training_batches(config: TrainConfig, start: int, end: int, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The batches of iterations ``[start, end)`` of a run, in order.

    Iteration ``i`` gets samples ``[i * batch_size, (i + 1) * batch_size)`` of a
    :class:`TrainingSequences` over ``config.train_dir`` (4x), whatever ``config.num_workers``.

    Returns:
        A DataLoader of ``(lq, gt)``: ``(batch, num_frames, 3, patch, patch)`` and
        ``(batch, num_frames, 3, 4*patch, 4*patch)`` float32.

    Raises:
        FileNotFoundError, ValueError: see :class:`TrainingSequences`.
    """
    dataset = TrainingSequences(config.train_dir, config.num_frames, config.patch_size, config.degradation, 4, config.seed)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=IndexRange(start * config.batch_size, end * config.batch_size),
        num_workers=config.num_workers,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=False,
    )
