"""BasicVSR++ (Chan et al., "BasicVSR++: Improving Video Super-Resolution with Enhanced
Propagation and Alignment", CVPR 2022).

Second-order grid propagation (backward_1, forward_1, backward_2, forward_2) over per-frame
features, each step aligned by second-order flow-guided deformable convolution; SPyNet supplies
the flow. Parameter names and shapes match the official mmediting checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    SPYNET_BASICSR,
    UPSAMPLE_BASICSR,
    FeatureCache,
    Outputs,
    PixelShufflePack,
    Region,
    ResidualBlocksWithInputConv,
    SPyNet,
    Sink,
    check_frames,
    flow_warp,
    memory_format_of,
    neighbour_flows,
    padded_forward,
    tile_regions,
    wants,
)
from .deform import IMPLEMENTATIONS, modulated_deform_conv3x3
from .descriptor import Architecture, MemoryShape, SizeRequirements
from .state_dict import CheckpointError, StateDict, count_blocks, out_channels, require_keys

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
#: Deformable groups of the second-order alignment (as in the official networks).
DEFORM_GROUPS = 16


def check_mid_channels(mid_channels: int) -> None:
    """Refuse feature widths the alignment cannot use: its deformable convolution splits the
    ``2 * mid_channels`` channels of both propagated features into :data:`DEFORM_GROUPS` groups.

    Raises:
        ValueError: ``mid_channels`` is not a positive multiple of 8 (the message says so).
    """
    step = DEFORM_GROUPS // 2
    if mid_channels < 1 or mid_channels % step:
        raise ValueError(
            f"mid_channels must be a multiple of {step} for BasicVSR++ (its deformable alignment splits 2 x mid_channels "
            f"channels into {DEFORM_GROUPS} groups), got {mid_channels}"
        )


@dataclass(frozen=True)
class BasicVSRPPConfig:
    """Hyperparameters of a BasicVSR++ network.

    Attributes:
        mid_channels: feature channels (64 for the VSR models, 128 for the NTIRE models).
        num_blocks: residual blocks per propagation branch (7, 15 or 25 in official checkpoints).
        is_low_res_input: True for 4x super-resolution; False for the 1x restoration models
            (deblur, denoise, decompress), which extract features with two stride-2 convolutions.
        max_residue_magnitude: bound on the learned offset residue around the flow, in pixels.
    """

    mid_channels: int = 64
    num_blocks: int = 7
    is_low_res_input: bool = True
    max_residue_magnitude: float = 10.0

    def __post_init__(self):
        check_mid_channels(self.mid_channels)

    @property
    def scale(self) -> int:
        return 4 if self.is_low_res_input else 1

    @property
    def size_requirements(self) -> SizeRequirements:
        # SPyNet runs on the low-res frames and needs >= 64 px; the 1x models run it on a 4x
        # bicubic downscale of the input and their features are at 1/4 resolution.
        return SizeRequirements(64, 1) if self.is_low_res_input else SizeRequirements(256, 4)


class SecondOrderDeformableAlignment(nn.Module):
    """Flow-guided deformable alignment of the n-1 and n-2 propagated features (paper Sec. 3.2).

    A small CNN predicts, from the flow-warped features, the current feature and both flows, an
    offset residue (bounded by ``max_residue_magnitude * tanh``) added to the flows, and a
    sigmoid modulation mask; a modulated deformable 3x3 convolution with 16 deformable groups
    (:func:`~vsvsrpp.arch.deform.modulated_deform_conv3x3`, same offset layout as mmcv) then
    fuses both features. Parameters ``weight``/``bias`` are the deformable convolution's,
    ``conv_offset.*`` the CNN's.

    Attributes:
        deform_impl: ``"torchvision"`` (the exact path, default) or ``"sampled"`` (set by the
            fast path; see :mod:`vsvsrpp.arch.deform`).
    """

    deform_impl = "torchvision"

    def __init__(self, mid_channels: int, deform_groups: int = 16, max_residue_magnitude: float = 10.0):
        super().__init__()
        self.deform_groups = deform_groups
        self.max_residue_magnitude = max_residue_magnitude
        self.weight = nn.Parameter(torch.empty(mid_channels, 2 * mid_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(mid_channels))
        nn.init.kaiming_uniform_(self.weight, a=1)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * mid_channels + 4, mid_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(mid_channels, mid_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(mid_channels, mid_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(mid_channels, 27 * deform_groups, 3, 1, 1),
        )

    def forward(
        self,
        x: torch.Tensor | tuple[torch.Tensor, torch.Tensor | None],
        cond: torch.Tensor,
        flow_1: torch.Tensor,
        flow_2: torch.Tensor,
        region: Region | None = None,
        cond_region: Region | None = None,
    ) -> torch.Tensor:
        """Align.

        Args:
            x: ``(n, 2C, h, w)`` unwarped n-1 and n-2 propagated features, concatenated; or,
                for a region, the pair of whole-frame ``(n, C, H, W)`` maps (float32; the n-2
                one None where it is zero: the first aligned step), sampled without a
                concatenated copy.
            cond: ``(n, 3C, h, w)`` warped n-1 feature, current feature, warped n-2 feature.
            flow_1, flow_2: ``(n, 2, h, w)`` flows (x, y) to frames n-1 and n-2, on ``cond``'s
                pixels.
            region, cond_region: step-wise tiles (see :meth:`BasicVSRPlusPlus.forward`'s
                ``tile``): ``cond`` and the flows cover ``cond_region`` of the frame, and the
                output covers ``region``, inside it (far enough inside for the offset
                convolutions to see all they read).

        Returns:
            ``(n, C, h, w)`` aligned feature (the region's size with ``region``).
        """
        dtype, layout = cond.dtype, memory_format_of(cond)
        flows = [f.to(dtype, memory_format=layout) for f in (flow_1, flow_2)]
        out = self.conv_offset(torch.cat([cond, *flows], dim=1))
        if region is not None:  # the convolutions' context is cut: keep the region they see whole
            inner = region.within(cond_region)
            out, flow_1, flow_2 = inner.of(out), inner.of(flow_1), inner.of(flow_2)
        o1, o2, mask = torch.chunk(out.float(), 3, dim=1)
        offset = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        offset_1, offset_2 = torch.chunk(offset, 2, dim=1)
        # deform_conv2d offsets are (dy, dx) pairs: flip the (x, y) flow and repeat it for every
        # group and kernel tap of the half of the input that the flow belongs to.
        reps = offset_1.size(1) // 2
        offset_1 = offset_1 + flow_1.float().flip(1).repeat(1, reps, 1, 1)
        offset_2 = offset_2 + flow_2.float().flip(1).repeat(1, reps, 1, 1)
        mask = torch.sigmoid(mask)
        if region is not None:  # each half of the groups samples its own whole-frame map
            half = mask.size(1) // 2
            c = self.weight.size(1) // 2
            weight = self.weight.float() if self.deform_impl == "torchvision" else self.weight
            at = region.origin
            out = modulated_deform_conv3x3(
                x[0], offset_1, mask[:, :half], weight[:, :c], self.bias.to(weight.dtype), self.deform_impl, at
            )
            if x[1] is not None:
                zero = torch.zeros_like(self.bias, dtype=weight.dtype)
                out = out + modulated_deform_conv3x3(
                    x[1], offset_2, mask[:, half:], weight[:, c:], zero, self.deform_impl, at
                )
            return out.to(dtype, memory_format=layout)
        # Offsets are sampling positions: keep them, the mask and the sampling in float32 even
        # when the network runs in reduced precision. The exact path also multiplies in float32;
        # the sampled one multiplies in the network's dtype (no-ops in float32).
        if self.deform_impl == "torchvision":
            weight, bias = self.weight.float(), self.bias.float()
            x = x.float()
        else:
            weight, bias = self.weight, self.bias
        offset = torch.cat([offset_1, offset_2], dim=1)
        out = modulated_deform_conv3x3(x, offset, mask, weight, bias, self.deform_impl)
        return out.to(dtype)


class BasicVSRPlusPlus(nn.Module):
    """The BasicVSR++ network.

    ``forward`` takes ``(n, t, 3, h, w)`` float RGB in [0, 1] (any ``t >= 1``, any ``h, w >= 1``)
    and returns ``(n, t, 3, scale*h, scale*w)``. Frames smaller than the network's
    ``size_requirements`` are padded by edge replication and the output is cropped back.

    Attributes:
        config: the :class:`BasicVSRPPConfig`.
        scale: 4 for super-resolution models, 1 for restoration models.
        size_requirements: what the core network needs; ``forward`` pads to it.
    """

    def __init__(self, config: BasicVSRPPConfig = BasicVSRPPConfig()):
        super().__init__()
        self.config = config
        self.scale = config.scale
        self.size_requirements = config.size_requirements
        c = config.mid_channels
        self.spynet = SPyNet()
        if config.is_low_res_input:
            self.feat_extract = ResidualBlocksWithInputConv(3, c, 5)
        else:
            self.feat_extract = nn.Sequential(
                nn.Conv2d(3, c, 3, 2, 1),
                nn.LeakyReLU(negative_slope=0.1, inplace=True),
                nn.Conv2d(c, c, 3, 2, 1),
                nn.LeakyReLU(negative_slope=0.1, inplace=True),
                ResidualBlocksWithInputConv(c, c, 5),
            )
        self.deform_align = nn.ModuleDict(
            {b: SecondOrderDeformableAlignment(c, DEFORM_GROUPS, config.max_residue_magnitude) for b in BRANCHES}
        )
        self.backbone = nn.ModuleDict(
            {b: ResidualBlocksWithInputConv((2 + i) * c, c, config.num_blocks) for i, b in enumerate(BRANCHES)}
        )
        self.reconstruction = ResidualBlocksWithInputConv(5 * c, c, 5)
        self.upsample1 = PixelShufflePack(c, c, 2, 3)
        self.upsample2 = PixelShufflePack(c, 64, 2, 3)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    # -- stages ---------------------------------------------------------------------------------

    def _propagate(
        self, feats: dict[str, list[torch.Tensor]], flows: torch.Tensor, branch: str, cache: FeatureCache
    ) -> None:
        """Run one propagation branch, appending its per-frame features to ``feats[branch]``.

        Each step takes the spatial feature of the current frame, the features of the branches
        already run, and the aligned output of the previous one or two steps (second order).
        Kept features go through ``cache`` (host memory when offloading).
        """
        t = len(feats["spatial"])
        backward = branch.startswith("backward")
        order = range(t - 1, -1, -1) if backward else range(t)
        others = [k for k in feats if k not in ("spatial", branch)]
        kept: list[torch.Tensor] = []
        feat_prop = torch.zeros_like(cache.get(feats["spatial"][0]))  # in the features' memory format
        feat_n1 = feat_n2 = feat_prop  # the outputs of the last two steps, on the device
        for i, idx in enumerate(order):
            feat_current = cache.get(feats["spatial"][idx])
            if i > 0:
                flow_n1, flow_n2 = _step_flows(flows, idx, i, backward)
                cond_n1 = flow_warp(feat_prop, flow_n1)
                if i > 1:
                    cond_n2 = flow_warp(feat_n2, flow_n2)
                else:
                    feat_n2 = torch.zeros_like(feat_prop)
                    flow_n2 = torch.zeros_like(flow_n1)
                    cond_n2 = torch.zeros_like(cond_n1)
                cond = torch.cat([cond_n1, feat_current, cond_n2], dim=1)
                feat_prop = self.deform_align[branch](torch.cat([feat_prop, feat_n2], dim=1), cond, flow_n1, flow_n2)
            feat = torch.cat([feat_current] + [cache.get(feats[k][idx]) for k in others] + [feat_prop], dim=1)
            feat_prop = feat_prop + self.backbone[branch](feat)
            feat_n2, feat_n1 = feat_n1, feat_prop
            kept.append(cache.put(feat_prop))
        feats[branch] = kept[::-1] if backward else kept

    def _upsample(self, feat: torch.Tensor) -> torch.Tensor:
        """The reconstruction of one frame's concatenated features ``(n, 5C, h, w)``: the
        residual ``(n, 3, 4h, 4w)`` added to the upscaled (or, for the 1x models, the input)
        frame."""
        hr = self.reconstruction(feat)
        hr = self.lrelu(self.upsample1(hr))
        hr = self.lrelu(self.upsample2(hr))
        hr = self.lrelu(self.conv_hr(hr))
        return self.conv_last(hr)

    def _reconstruct(
        self, lqs: torch.Tensor, feats: dict[str, list[torch.Tensor]], cache: FeatureCache, sink: Sink | None
    ) -> torch.Tensor | None:
        outputs = Outputs(sink)
        for i in range(lqs.size(1)):
            if not outputs.wants(i):
                continue
            hr = self._upsample(torch.cat([cache.get(feats[k][i]) for k in ("spatial",) + BRANCHES], dim=1))
            if self.config.is_low_res_input:
                hr = hr + F.interpolate(lqs[:, i], scale_factor=4, mode="bilinear", align_corners=False)
            else:
                hr = hr + lqs[:, i]
            outputs.add(i, hr)
        return outputs.result()

    # -- step-wise tiles ------------------------------------------------------------------------

    def _tiled(
        self,
        lqs: torch.Tensor,
        flows: tuple[torch.Tensor, torch.Tensor] | None,
        sink: Sink,
        cache: FeatureCache,
        tile: int,
    ) -> None:
        """:meth:`forward_core` with every stage run tile by tile (see :meth:`forward`'s ``tile``)."""
        n, t, _, h, w = lqs.shape
        fs = 1 if self.config.is_low_res_input else 4  # input pixels per feature pixel
        fh, fw = h // fs, w // fs
        tiles = tile_regions(fh, fw, max(1, tile // fs))
        halo = halos(self.config)
        feats: dict[str, list[torch.Tensor]] = {"spatial": []}
        for i in range(t):
            full = None
            for core in tiles:
                part = core.grow(halo.extract, fh, fw)
                y = self.feat_extract(part.scaled(fs).of(lqs[:, i]))
                full = _region_target(full, y, fh, fw)
                core.of(full).copy_(core.within(part).of(y))
            feats["spatial"].append(cache.put(full))
        if t > 1 and flows is None:
            flows = neighbour_flows(self.spynet, self._small(lqs))
        for branch in BRANCHES:
            flow = None if t == 1 else flows[1] if branch.startswith("backward") else flows[0]
            self._propagate_tiled(feats, flow, branch, cache, tiles)
        for i in range(t):
            if not wants(sink, i):
                continue
            for core in tiles:
                part = core.grow(halo.reconstruction, fh, fw)
                hr = self._upsample(torch.cat([cache.get(part.of(feats[k][i])) for k in ("spatial",) + BRANCHES], dim=1))
                hr = core.within(part).scaled(4).of(hr)
                if self.config.is_low_res_input:  # bilinear reads 1 px around: the halo has it
                    base = F.interpolate(part.of(lqs[:, i]), scale_factor=4, mode="bilinear", align_corners=False)
                    hr = hr + core.within(part).scaled(4).of(base)
                else:
                    hr = hr + core.scaled(4).of(lqs[:, i])
                sink(i, hr, (4 * core.y0, 4 * core.x0))

    def _propagate_tiled(
        self,
        feats: dict[str, list[torch.Tensor]],
        flows: torch.Tensor | None,
        branch: str,
        cache: FeatureCache,
        tiles: list[Region],
    ) -> None:
        """:meth:`_propagate`, each step tile by tile: a tile's step reads the current and the
        other branches' features and the flows in its step halo (:func:`halos`), and samples the
        previous two steps' outputs, kept whole on the device, wherever its flow points."""
        t = len(feats["spatial"])
        fh, fw = feats["spatial"][0].shape[-2:]
        backward = branch.startswith("backward")
        order = range(t - 1, -1, -1) if backward else range(t)
        others = [k for k in feats if k not in ("spatial", branch)]
        kept: list[torch.Tensor] = []
        align = self.deform_align[branch]
        halo = halos(self.config)
        # what the alignment samples: the last two steps' outputs, whole, on the device, in
        # float32 and the plain layout (views of its groups' channels without copies); the
        # newest is converted once and becomes the older one at the next step
        sources: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        full = None
        for i, idx in enumerate(order):
            if i > 0:
                flow_n1, flow_n2 = _step_flows(flows, idx, i, backward)  # whole frames: 2 channels
                sources = (full.float().contiguous(), sources[0])
            full = None
            for core in tiles:
                inner = core.grow(halo.backbone, fh, fw)  # what the backbone reads
                outer = core.grow(halo.step, fh, fw)  # and the offset convolutions
                current = cache.get(outer.of(feats["spatial"][idx]))
                if i == 0:
                    aligned = torch.zeros_like(inner.within(outer).of(current))
                else:
                    f1 = outer.of(flow_n1)
                    cond_n1 = flow_warp(sources[0], f1, origin=outer.origin).to(current.dtype)
                    if i > 1:
                        f2 = outer.of(flow_n2)
                        cond_n2 = flow_warp(sources[1], f2, origin=outer.origin).to(current.dtype)
                    else:
                        f2, cond_n2 = torch.zeros_like(f1), torch.zeros_like(cond_n1)
                    cond = torch.cat([cond_n1, current, cond_n2], dim=1)
                    aligned = align(sources, cond, f1, f2, region=inner, cond_region=outer)
                feat = [inner.within(outer).of(current)] + [cache.get(inner.of(feats[k][idx])) for k in others]
                step = aligned + self.backbone[branch](torch.cat(feat + [aligned], dim=1))
                full = _region_target(full, step, fh, fw)
                core.of(full).copy_(core.within(inner).of(step))
            kept.append(cache.put(full))
        feats[branch] = kept[::-1] if backward else kept

    def _small(self, lqs: torch.Tensor) -> torch.Tensor:
        """The frames SPyNet sees: the input, or for the 1x models its 4x bicubic downscale."""
        if self.config.is_low_res_input:
            return lqs
        n, t, c, h, w = lqs.shape
        small = F.interpolate(lqs.reshape(-1, c, h, w), scale_factor=0.25, mode="bicubic")
        return small.view(n, t, c, h // 4, w // 4)

    def compute_flows(self, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flows a pass over ``lqs`` uses, for :meth:`forward`'s ``flows`` (the engine
        computes them once on whole frames and crops them for each spatial tile).

        Args:
            lqs: ``(n, t, 3, h, w)``, ``t >= 2``, meeting ``size_requirements``.

        Returns:
            ``(forward, backward)``, each ``(n, t-1, 2, h/s, w/s)`` float32 (``s``: 1 for the 4x
            models, 4 for the 1x models, whose features are at quarter resolution); see
            :func:`~vsvsrpp.arch.blocks.neighbour_flows`.
        """
        return neighbour_flows(self.spynet, self._small(lqs))

    def forward_core(
        self,
        lqs: torch.Tensor,
        flows: tuple[torch.Tensor, torch.Tensor] | None = None,
        sink: Sink | None = None,
        offload: bool = False,
        tile: int | None = None,
    ) -> torch.Tensor | None:
        """The network proper, without padding: ``lqs`` must meet ``size_requirements``."""
        n, t, c, h, w = lqs.shape
        cache = FeatureCache(lqs.device, offload)
        if tile is not None:
            if sink is None:
                raise ValueError("BasicVSR++: step-wise tiles (tile=...) need a sink for the output regions")
            return self._tiled(lqs, flows, sink, cache, tile)
        if cache.offload:  # frame by frame, as the reference's cpu_cache: bounded device memory
            feats = {"spatial": [cache.put(self.feat_extract(lqs[:, i])) for i in range(t)]}
        else:
            spatial = self.feat_extract(lqs.reshape(-1, c, h, w))
            spatial = spatial.view(n, t, *spatial.shape[1:])
            feats = {"spatial": [spatial[:, i] for i in range(t)]}
        if t == 1:  # a single frame: no neighbour, no alignment step is ever taken
            flows_forward = flows_backward = None
        elif flows is not None:
            flows_forward, flows_backward = flows
        else:
            flows_forward, flows_backward = neighbour_flows(self.spynet, self._small(lqs))
        for branch in BRANCHES:
            self._propagate(feats, flows_backward if branch.startswith("backward") else flows_forward, branch, cache)
        return self._reconstruct(lqs, feats, cache, sink)

    def forward(
        self,
        lqs: torch.Tensor,
        flows: tuple[torch.Tensor, torch.Tensor] | None = None,
        sink: Sink | None = None,
        offload: bool = False,
        tile: int | None = None,
    ) -> torch.Tensor | None:
        """Super-resolve (or restore) a batch of frame sequences.

        Args:
            lqs: ``(n, t, 3, h, w)`` float RGB in [0, 1].
            flows: precomputed :meth:`compute_flows` of these frames (or crops of those of
                larger frames); the frames must then meet ``size_requirements``.
            sink: receives each output frame as it is reconstructed, instead of a stacked
                result (see :data:`~vsvsrpp.arch.blocks.Sink`).
            offload: keep the per-frame features in host memory between uses (exact; less
                device memory, more transfers; nothing changes on the CPU).
            tile: step-wise tiles of at most this many input pixels a side (None: whole
                frames). Every stage (feature extraction, each propagation step, each frame's
                reconstruction) runs tile by tile, each tile with the context that stage reads
                (:func:`halos`), on whole-frame
                flows, and the alignment samples the previous steps' whole-frame features: the
                output equals the whole-frame pass up to float rounding. Device memory holds
                the whole-frame flows, three feature maps of one branch and one tile's
                transients (the kept features too unless ``offload``). Needs a ``sink``, which
                receives each frame region by region (``sink(i, hr, (y, x))``).

        Returns:
            ``(n, t, 3, scale*h, scale*w)``, same dtype, values not clamped; None with a
            ``sink``.

        Raises:
            ValueError: if ``lqs`` is not 5-D with 3 channels, ``flows`` come with frames
                that need padding, or ``tile`` comes without a ``sink``.
        """
        check_frames(lqs, "BasicVSR++")
        return padded_forward(
            self.forward_core, lqs, self.size_requirements, self.scale, sink, flows=flows, offload=offload, tile=tile
        )


def _step_flows(flows: torch.Tensor, idx: int, i: int, backward: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The flows of step ``i`` (frame ``idx``) of a branch: to the previous step's frame, and
    (from the third step on) to the one before, composed through the first (None before).

    ``flows[:, j]`` maps between frames j and j+1; the previous frame of a step is idx+1
    (backward) or idx-1 (forward)."""
    flow_n1 = flows[:, idx] if backward else flows[:, idx - 1]
    if i < 2:
        return flow_n1, None
    flow_n2 = flows[:, idx + 1] if backward else flows[:, idx - 2]
    return flow_n1, flow_n1 + flow_warp(flow_n2, flow_n1)


@dataclass(frozen=True)
class Halos:
    """Feature pixels of context each stage of a step-wise tile reads around the tile.

    Attributes:
        extract: feature extraction: 11 3x3 convolutions (the 1x models' two strided ones add
            3/4 px: 12).
        backbone: a propagation step's backbone: 1 + 2 x ``num_blocks`` convolutions.
        step: a whole propagation step: the 4 offset convolutions before the backbone (the
            deformable convolution reads its offsets at its own pixel only).
        reconstruction: 11 convolutions at the feature resolution, then the first upsampling's
            (1 px), the second's at 2x (1/2 px), conv_hr's and conv_last's at 4x (1/4 px each).
    """

    extract: int
    backbone: int
    step: int
    reconstruction: int = 13


def halos(config: BasicVSRPPConfig) -> Halos:
    """The :class:`Halos` of a network of ``config`` (``tests/test_exact_tiles.py`` shows each is
    the least that gives whole-frame output)."""
    backbone = 1 + 2 * config.num_blocks
    return Halos(11 if config.is_low_res_input else 12, backbone, 4 + backbone)


def _region_target(full: torch.Tensor | None, part: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The whole-frame map that tiles like ``part`` are written into (made on the first tile,
    in ``part``'s dtype, device and memory format)."""
    if full is not None:
        return full
    n, c = part.shape[:2]
    return torch.empty((n, c, height, width), dtype=part.dtype, device=part.device, memory_format=memory_format_of(part))


_SPYNET_KEY = "spynet.basic_module.0.basic_module.0.conv.weight"


#: BasicSR's ``BasicVSRPlusPlus`` (``basicsr/archs/basicvsrpp_arch.py``): the same modules as
#: OpenMMLab's but for the upsampling convolutions (``upconv1``/``upconv2``) and SPyNet's names.
BASICSR_RULES = (*UPSAMPLE_BASICSR, *SPYNET_BASICSR)


class BasicVSRPPArchitecture(Architecture):
    """BasicVSR++: detection from ``deform_align.*`` / ``backbone.*`` keys; BasicSR's layout
    (``upconv1``/``upconv2``, SPyNet's ``basic_module.{0,2,4,6,8}``) is read too.

    Hyperparameters read off the state dict: ``mid_channels`` is the output width of
    ``reconstruction.main.0``; ``num_blocks`` the number of residual blocks in
    ``backbone.backward_1``; ``is_low_res_input`` is False when features are extracted with the
    strided convolutions of the 1x models (``feat_extract.0.weight``). ``max_residue_magnitude``
    is not stored in checkpoints; the official value 10 is used.
    """

    id = "basicvsrpp"
    name = "BasicVSR++"
    entry_point = "BasicVSRPP"
    network = BasicVSRPlusPlus
    fp32_modules = ("spynet",)
    step_modules = tuple(f"backbone.{b}" for b in BRANCHES) + ("reconstruction",)
    output_step_modules = ("reconstruction",)
    layouts = {"BasicSR": BASICSR_RULES}
    summary = (
        "Super-resolve (or restore) a clip with BasicVSR++ (Chan et al., CVPR 2022): second-order grid "
        "propagation with flow-guided deformable alignment; 4x models for clean or mildly compressed "
        "footage, 1x models for deblurring, denoising and compression-artefact removal."
    )

    def matches(self, sd: StateDict) -> bool:
        return any(k.startswith(("deform_align.", "backbone.")) for k in sd)

    def read_config(self, sd: StateDict) -> BasicVSRPPConfig:
        require_keys(
            sd,
            ("reconstruction.main.0.weight", "backbone.backward_1.main.0.weight", _SPYNET_KEY),
            self.name,
            "generator.backbone.backward_1.*",
            "; BasicVSR (backward_resblocks.*) and RealBasicVSR (image_cleaning.*) checkpoints are accepted too",
        )
        if "feat_extract.main.0.weight" in sd:
            low_res = True
        elif "feat_extract.0.weight" in sd:
            low_res = False
        else:
            raise CheckpointError("not a BasicVSR++ state dict: no feat_extract.main.0.weight or feat_extract.0.weight")
        return BasicVSRPPConfig(
            mid_channels=out_channels(sd, "reconstruction.main.0.weight"),
            num_blocks=count_blocks(sd, "backbone.backward_1"),
            is_low_res_input=low_res,
        )

    def memory_shape(self, config: BasicVSRPPConfig) -> MemoryShape:
        # spatial features + four propagation branches, kept for every frame of a pass. One
        # step holds the alignment's offsets and mask (432 + 288 + 288 + 144 float32 channels at
        # least, 16 deformable groups, with their reorders about 1760) and about 16 feature maps
        # (concatenated inputs, activations, layout copies); the reconstruction about two
        # 64-channel maps at the output size. Measured on the CPU: 7955, 9367 and 10908 bytes per
        # pixel of a step at 16, 32 and 64 channels; 137-167 output channels.
        c = config.mid_channels
        return MemoryShape(
            c, 5, 1 if config.is_low_res_input else 4, config.scale,
            step_bytes=4 * (1760 + 16 * c), step_bytes_reduced=4 * 1760 + 2 * 16 * c, hr_channels=130,
            tile_halo=max(dataclasses.astuple(halos(config))),
        )  # fmt: skip

    def reach(self, config: BasicVSRPPConfig) -> int:
        # 3x3 convolutions read 1 px each: feature extraction (1 + 2 x 5), one propagation step
        # (4 offset convolutions, the deformable 3x3 at up to max_residue_magnitude px around
        # the flow, 1 + 2 x num_blocks backbone convolutions), the reconstruction (1 + 2 x 5 at
        # the feature resolution, then about 2 px of convolutions at 2x and 4x); times the
        # feature stride of the 1x models.
        step = 4 + 1 + math.ceil(config.max_residue_magnitude) + 1 + 2 * config.num_blocks
        stride = 1 if config.is_low_res_input else 4
        return (11 + step + 13) * stride

    def fast_path(self, model: BasicVSRPlusPlus, device: torch.device) -> None:
        super().fast_path(model, device)
        for module in model.modules():  # (a test's stand-in network may have none)
            if isinstance(module, SecondOrderDeformableAlignment):
                module.deform_impl = IMPLEMENTATIONS[device.type]

    def make_config(self, mid_channels: int, num_blocks: int, scale: int = 4) -> BasicVSRPPConfig:
        if scale not in (1, 4):
            raise ValueError(f"BasicVSR++ networks are 4x or 1x, not {scale}x")
        return BasicVSRPPConfig(mid_channels, num_blocks, is_low_res_input=scale == 4)

    def label(self, config: BasicVSRPPConfig) -> str:
        return f"{self.name} c{config.mid_channels}n{config.num_blocks} x{config.scale}"


ARCH = BasicVSRPPArchitecture()
