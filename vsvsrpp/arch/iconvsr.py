"""IconVSR (Chan et al., "BasicVSR: The Search for Essential Components in Video Super-Resolution
and Beyond", CVPR 2021, Sec. 4).

BasicVSR (:mod:`vsvsrpp.arch.basicvsr`) with two additions:

* information refill: at keyframes, an EDVR-M feature extractor (Wang et al., "EDVR: Video
  Restoration with Enhanced Deformable Convolutional Networks", CVPRW 2019: pyramid, cascading
  and deformable (PCD) alignment and temporal-spatial attention (TSA) fusion over
  ``2 * padding + 1`` frames centred on the keyframe) computes a feature that a 3x3 convolution
  fuses into the propagated feature, in both branches, so that errors accumulated by the
  alignment are refilled from the frames themselves;
* coupled propagation: the forward branch takes the backward branch's feature of the same frame
  as input (besides the frame and its own propagated feature), so both directions are
  aggregated before the upsampling, which reads the forward feature only.

Module and parameter names follow the official OpenMMLab (mmediting / mmagic) ``IconVSRNet`` and
its ``EDVRFeatureExtractor`` (``edvr.pcd_alignment.*``, ``edvr.fusion.*``), so its checkpoints load
with ``strict=True``; BasicSR's ``IconVSR`` (``basicsr/archs/basicvsr_arch.py``) is read through
:data:`BASICSR_RULES`. The propagation blocks, SPyNet, flow warping and the pixel shuffle are
shared (:mod:`vsvsrpp.arch.blocks`); the modulated deformable convolutions of the PCD alignment
are :func:`~vsvsrpp.arch.deform.modulated_deform_conv3x3`.

Keyframes depend on the pass's window: they are frames ``0, keyframe_stride, 2 * keyframe_stride,
...`` counted from the first frame of the pass, plus its last frame, as in the reference (which
chooses them per input sequence). A frame's output therefore depends on where its window starts
and ends; it is deterministic on the window grid, as for the other families, but two window
grids give different outputs for the same frame.
"""

from __future__ import annotations

import re
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
    ResidualBlockNoBN,
    ResidualBlocksWithInputConv,
    Sink,
    SPyNet,
    check_frames,
    flow_warp,
    neighbour_flows,
    pad_frames,
    padded_forward,
)
from .deform import IMPLEMENTATIONS, modulated_deform_conv3x3
from .descriptor import Architecture, MemoryShape, SizeRequirements
from .state_dict import CheckpointError, Rename, StateDict, count_blocks, out_channels, require_keys

__all__ = ["ARCH", "EDVRFeatureExtractor", "IconVSR", "IconVSRConfig", "keyframes", "refill_frames"]

#: The smallest frame side IconVSR runs at: smaller frames are padded by edge replication (the
#: official network warns below 64 px, SPyNet's six-level pyramid).
MIN_SIZE = 64
#: Frame sides must be multiples of this (the three levels of EDVR's pyramid); frames are
#: padded by reflection at the bottom and right, as the reference does.
MULTIPLE = 4


@dataclass(frozen=True)
class IconVSRConfig:
    """Hyperparameters of an IconVSR network (always 4x).

    Attributes:
        mid_channels: feature channels of the propagation and of EDVR-M (64 official; the
            fusion convolutions take ``mid_channels`` channels of each).
        num_blocks: residual blocks per propagation branch (30 official).
        padding: frames on each side of a keyframe that EDVR-M reads (2 for the REDS model:
            5 frames; 3 for the Vimeo-90K models: 7 frames). Read from the TSA fusion's width.
        keyframe_stride: frames between keyframes (5 official; not stored in checkpoints).
        extraction_blocks: residual blocks of EDVR-M's feature extraction (5 official).
        deform_groups: deformable groups of the PCD alignment (8 official).
    """

    mid_channels: int = 64
    num_blocks: int = 30
    padding: int = 2
    keyframe_stride: int = 5
    extraction_blocks: int = 5
    deform_groups: int = 8

    def __post_init__(self):
        if self.mid_channels < 1 or self.deform_groups < 1 or self.mid_channels % self.deform_groups:
            raise ValueError(
                f"mid_channels must be a positive multiple of deform_groups ({self.deform_groups}) for IconVSR "
                f"(its PCD alignment splits the features into deformable groups), got {self.mid_channels}"
            )
        if self.padding < 1 or self.keyframe_stride < 1:
            raise ValueError(
                f"IconVSR needs padding >= 1 and keyframe_stride >= 1, got padding={self.padding}, "
                f"keyframe_stride={self.keyframe_stride}"
            )

    @property
    def scale(self) -> int:
        return 4

    @property
    def size_requirements(self) -> SizeRequirements:
        return SizeRequirements(MIN_SIZE, MULTIPLE)


