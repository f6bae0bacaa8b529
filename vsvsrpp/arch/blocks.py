"""Building blocks shared by the recurrent VSR networks (BasicVSR++, BasicVSR, RealBasicVSR).

Module and parameter names follow the OpenMMLab (mmediting) layout so that official state dicts
load with ``strict=True``. Conventions used throughout:

* images are ``(n, c, h, w)`` float tensors, RGB in [0, 1] unless stated otherwise;
* optical flow is ``(n, 2, h, w)`` in pixels, channel 0 = x (width) displacement, channel 1 = y,
  and ``flow[:, :, i, j]`` points from pixel ``(i, j)`` of the reference frame to where that pixel
  is found in the frame being warped (backward warping).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .descriptor import SizeRequirements
from .state_dict import Rename


def check_frames(lqs: torch.Tensor, network: str) -> None:
    """Raise ``ValueError`` unless ``lqs`` is a ``(n, t, 3, h, w)`` batch of RGB sequences."""
    if lqs.dim() != 5 or lqs.size(2) != 3:
        raise ValueError(f"{network} expects (n, t, 3, h, w) RGB frames, got shape {tuple(lqs.shape)}")


#: ``sink(i, hr)`` receives output frame ``i`` of a pass, ``(n, 3, scale*h, scale*w)``, as soon as it
#: is reconstructed (a network given a sink returns None instead of stacking its outputs). A
#: network that reconstructs a frame region by region (BasicVSR++ with ``tile=``) calls
#: ``sink(i, hr, (y, x))`` for each region instead: ``hr`` is ``(n, 3, rh, rw)`` and its top-left
#: output pixel is ``(y, x)``; the regions of a frame partition it. A sink with a ``wants(i)``
#: method takes only the frames it wants: the networks skip the reconstruction of the others
#: (the overlap frames of a window, whose features the pass needs but whose output it drops).
Sink = Callable[..., None]


def wants(sink: Sink | None, i: int) -> bool:
    """Whether output frame ``i`` of a pass is to be reconstructed for ``sink`` (every frame
    unless the sink has a ``wants`` method that says otherwise; every frame without a sink)."""
    wanted = getattr(sink, "wants", None)
    return wanted is None or bool(wanted(i))


class Outputs:
    """Where a network's output frames go: to ``sink`` as each is made, or, without a sink,
    into a list stacked at the end (``(n, t, 3, H, W)``)."""

    def __init__(self, sink: Sink | None):
        self.sink, self.frames = sink, []

    def wants(self, i: int) -> bool:
        """See :func:`wants`."""
        return wants(self.sink, i)

    def add(self, i: int, hr: torch.Tensor) -> None:
        if self.sink is not None:
            self.sink(i, hr)
        else:
            self.frames.append(hr)

    def result(self) -> torch.Tensor | None:
        """The stacked frames, or None when a sink took them."""
        return None if self.sink is not None else torch.stack(self.frames, dim=1)


@dataclass(frozen=True)
class Region:
    """A rectangle of a frame, ``[y0, y1) x [x0, x1)`` in pixels (step-wise tiles).

    Attributes:
        y0, y1, x0, x1: its rows and columns.
    """

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def origin(self) -> tuple[int, int]:
        """Its top-left pixel ``(y0, x0)``."""
        return self.y0, self.x0

    def grow(self, halo: int, height: int, width: int) -> Region:
        """This region with ``halo`` pixels more on every side, clipped to a ``height x width`` frame."""
        return Region(max(0, self.y0 - halo), min(height, self.y1 + halo), max(0, self.x0 - halo), min(width, self.x1 + halo))

    def scaled(self, s: int) -> Region:
        """The same rectangle in a frame ``s`` times larger."""
        return Region(self.y0 * s, self.y1 * s, self.x0 * s, self.x1 * s)

    def of(self, x: torch.Tensor) -> torch.Tensor:
        """The region of ``x`` (a view of its last two dimensions)."""
        return x[..., self.y0 : self.y1, self.x0 : self.x1]

    def within(self, outer: Region) -> Region:
        """This region in the coordinates of ``outer`` (which contains it)."""
        return Region(self.y0 - outer.y0, self.y1 - outer.y0, self.x0 - outer.x0, self.x1 - outer.x0)


def tile_regions(height: int, width: int, tile: int) -> list[Region]:
    """Split a ``height x width`` frame into ``ceil(height / tile) x ceil(width / tile)`` tiles of
    near-equal size (at most ``tile`` pixels a side), row by row; they partition the frame.

    Raises:
        ValueError: if ``tile < 1``.
    """
    if tile < 1:
        raise ValueError(f"tile must be >= 1 pixel, got {tile}")

    def cuts(n: int) -> list[int]:
        k = math.ceil(n / tile)
        return [round(i * n / k) for i in range(k + 1)]

    ys, xs = cuts(height), cuts(width)
    return [Region(y0, y1, x0, x1) for y0, y1 in zip(ys, ys[1:]) for x0, x1 in zip(xs, xs[1:])]


def pad_frames(lqs: torch.Tensor, requirements: SizeRequirements) -> torch.Tensor:
    """``lqs`` (``(n, t, c, h, w)``) padded at the bottom and right by edge replication to the
    size ``requirements`` asks for (unchanged when it already meets them)."""
    n, t, c, h, w = lqs.shape
    ph, pw = requirements.padded(h, w)
    if (ph, pw) == (h, w):
        return lqs
    return F.pad(lqs.reshape(n * t, c, h, w), (0, pw - w, 0, ph - h), mode="replicate").view(n, t, c, ph, pw)


def padded_forward(
    core: Callable[..., torch.Tensor | None],
    lqs: torch.Tensor,
    requirements: SizeRequirements,
    scale: int,
    sink: Sink | None = None,
    pad: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **kwargs,
) -> torch.Tensor | None:
    """Run ``core`` on ``lqs`` padded to ``requirements`` and crop its output back.

    Frames are padded at the bottom and right by edge replication (:func:`pad_frames`: the
    content keeps its position and the padding looks like the image border), or by ``pad``; the
    output is cropped to ``(scale*h, scale*w)``. Frames that already meet the requirements are
    passed unchanged.

    Args:
        core: maps ``(n, t, 3, h', w')`` to ``(n, t, 3, scale*h', scale*w')`` (or, given a
            ``sink``, hands the frames to it one by one and returns None).
        lqs: ``(n, t, c, h, w)`` frames.
        requirements: what ``core`` accepts.
        scale: output size / input size of ``core``.
        sink: receives each cropped output frame as it is made (see :data:`Sink`).
        pad: the family's own padding, ``(n, t, c, h, w)`` -> frames that meet ``requirements``,
            padded at the bottom and right only, returning its argument when none is needed
            (IconVSR pads by reflection, as its reference); None: :func:`pad_frames`.
        kwargs: passed to ``core`` (e.g. precomputed ``flows``, ``offload``).

    Returns:
        ``(n, t, 3, scale*h, scale*w)``, or None when a ``sink`` took the frames.

    Raises:
        ValueError: if precomputed ``flows`` come with frames that need padding (they would
            not match the padded frames).
    """
    h, w = lqs.shape[-2:]
    padded = pad_frames(lqs, requirements) if pad is None else pad(lqs)
    if padded is not lqs and kwargs.get("flows") is not None:
        raise ValueError(f"precomputed flows need frames that meet the size requirements, got {h}x{w}")
    if sink is not None:
        oh, ow = h * scale, w * scale

        def cropped(i: int, hr: torch.Tensor, at: tuple[int, int] | None = None) -> None:
            if at is None:
                sink(i, hr[..., :oh, :ow])
            elif at[0] < oh and at[1] < ow:  # a region of padding only is dropped
                sink(i, hr[..., : oh - at[0], : ow - at[1]], at)

        if hasattr(sink, "wants"):
            cropped.wants = sink.wants  # type: ignore[attr-defined]

        core(padded, sink=cropped, **kwargs)
        return None
    out = core(padded, **kwargs)
    return out[..., : h * scale, : w * scale]


class FeatureCache:
    """Where a pass keeps the per-frame features it needs again later: on the compute device,
    or, with ``offload``, in host memory between uses (the reference's ``cpu_cache``), so that
    device memory holds only what the current step reads. Exact: values are moved, not changed.

    On the CPU the host is the device and ``put``/``get`` return their argument.
    """

    def __init__(self, device: torch.device, offload: bool):
        self.device = device
        self.offload = offload and device.type != "cpu"

    def put(self, x: torch.Tensor) -> torch.Tensor:
        """The tensor to keep for later (a host copy when offloading)."""
        return x.to("cpu") if self.offload else x

    def get(self, x: torch.Tensor) -> torch.Tensor:
        """A kept tensor back on the compute device."""
        return x.to(self.device, non_blocking=True) if self.offload else x


def flow_warp(
    x: torch.Tensor, flow: torch.Tensor, padding_mode: str = "zeros", origin: tuple[int, int] | None = None
) -> torch.Tensor:
    """Backward-warp ``x`` with an optical flow field (bilinear sampling).

    The sampling grid is built in float32 with absolute pixel coordinates and normalised with
    ``align_corners=True``, as ``flow_warp`` in mmediting; ``x`` is sampled in float32 too, so
    reduced-precision inputs do not lose sub-pixel accuracy (fp16 spacing is 1 px above 1024).

    Args:
        x: ``(n, c, h, w)`` features or images, any float dtype.
        flow: ``(n, 2, h, w)`` flow in pixels (x, y), same ``h, w`` as ``x``.
        padding_mode: ``"zeros"`` (feature propagation) or ``"border"`` (SPyNet).
        origin: ``(y, x)``: ``flow`` covers only the region of ``x``'s frame whose top-left pixel
            this is, and so does the result (step-wise tiles: the region of a warped whole
            frame, equal to the same crop of warping the whole frame). None: ``(0, 0)``, and
            ``flow`` must be ``x``'s size.

    Returns:
        ``(n, c, fh, fw)`` tensor of ``x.dtype`` (``fh, fw``: ``flow``'s size), channels_last
        when ``x`` is.

    Raises:
        ValueError: if ``flow`` is not 2 channels, or its region does not lie inside ``x``.
    """
    n, _, h, w = x.shape
    fh, fw = flow.shape[-2:]
    oy, ox = origin or (0, 0)
    if flow.shape[1] != 2 or oy < 0 or ox < 0 or oy + fh > h or ox + fw > w or (origin is None and (fh, fw) != (h, w)):
        raise ValueError(
            f"flow_warp: flow of shape {tuple(flow.shape)} at {origin or (0, 0)} does not match x of shape {tuple(x.shape)}"
        )
    flow = flow.float()
    gy, gx = torch.meshgrid(
        torch.arange(oy, oy + fh, device=x.device, dtype=torch.float32),
        torch.arange(ox, ox + fw, device=x.device, dtype=torch.float32),
        indexing="ij",
    )
    px = gx + flow[:, 0]
    py = gy + flow[:, 1]
    grid = torch.stack((2.0 * px / max(w - 1, 1) - 1.0, 2.0 * py / max(h - 1, 1) - 1.0), dim=3)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)
    return out.to(x.dtype, memory_format=memory_format_of(x))


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D channels_last tensor of more than one channel (the fast
    path's features), else ``torch.contiguous_format``."""
    if x.size(1) > 1 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x)))``, 3x3 convolutions, no normalisation (EDSR-style)."""

    def __init__(self, mid_channels: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class ResidualBlocksWithInputConv(nn.Module):
    """A 3x3 input convolution + LeakyReLU(0.1), then ``num_blocks`` residual blocks.

    ``(n, in_channels, h, w) -> (n, out_channels, h, w)``. Keys: ``main.0.*`` (input conv),
    ``main.2.{i}.conv{1,2}.*`` (blocks).
    """

    def __init__(self, in_channels: int, out_channels: int = 64, num_blocks: int = 30):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Sequential(*(ResidualBlockNoBN(out_channels) for _ in range(num_blocks))),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class PixelShufflePack(nn.Module):
    """Convolution to ``out_channels * scale**2`` channels, then pixel shuffle by ``scale``."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel_size: int = 3):
        super().__init__()
        self.scale = scale
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale * scale, kernel_size, 1, (kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), self.scale)


