"""BasicVSR (Chan et al., "BasicVSR: The Search for Essential Components in Video
Super-Resolution and Beyond", CVPR 2021).

Bidirectional first-order propagation of per-frame features, aligned by SPyNet flow warping,
then pixel-shuffle upsampling to 4x. Module and parameter names follow the official OpenMMLab
(mmediting / mmagic) ``BasicVSRNet``, so its checkpoints load with ``strict=True``; the building
blocks are shared with BasicVSR++ (:mod:`vsvsrpp.arch.blocks`). RealBasicVSR
(:mod:`vsvsrpp.arch.realbasicvsr`) runs a BasicVSR behind its cleaning module.
"""

from __future__ import annotations

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
    ResidualBlocksWithInputConv,
    SPyNet,
    Sink,
    check_frames,
    flow_warp,
    neighbour_flows,
    padded_forward,
)
from .descriptor import Architecture, MemoryShape, SizeRequirements
from .state_dict import StateDict, count_blocks, out_channels, require_keys

__all__ = ["ARCH", "BasicVSR", "BasicVSRConfig", "read_basicvsr_config"]


@dataclass(frozen=True)
class BasicVSRConfig:
    """Hyperparameters of a BasicVSR network (always 4x).

    Attributes:
        mid_channels: feature channels (64 in the official checkpoints).
        num_blocks: residual blocks per propagation branch (30 in the official checkpoints).
    """

    mid_channels: int = 64
    num_blocks: int = 30

    @property
    def scale(self) -> int:
        return 4

    @property
    def size_requirements(self) -> SizeRequirements:
        # The official network asserts h, w >= 64 (SPyNet's six-level pyramid).
        return SizeRequirements(64, 1)