def keyframes(t: int, stride: int) -> list[int]:
    """The keyframes of a pass over ``t`` frames: ``0, stride, 2 * stride, ...`` and ``t - 1``
    (the reference's rule, per input sequence)."""
    frames = list(range(0, t, stride))
    if frames[-1] != t - 1:
        frames.append(t - 1)
    return frames


def refill_frames(t: int, padding: int, k: int) -> list[int]:
    """The ``2 * padding + 1`` frames EDVR-M reads for keyframe ``k`` of a pass over ``t`` frames.

    Frames ``k - padding .. k + padding``; positions before the first frame and after the last
    are filled as the reference fills them (it extends the sequence by frames
    ``2p, 2p - 1, ..., p + 1`` in front and ``t - p - 2, ..., t - 2p - 1`` at the end, ``p`` =
    ``padding``): position ``j < 0`` reads frame ``p - j``, position ``j >= t`` reads frame
    ``2t - p - 2 - j``. The reference needs ``t >= 2p + 1`` (it fails on shorter sequences);
    for shorter passes the indices are clamped to the pass, ``[0, t - 1]``.
    """
    out = []
    for j in range(k - padding, k + padding + 1):
        if j < 0:
            j = padding - j
        elif j >= t:
            j = 2 * t - padding - 2 - j
        out.append(min(max(j, 0), t - 1))
    return out