#: BasicSR's names for the upsampling of BasicVSR and BasicVSR++: a bare convolution ``upconv{1,2}``
#: followed by a shared ``nn.PixelShuffle``, where OpenMMLab has ``upsample{1,2}.upsample_conv``
#: (:class:`PixelShufflePack`). Same weights, same computation.
UPSAMPLE_BASICSR: tuple[Rename, ...] = ((r"upconv([12])\.(weight|bias)", r"upsample\g<1>.upsample_conv.\g<2>"),)


class _ConvReLU(nn.Module):
    """Convolution with an optional ReLU; holds ``conv`` so keys read ``...{j}.conv.weight``."""

    def __init__(self, cin: int, cout: int, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 7, 1, 3)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class SPyNetBasicModule(nn.Module):
    """One pyramid level of SPyNet: ``(ref, warped supp, flow)`` (8 channels) -> flow residue."""

    def __init__(self):
        super().__init__()
        self.basic_module = nn.Sequential(
            _ConvReLU(8, 32, True),
            _ConvReLU(32, 64, True),
            _ConvReLU(64, 32, True),
            _ConvReLU(32, 16, True),
            _ConvReLU(16, 2, False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


#: BasicSR's names for SPyNet's convolutions (``SpyNet`` in ``basicsr/archs/spynet_arch.py``): each
#: level's ``basic_module`` is an ``nn.Sequential`` with the ReLUs as modules of their own, so the
#: five convolutions are ``basic_module.{0,2,4,6,8}``, where OpenMMLab (and :class:`SPyNet` here) has
#: ``basic_module.{0..4}.conv``. The ``mean``/``std`` buffers are named alike. The rules apply with
#: or without a prefix (``spynet.`` inside a network, none in a bare SPyNet file).
SPYNET_BASICSR: tuple[Rename, ...] = tuple(
    (rf"((?:.+\.)?basic_module\.\d+\.basic_module\.){2 * i}\.(weight|bias)", rf"\g<1>{i}.conv.\g<2>") for i in range(5)
)


class SPyNet(nn.Module):
    """SPyNet optical flow (Ranjan and Black, CVPR 2017), as used by BasicVSR/BasicVSR++.

    Six pyramid levels; inputs are normalised with the ImageNet mean/std, resized (bilinear) to a
    multiple of 32, and the flow is resized back with its components rescaled.
    """

    def __init__(self):
        super().__init__()
        self.basic_module = nn.ModuleList(SPyNetBasicModule() for _ in range(6))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _pyramid_flow(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        n, _, h, w = ref.shape
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(5):
            refs.append(F.avg_pool2d(refs[-1], kernel_size=2, stride=2, count_include_pad=False))
            supps.append(F.avg_pool2d(supps[-1], kernel_size=2, stride=2, count_include_pad=False))
        refs.reverse()
        supps.reverse()
        flow = refs[0].new_zeros(n, 2, h // 32, w // 32)
        for level, module in enumerate(self.basic_module):
            if level > 0:
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(supps[level], flow, padding_mode="border")
            flow = flow + module(torch.cat([refs[level], warped, flow], 1))
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Flow from ``ref`` to ``supp``.

        Args:
            ref, supp: ``(n, 3, h, w)`` RGB in [0, 1]; ``h, w`` at least 32 (64 recommended).

        Returns:
            ``(n, 2, h, w)`` flow in pixels such that ``flow_warp(supp, flow)`` aligns to ``ref``,
            in SPyNet's parameter dtype (float32 under the engine).
        """
        h, w = ref.shape[-2:]
        # Runs in the dtype of its own parameters: the engine keeps SPyNet in float32 when the
        # rest of a network runs in reduced precision, so flows are always float32.
        ref, supp = ref.to(self.mean.dtype), supp.to(self.mean.dtype)
        h_up, w_up = 32 * math.ceil(h / 32), 32 * math.ceil(w / 32)
        ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = F.interpolate(self._pyramid_flow(ref, supp), size=(h, w), mode="bilinear", align_corners=False)
        scale = torch.tensor([w / w_up, h / h_up], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
        return flow * scale


#: Frame pixels per SPyNet batch in :func:`neighbour_flows` by default (about 1.1 GB: SPyNet
#: holds about 1100 bytes per pixel, see :data:`vsvsrpp.runtime.memory.SPYNET_BYTES_PER_PIXEL`).
#: The memory plan may choose less (:func:`flow_batch`), down to one pair of frames.
FLOW_BATCH_PIXELS = 1 << 20
_flow_batch = contextvars.ContextVar("vsvsrpp_flow_batch_pixels", default=FLOW_BATCH_PIXELS)


@contextlib.contextmanager
def flow_batch(pixels: int | None) -> Iterator[None]:
    """Within the block (on this thread), :func:`neighbour_flows` runs SPyNet on at most
    ``pixels`` frame pixels at a time (always at least one pair); None: the default
    :data:`FLOW_BATCH_PIXELS`. The flows are the same whatever the batch."""
    token = _flow_batch.set(FLOW_BATCH_PIXELS if pixels is None else max(1, int(pixels)))
    try:
        yield
    finally:
        _flow_batch.reset(token)


def neighbour_flows(spynet: SPyNet, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows between neighbouring frames of a batch of sequences, both ways.

    Args:
        spynet: the flow network.
        lqs: ``(n, t, 3, h, w)`` RGB in [0, 1], ``t >= 2``.

    Returns:
        ``(forward, backward)``, each ``(n, t-1, 2, h, w)`` in SPyNet's dtype:
        ``backward[:, i]`` warps frame ``i+1`` onto frame ``i``; ``forward[:, i]`` warps frame
        ``i`` onto frame ``i+1``.
    """
    n, t, c, h, w = lqs.shape
    a = lqs[:, :-1].reshape(-1, c, h, w)
    b = lqs[:, 1:].reshape(-1, c, h, w)
    # both directions in batches of pairs (all of them at small sizes; SPyNet's first level
    # holds about 1100 bytes per pixel, so a batch is bounded by flow_batch's pixels)
    ref, supp = torch.cat((a, b)), torch.cat((b, a))
    step = max(1, _flow_batch.get() // (h * w))
    flows = torch.cat([spynet(ref[i : i + step], supp[i : i + step]) for i in range(0, ref.size(0), step)])
    flows = flows.view(2, n, t - 1, 2, h, w)
    return flows[1], flows[0]