class BasicVSR(nn.Module):
    """The BasicVSR network (``BasicVSRNet`` in mmediting).

    ``forward`` takes ``(n, t, 3, h, w)`` float RGB in [0, 1] (any ``t >= 1``, any ``h, w >= 1``)
    and returns ``(n, t, 3, 4h, 4w)``; frames smaller than 64 px are padded by edge replication
    and the output is cropped back.

    For each frame ``i``: the backward branch warps the feature propagated from frame ``i+1``
    with the flow ``i -> i+1``, concatenates the LR frame (3 channels first) and runs
    ``backward_resblocks``; the forward branch does the same from frame ``i-1``. The two features
    are fused by a 1x1 convolution and upsampled (two x2 pixel shuffles, ``conv_hr``,
    ``conv_last``), and the bilinear x4 upsampling of the LR frame is added.

    The official code skips the forward-flow computation for mirror-extended inputs (frames
    ``i`` and ``t-1-i`` equal), reusing the backward flows; the flows are the same there, so that
    shortcut is not reproduced here.

    Attributes:
        config: the :class:`BasicVSRConfig`.
        scale: 4.
        size_requirements: what :meth:`forward_core` needs; :meth:`forward` pads to it.
    """

    def __init__(self, config: BasicVSRConfig = BasicVSRConfig()):
        super().__init__()
        self.config = config
        self.scale = config.scale
        self.size_requirements = config.size_requirements
        c = config.mid_channels
        self.spynet = SPyNet()
        self.backward_resblocks = ResidualBlocksWithInputConv(c + 3, c, config.num_blocks)
        self.forward_resblocks = ResidualBlocksWithInputConv(c + 3, c, config.num_blocks)
        self.fusion = nn.Conv2d(2 * c, c, 1, 1, 0)
        self.upsample1 = PixelShufflePack(c, c, 2, 3)
        self.upsample2 = PixelShufflePack(c, 64, 2, 3)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def _upsample(self, lq: torch.Tensor, feat_backward: torch.Tensor, feat_forward: torch.Tensor) -> torch.Tensor:
        out = self.lrelu(self.fusion(torch.cat([feat_backward, feat_forward], dim=1)))
        out = self.lrelu(self.upsample1(out))
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
        feat_prop = lqs.new_zeros(n, self.config.mid_channels, h, w)
        backward_feats: list[torch.Tensor] = [feat_prop] * t
        for i in range(t - 1, -1, -1):
            if i < t - 1:  # the last frame has no successor to align
                feat_prop = flow_warp(feat_prop, flows_backward[:, i])
            feat_prop = self.backward_resblocks(torch.cat([lqs[:, i], feat_prop], dim=1))
            backward_feats[i] = cache.put(feat_prop)

        outputs = Outputs(sink)
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            if i > 0:  # the first frame has no predecessor to align
                feat_prop = flow_warp(feat_prop, flows_forward[:, i - 1])
            feat_prop = self.forward_resblocks(torch.cat([lqs[:, i], feat_prop], dim=1))
            if not outputs.wants(i):
                continue
            hr = self._upsample(lqs[:, i], cache.get(backward_feats[i]), feat_prop)
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
            offload: keep the backward branch's features in host memory until the forward
                branch needs them (exact; nothing changes on the CPU).

        Returns:
            ``(n, t, 3, 4h, 4w)``, same dtype; values are not clamped; None with a ``sink``.

        Raises:
            ValueError: if ``lqs`` is not 5-D with 3 channels, or ``flows`` come with frames
                that need padding.
        """
        check_frames(lqs, "BasicVSR")
        return padded_forward(
            self.forward_core, lqs, self.size_requirements, self.scale, sink, flows=flows, offload=offload
        )


_SPYNET_KEY = "spynet.basic_module.0.basic_module.0.conv.weight"


def read_basicvsr_config(sd: StateDict, prefix: str = "", family: str = "BasicVSR") -> BasicVSRConfig:
    """The BasicVSR config of the keys under ``prefix`` (``"basicvsr."`` inside RealBasicVSR):
    ``mid_channels`` is the output width of ``backward_resblocks.main.0``, ``num_blocks`` its
    number of residual blocks.

    Raises:
        CheckpointError: when keys are missing or of the wrong shape.
    """
    key = prefix + "backward_resblocks.main.0.weight"
    require_keys(sd, (key, prefix + _SPYNET_KEY), family, f"generator.{prefix}backward_resblocks.*")
    return BasicVSRConfig(mid_channels=out_channels(sd, key), num_blocks=count_blocks(sd, prefix + "backward_resblocks"))


#: BasicSR's ``BasicVSR`` (``basicsr/archs/basicvsr_arch.py``, the layout of its model zoo's
#: ``BasicVSR_*.pth``): its propagation branches are ``{backward,forward}_trunk``, a
#: ``ConvResidualBlocks`` with the same inner names as OpenMMLab's ``ResidualBlocksWithInputConv``.
BASICSR_RULES = ((r"(backward|forward)_trunk\.(.+)", r"\g<1>_resblocks.\g<2>"), *UPSAMPLE_BASICSR, *SPYNET_BASICSR)


class BasicVSRArchitecture(Architecture):
    """BasicVSR: detection from ``backward_resblocks.*`` keys without a cleaning module; BasicSR's
    layout (``backward_trunk.*``, ``upconv1``, SPyNet's ``basic_module.{0,2,4,6,8}``) is read too."""

    id = "basicvsr"
    name = "BasicVSR"
    entry_point = "BasicVSR"
    network = BasicVSR
    fp32_modules = ("spynet",)
    step_modules = ("backward_resblocks", "forward_resblocks")
    layouts = {"BasicSR": BASICSR_RULES}
    summary = (
        "4x super-resolution with BasicVSR (Chan et al., CVPR 2021): first-order bidirectional "
        "propagation with flow warping; lighter than BasicVSR++ and a little less accurate."
    )

    def matches(self, sd: StateDict) -> bool:
        return any(k.startswith("backward_resblocks.") for k in sd)

    def read_config(self, sd: StateDict) -> BasicVSRConfig:
        return read_basicvsr_config(sd)

    def memory_shape(self, config: BasicVSRConfig) -> MemoryShape:
        # backward and forward features, kept for every frame of a pass
        # one step: the concatenated input (c + 3 channels) and about 3 feature maps of
        # activations; the upsampling two 64-channel maps at the output size
        c = config.mid_channels
        return MemoryShape(c, 2, 1, config.scale, step_bytes=4 * (5 * c + 3), step_bytes_reduced=2 * (5 * c + 3), hr_channels=128)

    def reach(self, config: BasicVSRConfig) -> int:
        # one step: 1 + 2 x num_blocks 3x3 convolutions; the upsampling: about 2 px of
        # convolutions at 1x, 2x and 4x
        return 1 + 2 * config.num_blocks + 2

    def make_config(self, mid_channels: int, num_blocks: int, scale: int = 4) -> BasicVSRConfig:
        if scale != 4:
            raise ValueError(f"BasicVSR networks are 4x, not {scale}x")
        return BasicVSRConfig(mid_channels, num_blocks)

    def label(self, config: BasicVSRConfig) -> str:
        return f"{self.name} c{config.mid_channels}n{config.num_blocks} x4"


ARCH = BasicVSRArchitecture()