class ConvAct(nn.Module):
    """A convolution, then LeakyReLU(0.1) unless ``act`` is False; holds ``conv`` so that keys
    read ``....conv.weight`` (OpenMMLab's ``ConvModule``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.leaky_relu(x, 0.1) if self.act else x


class ModulatedDCNPack(nn.Module):
    """A modulated deformable 3x3 convolution whose offsets and mask come from another feature
    (EDVR's ``DCNPack``): ``conv_offset`` maps that feature to ``27 * deform_groups`` channels,
    split in thirds ``(o1, o2, m)``; the offsets are ``cat(o1, o2)`` in pixels (mmcv's and
    torchvision's ``(dy, dx)`` layout), the mask ``sigmoid(m)``. Parameters ``weight``/``bias``
    are the deformable convolution's (``(c_out, c_in, 3, 3)``, ``(c_out,)``).

    Attributes:
        deform_impl: ``"torchvision"`` (the exact path, default) or ``"sampled"`` (set by the
            fast path; see :mod:`vsvsrpp.arch.deform`).
    """

    deform_impl = "torchvision"

    def __init__(self, in_channels: int, out_channels: int, deform_groups: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=1)
        self.conv_offset = nn.Conv2d(in_channels, 27 * deform_groups, 3, 1, 1)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """``(n, c_in, h, w)`` features, sampled where ``extra`` (``(n, c_in, h, w)``) says ->
        ``(n, c_out, h, w)`` in ``x``'s dtype. Offsets, mask and sampling stay float32 in every
        precision (as the alignment of BasicVSR++)."""
        dtype = x.dtype
        o1, o2, mask = torch.chunk(self.conv_offset(extra).float(), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        mask = torch.sigmoid(mask)
        if self.deform_impl == "torchvision":
            weight, bias, x = self.weight.float(), self.bias.float(), x.float()
        else:
            weight, bias = self.weight, self.bias
        return modulated_deform_conv3x3(x, offset, mask, weight, bias, self.deform_impl).to(dtype)


class PCDAlignment(nn.Module):
    """EDVR's pyramid, cascading and deformable alignment of a neighbour's features to the
    reference frame's, over three levels (1, 1/2, 1/4 of the frame size), coarse to fine.

    At each level ``l`` (3, 2, 1) offset features are computed from the neighbour's and the
    reference's features (``offset_conv1``, and with the 2x upsampled offsets of the coarser
    level times 2, ``offset_conv2``/``offset_conv3``); ``dcn_pack`` samples the neighbour's
    features with them; below level 3 ``feat_conv`` merges the upsampled aligned feature of the
    coarser level (LeakyReLU at levels 3 and 2, none at level 1). A cascading deformable
    convolution then refines the level-1 result against the reference (``cas_*``), followed by
    a LeakyReLU.
    """

    def __init__(self, mid_channels: int, deform_groups: int):
        super().__init__()
        c = mid_channels
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        for level in (3, 2, 1):
            name = f"l{level}"
            self.offset_conv1[name] = ConvAct(2 * c, c)
            if level == 3:
                self.offset_conv2[name] = ConvAct(c, c)
            else:
                self.offset_conv2[name] = ConvAct(2 * c, c)
                self.offset_conv3[name] = ConvAct(c, c)
                self.feat_conv[name] = ConvAct(2 * c, c, act=level == 2)
            self.dcn_pack[name] = ModulatedDCNPack(c, c, deform_groups)
        self.cas_offset_conv1 = ConvAct(2 * c, c)
        self.cas_offset_conv2 = ConvAct(c, c)
        self.cas_dcnpack = ModulatedDCNPack(c, c, deform_groups)

    def forward(self, neighbour: list[torch.Tensor], reference: list[torch.Tensor]) -> torch.Tensor:
        """Align.

        Args:
            neighbour, reference: the features of the two frames at levels 1, 2, 3:
                ``(n, c, h, w)``, ``(n, c, h/2, w/2)``, ``(n, c, h/4, w/4)`` (``h, w``
                multiples of 4).

        Returns:
            ``(n, c, h, w)``: the neighbour's features aligned to the reference.
        """
        up_offset = up_feat = None
        for level in (3, 2, 1):
            name = f"l{level}"
            nbr, ref = neighbour[level - 1], reference[level - 1]
            offset = self.offset_conv1[name](torch.cat([nbr, ref], dim=1))
            if level == 3:
                offset = self.offset_conv2[name](offset)
            else:
                offset = self.offset_conv3[name](self.offset_conv2[name](torch.cat([offset, up_offset], dim=1)))
            feat = self.dcn_pack[name](nbr, offset)
            if level == 3:
                feat = F.leaky_relu(feat, 0.1)
            else:
                feat = self.feat_conv[name](torch.cat([feat, up_feat], dim=1))
            if level > 1:  # offsets are in pixels: twice as many at twice the size
                up_offset = _upsample2(offset) * 2
                up_feat = _upsample2(feat)
        offset = self.cas_offset_conv2(self.cas_offset_conv1(torch.cat([feat, reference[0]], dim=1)))
        return F.leaky_relu(self.cas_dcnpack(feat, offset), 0.1)


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class TSAFusion(nn.Module):
    """EDVR's temporal and spatial attention fusion of ``num_frames`` aligned features.

    Temporal attention: each frame's features are weighted, per pixel, by the sigmoid of the
    dot product of their embedding (``temporal_attn2``) with the centre frame's
    (``temporal_attn1``); a 1x1 convolution (``feat_fusion``) fuses the weighted frames. Spatial
    attention: a three-level pyramid (max and average pooling, 3x3 stride 2) of 1x1 and 3x3
    convolutions (``spatial_attn*``) gives a multiplicative map ``2 * sigmoid(a)`` and an
    additive one.
    """

    def __init__(self, mid_channels: int, num_frames: int):
        super().__init__()
        c = mid_channels
        self.center = num_frames // 2
        self.temporal_attn1 = nn.Conv2d(c, c, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(c, c, 3, 1, 1)
        self.feat_fusion = ConvAct(num_frames * c, c, 1)
        self.spatial_attn1 = ConvAct(num_frames * c, c, 1)
        self.spatial_attn2 = ConvAct(2 * c, c, 1)
        self.spatial_attn3 = ConvAct(c, c, 3)
        self.spatial_attn4 = ConvAct(c, c, 1)
        self.spatial_attn5 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_l1 = ConvAct(c, c, 1)
        self.spatial_attn_l2 = ConvAct(2 * c, c, 3)
        self.spatial_attn_l3 = ConvAct(c, c, 3)
        self.spatial_attn_add1 = ConvAct(c, c, 1)
        self.spatial_attn_add2 = nn.Conv2d(c, c, 1)

    @staticmethod
    def _pools(x: torch.Tensor) -> torch.Tensor:
        """Max and average pooling (3x3, stride 2, padding 1; the average counts the padding),
        concatenated."""
        return torch.cat([F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1)], dim=1)

    def forward(self, aligned: torch.Tensor) -> torch.Tensor:
        """``(n, t, c, h, w)`` aligned features (``h, w`` multiples of 4) -> ``(n, c, h, w)``."""
        n, t, c, h, w = aligned.shape
        reference = self.temporal_attn1(aligned[:, self.center])
        embedding = self.temporal_attn2(aligned.reshape(n * t, c, h, w)).view(n, t, c, h, w)
        weights = torch.sigmoid((embedding * reference.unsqueeze(1)).sum(dim=2))  # (n, t, h, w)
        weighted = (aligned * weights.unsqueeze(2)).reshape(n, t * c, h, w)
        feat = self.feat_fusion(weighted)
        attn = self.spatial_attn1(weighted)
        attn = self.spatial_attn2(self._pools(attn))
        level = self.spatial_attn_l1(attn)
        level = self.spatial_attn_l3(self.spatial_attn_l2(self._pools(level)))
        attn = self.spatial_attn3(attn) + _upsample2(level)
        attn = self.spatial_attn5(_upsample2(self.spatial_attn4(attn)))
        add = self.spatial_attn_add2(self.spatial_attn_add1(attn))
        return feat * torch.sigmoid(attn) * 2 + add


class EDVRFeatureExtractor(nn.Module):
    """EDVR-M without its reconstruction: the keyframe feature extractor of IconVSR.

    ``(n, 2p + 1, 3, h, w)`` frames (``h, w`` multiples of 4), the keyframe in the middle ->
    ``(n, c, h, w)``: per-frame features (``conv_first``, ``feature_extraction`` residual blocks)
    at three pyramid levels (``feat_l{2,3}_conv{1,2}``, stride 2), every frame aligned to the
    middle one (:class:`PCDAlignment`), then fused (:class:`TSAFusion`).
    """

    def __init__(self, mid_channels: int, num_frames: int, extraction_blocks: int = 5, deform_groups: int = 8):
        super().__init__()
        c = mid_channels
        self.center = num_frames // 2
        self.conv_first = nn.Conv2d(3, c, 3, 1, 1)
        self.feature_extraction = nn.Sequential(*(ResidualBlockNoBN(c) for _ in range(extraction_blocks)))
        self.feat_l2_conv1 = ConvAct(c, c, 3, 2)
        self.feat_l2_conv2 = ConvAct(c, c)
        self.feat_l3_conv1 = ConvAct(c, c, 3, 2)
        self.feat_l3_conv2 = ConvAct(c, c)
        self.pcd_alignment = PCDAlignment(c, deform_groups)
        self.fusion = TSAFusion(c, num_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = x.shape
        l1 = self.feature_extraction(F.leaky_relu(self.conv_first(x.reshape(n * t, c, h, w)), 0.1))
        l2 = self.feat_l2_conv2(self.feat_l2_conv1(l1))
        l3 = self.feat_l3_conv2(self.feat_l3_conv1(l2))
        levels = [f.view(n, t, *f.shape[1:]) for f in (l1, l2, l3)]
        reference = [f[:, self.center] for f in levels]
        aligned = torch.stack([self.pcd_alignment([f[:, i] for f in levels], reference) for i in range(t)], dim=1)
        return self.fusion(aligned)


def pad_iconvsr(lqs: torch.Tensor) -> torch.Tensor:
    """``(n, t, c, h, w)`` frames padded at the bottom and right to what :class:`IconVSR` runs
    at: a side below :data:`MIN_SIZE` by edge replication up to it (the project's convention for
    the other families), then to a multiple of :data:`MULTIPLE` by reflection (the reference's
    padding). Unchanged when the frames need none.

    Independent tiles (:class:`~vsvsrpp.runtime.engine.Engine`) pad whole frames by edge
    replication instead, as for every family; that changes only the outputs near the bottom and
    right edges of frames whose sides are not multiples of 4, which tiles only approximate anyway.
    """
    lqs = pad_frames(lqs, SizeRequirements(MIN_SIZE, 1))
    n, t, c, h, w = lqs.shape
    ph, pw = -h % MULTIPLE, -w % MULTIPLE
    if not (ph or pw):
        return lqs
    return F.pad(lqs.reshape(n * t, c, h, w), (0, pw, 0, ph), mode="reflect").view(n, t, c, h + ph, w + pw)


class IconVSR(nn.Module):
    """The IconVSR network (``IconVSRNet`` in mmediting / mmagic).

    ``forward`` takes ``(n, t, 3, h, w)`` float RGB in [0, 1] (any ``t >= 1``, any ``h, w >= 1``)
    and returns ``(n, t, 3, 4h, 4w)``; frames are padded as :func:`pad_iconvsr` says and the
    output is cropped back.

    Backward branch, frame ``i`` from last to first: the propagated feature of frame ``i+1`` is
    warped with the flow ``i -> i+1``; at a keyframe (:func:`keyframes`) it is concatenated with
    EDVR-M's feature of the frames around ``i`` (:func:`refill_frames`) and fused by
    ``backward_fusion`` (3x3); the LR frame (3 channels first) is concatenated and
    ``backward_resblocks`` runs. Forward branch, first to last: the same with ``forward_fusion``,
    and ``forward_resblocks`` takes the frame, the backward feature of frame ``i`` and the
    propagated feature (``2c + 3`` channels); its output is upsampled (two x2 pixel shuffles,
    ``conv_hr``, ``conv_last``) and added to the bilinear x4 upsampling of the LR frame.

    Keyframes are counted from the pass's first frame: a frame's output depends on its window
    (see the module docstring). EDVR-M's features are computed once per keyframe, in the
    backward branch, and kept for the forward branch.

    Attributes:
        config: the :class:`IconVSRConfig`.
        scale: 4.
        size_requirements: what :meth:`forward_core` needs; :meth:`forward` pads to it.
    """

    def __init__(self, config: IconVSRConfig = IconVSRConfig()):
        super().__init__()
        self.config = config
        self.scale = config.scale
        self.size_requirements = config.size_requirements
        c = config.mid_channels
        self.spynet = SPyNet()
        self.edvr = EDVRFeatureExtractor(c, 2 * config.padding + 1, config.extraction_blocks, config.deform_groups)
        self.backward_fusion = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.forward_fusion = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.backward_resblocks = ResidualBlocksWithInputConv(c + 3, c, config.num_blocks)
        self.forward_resblocks = ResidualBlocksWithInputConv(2 * c + 3, c, config.num_blocks)
        self.upsample1 = PixelShufflePack(c, c, 2, 3)
        self.upsample2 = PixelShufflePack(c, 64, 2, 3)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def _upsample(self, lq: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        out = self.lrelu(self.upsample1(feat))
        out = self.lrelu(self.upsample2(out))
        out = self.lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        return out + F.interpolate(lq, scale_factor=4, mode="bilinear", align_corners=False)

    def compute_flows(self, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flows a pass over ``lqs`` uses, for :meth:`forward`'s ``flows`` (the engine
        computes them once on whole frames and crops them for each spatial tile).

        Args:
            lqs: ``(n, t, 3, h, w)``, ``t >= 2``, meeting ``size_requirements``.

        Returns:
            ``(forward, backward)``, each ``(n, t-1, 2, h, w)`` float32 (see
            :func:`~vsvsrpp.arch.blocks.neighbour_flows`).
        """
        return neighbour_flows(self.spynet, lqs)

    def refill_feature(self, lqs: torch.Tensor, k: int) -> torch.Tensor:
        """EDVR-M's feature for keyframe ``k`` of a pass over ``lqs`` (``(n, t, 3, h, w)``,
        meeting ``size_requirements``): ``(n, c, h, w)``."""
        frames = refill_frames(lqs.size(1), self.config.padding, k)
        return self.edvr(lqs[:, frames])

    def forward_core(
        self,
        lqs: torch.Tensor,
        flows: tuple[torch.Tensor, torch.Tensor] | None = None,
        sink: Sink | None = None,
        offload: bool = False,
    ) -> torch.Tensor | None:
        """The network proper, without padding: ``lqs`` must meet ``size_requirements``."""
        n, t, _, h, w = lqs.shape
        if t > 1:
            flows_forward, flows_backward = flows if flows is not None else neighbour_flows(self.spynet, lqs)
        cache = FeatureCache(lqs.device, offload)
        refill: dict[int, torch.Tensor] = {}
        keys = set(keyframes(t, self.config.keyframe_stride))
        feat_prop = lqs.new_zeros(n, self.config.mid_channels, h, w)
        backward_feats: list[torch.Tensor] = [feat_prop] * t
        for i in range(t - 1, -1, -1):
            if i < t - 1:  # the last frame has no successor to align
                feat_prop = flow_warp(feat_prop, flows_backward[:, i])
            if i in keys:
                feat = self.refill_feature(lqs, i)
                refill[i] = cache.put(feat)
                feat_prop = self.backward_fusion(torch.cat([feat_prop, feat], dim=1))
            feat_prop = self.backward_resblocks(torch.cat([lqs[:, i], feat_prop], dim=1))
            backward_feats[i] = cache.put(feat_prop)

        outputs = Outputs(sink)
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            if i > 0:  # the first frame has no predecessor to align
                feat_prop = flow_warp(feat_prop, flows_forward[:, i - 1])
            if i in keys:
                feat_prop = self.forward_fusion(torch.cat([feat_prop, cache.get(refill.pop(i))], dim=1))
            feat_prop = self.forward_resblocks(torch.cat([lqs[:, i], cache.get(backward_feats[i]), feat_prop], dim=1))
            if not outputs.wants(i):
                continue
            hr = self._upsample(lqs[:, i], feat_prop)
            outputs.add(i, hr)
        return outputs.result()

    def forward(
        self,
        lqs: torch.Tensor,
        flows: tuple[torch.Tensor, torch.Tensor] | None = None,
        sink: Sink | None = None,
        offload: bool = False,
    ) -> torch.Tensor | None:
        """Super-resolve a batch of frame sequences 4x.

        Args:
            lqs: ``(n, t, 3, h, w)`` float RGB in [0, 1].
            flows: precomputed :meth:`compute_flows` of these frames (or crops of those of
                larger frames); the frames must then meet ``size_requirements``.
            sink: receives each output frame as it is made, instead of a stacked result (see
                :data:`~vsvsrpp.arch.blocks.Sink`).
            offload: keep the backward branch's features and the keyframe features in host
                memory until the forward branch needs them (exact; nothing changes on the CPU).

        Returns:
            ``(n, t, 3, 4h, 4w)``, same dtype; values are not clamped; None with a ``sink``.

        Raises:
            ValueError: if ``lqs`` is not 5-D with 3 channels, or ``flows`` come with frames
                that need padding.
        """
        check_frames(lqs, "IconVSR")
        return padded_forward(
            self.forward_core, lqs, self.size_requirements, self.scale, sink, pad=pad_iconvsr, flows=flows, offload=offload
        )


_SPYNET_KEY = "spynet.basic_module.0.basic_module.0.conv.weight"
_FUSION_KEY = "edvr.fusion.feat_fusion.conv.weight"
_DCN_KEY = "edvr.pcd_alignment.cas_dcnpack.conv_offset.weight"


def _edvr_basicsr_rules() -> tuple[Rename, ...]:
    """BasicSR's names for EDVR-M's modules, where OpenMMLab wraps the convolutions that an
    activation follows in a ``ConvModule`` (``.conv.``) and names the pyramid convolutions and
    the alignment differently."""
    p = r"edvr\."
    wb = r"\.(weight|bias)"
    pyramid = tuple((rf"{p}conv_l{lv}_{i}{wb}", rf"edvr.feat_l{lv}_conv{i}.conv.\g<1>") for lv in (2, 3) for i in (1, 2))
    wrapped = r"(offset_conv[123]\.l[123]|feat_conv\.l[12]|cas_offset_conv[12])"
    tsa = r"(feat_fusion|spatial_attn[1-4]|spatial_attn_l[1-3]|spatial_attn_add1)"
    return (
        *pyramid,
        (rf"{p}pcd_align\.{wrapped}{wb}", r"edvr.pcd_alignment.\g<1>.conv.\g<2>"),
        (rf"{p}pcd_align\.(.+)", r"edvr.pcd_alignment.\g<1>"),
        (rf"{p}fusion\.{tsa}{wb}", r"edvr.fusion.\g<1>.conv.\g<2>"),
    )


#: BasicSR's ``IconVSR`` (``basicsr/archs/basicvsr_arch.py`` with ``edvr_arch.py``): the
#: propagation branches are ``{backward,forward}_trunk``, the upsampling ``upconv{1,2}``, SPyNet's
#: convolutions ``basic_module.{0,2,4,6,8}``, and EDVR-M's modules as :func:`_edvr_basicsr_rules`
#: says; the fusion convolutions and the rest are named alike.
BASICSR_RULES: tuple[Rename, ...] = (
    (r"(backward|forward)_trunk\.(.+)", r"\g<1>_resblocks.\g<2>"),
    *UPSAMPLE_BASICSR,
    *SPYNET_BASICSR,
    *_edvr_basicsr_rules(),
)


def read_iconvsr_config(sd: StateDict) -> IconVSRConfig:
    """The IconVSR config of a state dict in the official names: ``mid_channels`` is the output
    width of ``backward_resblocks.main.0``, ``num_blocks`` its number of residual blocks,
    ``padding`` from the width of the TSA fusion's input (``(2 * padding + 1) * mid_channels``),
    ``extraction_blocks`` the residual blocks of ``edvr.feature_extraction``,
    ``deform_groups`` from the offset convolutions' width (``27 * deform_groups``).
    ``keyframe_stride`` is not stored; the official 5 is used.

    Raises:
        CheckpointError: when keys are missing or of the wrong shape.
    """
    key = "backward_resblocks.main.0.weight"
    require_keys(sd, (key, _SPYNET_KEY, _FUSION_KEY, _DCN_KEY, "backward_fusion.weight"), "IconVSR", "generator.edvr.*")
    c = out_channels(sd, key)
    fusion_in = sd[_FUSION_KEY].shape[1]
    groups = out_channels(sd, _DCN_KEY)
    if fusion_in % c or (fusion_in // c) % 2 == 0 or groups % 27:
        raise CheckpointError(
            f"{_FUSION_KEY} {tuple(sd[_FUSION_KEY].shape)} or {_DCN_KEY} {tuple(sd[_DCN_KEY].shape)} do not fit an IconVSR "
            f"of {c} channels (need (2 * padding + 1) * {c} inputs and 27 * deform_groups outputs); the checkpoint is "
            "damaged or of another network"
        )
    block = re.compile(r"edvr\.feature_extraction\.(\d+)\.conv1\.weight")
    extraction = len({m.group(1) for k in sd if (m := block.fullmatch(k))})
    try:
        return IconVSRConfig(
            mid_channels=c,
            num_blocks=count_blocks(sd, "backward_resblocks"),
            padding=(fusion_in // c - 1) // 2,
            extraction_blocks=extraction,
            deform_groups=groups // 27,
        )
    except ValueError as e:
        raise CheckpointError(f"not a usable IconVSR state dict: {e}") from e


class IconVSRArchitecture(Architecture):
    """IconVSR: detection from ``edvr.*`` keys beside ``backward_resblocks.*`` (before BasicVSR,
    whose keys it shares); BasicSR's layout (``backward_trunk.*``, ``upconv1``, SPyNet's
    ``basic_module.{0,2,4,6,8}``, ``edvr.pcd_align.*``) is read too."""

    id = "iconvsr"
    name = "IconVSR"
    entry_point = "IconVSR"
    network = IconVSR
    fp32_modules = ("spynet",)
    step_modules = ("backward_resblocks", "forward_resblocks")
    layouts = {"BasicSR": BASICSR_RULES}
    summary = (
        "4x super-resolution with IconVSR (Chan et al., CVPR 2021): BasicVSR with information refill from "
        "an EDVR-M keyframe extractor and coupled propagation; a little more accurate than BasicVSR, and "
        "its keyframes (every 5th frame of a window and its last) depend on the window grid."
    )

    def matches(self, sd: StateDict) -> bool:
        return any(k.startswith("edvr.") for k in sd) and any(k.startswith("backward_resblocks.") for k in sd)

    def read_config(self, sd: StateDict) -> IconVSRConfig:
        return read_iconvsr_config(sd)

    def memory_shape(self, config: IconVSRConfig) -> MemoryShape:
        # kept for every frame of a pass: the backward features, and a keyframe feature every
        # keyframe_stride frames (two lists, as BasicVSR's, cover both). The largest transient is EDVR-M on
        # 2 * padding + 1 frames (their pyramid features, the aligned features, the TSA fusion;
        # the offsets, masks and sampled taps of the deformable convolutions, float32 in every
        # precision): measured on the CPU at 180x320 (fast path), 4331, 8906 and 10170 bytes per
        # pixel for 16 and 64 channels over 5 frames and 64 over 7, so about 2800 + 19 bytes per
        # channel and frame; the reconstruction as BasicVSR's.
        c, frames = config.mid_channels, 2 * config.padding + 1
        return MemoryShape(
            c, 2, 1, config.scale,
            step_bytes=2800 + 19 * frames * c, step_bytes_reduced=2800 + 10 * frames * c, hr_channels=128,
        )  # fmt: skip

    def reach(self, config: IconVSRConfig) -> int:
        # a keyframe step: EDVR-M (conv_first and 2 x extraction_blocks convolutions; the pyramid
        # convolutions at 1/2 and 1/4, about 6 px; the PCD offset convolutions, about 27 px
        # without the learned offsets; the TSA pyramid, about 11 px), the fusion (1), then
        # 1 + 2 x num_blocks convolutions, and about 2 px of the upsampling.
        edvr = 1 + 2 * config.extraction_blocks + 6 + 27 + 11
        return edvr + 1 + 1 + 2 * config.num_blocks + 2

    def fast_path(self, model: IconVSR, device: torch.device) -> None:
        super().fast_path(model, device)
        for module in model.modules():
            if isinstance(module, ModulatedDCNPack):
                module.deform_impl = IMPLEMENTATIONS[device.type]

    def make_config(self, mid_channels: int, num_blocks: int, scale: int = 4) -> IconVSRConfig:
        if scale != 4:
            raise ValueError(f"IconVSR networks are 4x, not {scale}x")
        return IconVSRConfig(mid_channels, num_blocks)

    def label(self, config: IconVSRConfig) -> str:
        return f"{self.name} c{config.mid_channels}n{config.num_blocks}p{config.padding} x4"


ARCH = IconVSRArchitecture()
