"""The IconVSR parity cases, shared by ``tests/test_iconvsr.py`` and the script that made their
vectors (``scripts/make_iconvsr_vectors.py``, which runs BasicSR's ``IconVSR``).

Nothing big is shipped: the weights and the frames are made here from seeds (integer frames and
``torch.randn`` from a seeded generator), and ``tests/data/iconvsr_parity.pt`` holds the
reference's output at every 7th output pixel (7 is prime to the 4x pixel shuffle, so every
sub-pixel phase is sampled) plus a fingerprint of the weights, so that a change in torch's random
stream shows as such and not as a parity failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from conftest import to_basicsr

VECTORS = Path(__file__).resolve().parent / "data" / "iconvsr_parity.pt"
#: Output pixels between two samples along each axis.
SAMPLE = 7


@dataclass(frozen=True)
class Case:
    """One parity case: a network size, a keyframe stride and a batch of sequences.

    ``reference_pad``: the reference gets the frames padded by edge replication to this size
    (frames below 64 px, which vsvsrpp pads so before running the official network), and its
    output is cropped back.
    """

    name: str
    mid_channels: int
    num_blocks: int
    padding: int
    keyframe_stride: int
    n: int
    t: int
    h: int
    w: int
    seed: int
    reference_pad: tuple[int, int] | None = None


CASES = (
    # 4x, two sequences, keyframes 0, 5, 6 (more frames than one stride; the last appended)
    Case("c16n2p2_2x7_64x64", 16, 2, 2, 5, 2, 7, 64, 64, seed=1),
    # odd size (reflection padding to 68x84), keyframes 0, 3, 6, 7
    Case("c16n1p2s3_8_67x83", 16, 1, 2, 3, 1, 8, 67, 83, seed=2),
    # the Vimeo-90K models' 7-frame EDVR-M, keyframes 0, 5, 6
    Case("c16n1p3_7_64x72", 16, 1, 3, 5, 1, 7, 64, 72, seed=3),
    # below 64 px: edge replication to 64x64 first
    Case("c16n1p2_5_37x53", 16, 1, 2, 5, 1, 5, 37, 53, seed=4, reference_pad=(64, 64)),
)

_SPYNET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_SPYNET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def frames(case: Case) -> torch.Tensor:
    """``(n, t, 3, h, w)`` float32 frames in [0, 1]: crops of a blocky random image (4x4 blocks
    of random 8-bit values) moving by (1, 2) px a frame, each sequence its own image. Integer
    arithmetic only, so they are the same on every machine."""
    g = torch.Generator().manual_seed(case.seed)
    out = torch.empty(case.n, case.t, 3, case.h, case.w)
    for s in range(case.n):
        big = torch.randint(0, 256, (3, (case.h + case.t) // 4 + 2, (case.w + 2 * case.t) // 4 + 2), generator=g, dtype=torch.uint8)
        big = big.repeat_interleave(4, 1).repeat_interleave(4, 2)
        for i in range(case.t):
            out[s, i] = big[:, i : i + case.h, 2 * i : 2 * i + case.w].float() / 255
    return out


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights for the keys and shapes of a state dict (in BasicSR's names): a
    convolution's weight ``N(0, 1 / fan_in)``, a bias ``N(0, 0.05^2)``, drawn in sorted key
    order; SPyNet's normalisation buffers keep their values."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("spynet.mean"):
            out[key] = _SPYNET_MEAN.clone()
        elif key.endswith("spynet.std"):
            out[key] = _SPYNET_STD.clone()
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            out[key] = torch.randn(shape, generator=g) / fan_in**0.5
        else:
            out[key] = 0.05 * torch.randn(shape, generator=g)
    return out


def fingerprint(sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(keys, 2)`` float64: the sum and the sum of squares of each tensor, in sorted key order."""
    return torch.tensor([[sd[k].double().sum().item(), sd[k].double().square().sum().item()] for k in sorted(sd)])


def iconvsr_to_basicsr(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official (OpenMMLab) IconVSR state dict in BasicSR's names, written out by hand from
    BasicSR's ``basicvsr_arch.py`` and ``edvr_arch.py`` (independently of the package's rules):
    BasicVSR's renames (:func:`conftest.to_basicsr`), and in EDVR-M ``pcd_alignment`` ->
    ``pcd_align``, ``feat_l{2,3}_conv{1,2}`` -> ``conv_l{2,3}_{1,2}``, and bare convolutions where
    OpenMMLab has ``ConvModule`` s (``.conv.``)."""
    out = {}
    for key, value in to_basicsr(sd).items():
        if key.startswith("edvr."):
            key = key.replace("edvr.pcd_alignment.", "edvr.pcd_align.")
            key = re.sub(r"edvr\.feat_l(\d)_conv(\d)\.", r"edvr.conv_l\1_\2.", key)
            key = key.replace(".conv.weight", ".weight").replace(".conv.bias", ".bias")
        out[key] = value
    return out


def sampled(out: torch.Tensor) -> torch.Tensor:
    """Every :data:`SAMPLE`-th output pixel along each axis."""
    return out[..., ::SAMPLE, ::SAMPLE].contiguous()
