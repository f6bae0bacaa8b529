"""What the rest of the package may know about a network: its architecture and a descriptor.

The idea follows spandrel (``Architecture``, ``ModelDescriptor``, ``SizeRequirements``):

* an :class:`Architecture` is one network family (BasicVSR++, BasicVSR, RealBasicVSR). It
  recognises its state dicts, reads their hyperparameters off key names and tensor shapes,
  builds the network and describes it;
* a :class:`ModelDescriptor` is a built network together with everything the runtime, the
  VapourSynth plugin, the tools and the command line ask about it: scale, size requirements,
  memory shape, which submodules stay float32, supported precisions, extra call options.

Nothing outside a family's own module asks "which family is this?": it asks the descriptor.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .options import CallOption
from .state_dict import CheckpointError, Rename, StateDict

@dataclass(frozen=True)
class SizeRequirements:
    """Spatial size a network accepts, in input pixels.

    Attributes:
        minimum: smallest accepted height and width.
        multiple_of: height and width must be multiples of this.
    """

    minimum: int = 1
    multiple_of: int = 1

    def padded(self, h: int, w: int) -> tuple[int, int]:
        """Smallest ``(h', w')`` with ``h' >= h``, ``w' >= w`` that meets the requirements."""

        def fit(x: int) -> int:
            x = max(x, self.minimum)
            return int(math.ceil(x / self.multiple_of) * self.multiple_of)

        return fit(h), fit(w)


@dataclass(frozen=True)
class MemoryShape:
    """What the memory of a pass depends on (see :mod:`vsvsrpp.runtime.memory`).

    Attributes:
        mid_channels: feature channels.
        feature_lists: per-frame feature maps kept through a pass (5 for BasicVSR++: spatial
            features plus four branches; 2 for BasicVSR/RealBasicVSR).
        feature_stride: input pixels per feature pixel along each axis (4 for the 1x models).
        scale: output size / input size.
        step_bytes: bytes per feature pixel that one propagation step holds besides the kept
            features, for float32 features (concatenated inputs, activations; for BasicVSR++
            the 432-channel offset and mask maps of the alignment, float32 in every precision).
        step_bytes_reduced: the same in float16/bfloat16.
        hr_channels: channels per output pixel alive while one frame is reconstructed (the
            pixel-shuffle input and output, ``conv_hr``'s input and output).
        whole_frame_flows: tiled passes take flows computed once on whole frames (the network
            has ``compute_flows``); False: each tile computes its own.
        tile_halo: the network runs step-wise (exact) tiles (its ``forward`` takes ``tile=``):
            the feature pixels of context the widest of its stages reads around a tile (the
            memory model counts every stage's tile with it). None: the family has no step-wise
            tiles; its tiles are independent passes.

    The transient figures are measured (resident-memory peaks on the CPU, see
    ``tests/test_memory.py``) and rounded up.
    """

    mid_channels: int
    feature_lists: int
    feature_stride: int
    scale: int
    step_bytes: int = 0
    step_bytes_reduced: int = 0
    hr_channels: int = 128
    whole_frame_flows: bool = True
    tile_halo: int | None = None


@dataclass(frozen=True)
class ModelDescriptor:
    """A built network and what the package needs to know to run it.

    Attributes:
        architecture: the family.
        model: the network in eval mode; ``model(lqs, **options)`` maps ``(n, t, 3, h, w)``
            float RGB in [0, 1] to ``(n, t, 3, scale*h, scale*w)`` (not clamped).
        config: the family's hyperparameter dataclass, as detected.
        scale: output size / input size (4 for super-resolution, 1 for restoration).
        size_requirements: what the core network needs; ``model`` pads smaller frames by edge
            replication and crops its output back.
        memory: the shape the memory model needs.
        reach: input pixels around a pixel that one frame's computation reads (one
            propagation step with its alignment, plus feature extraction and reconstruction;
            :meth:`Architecture.reach`): the default context margin of spatial tiles.
        fp32_modules: names of submodules (``model.get_submodule``) that must stay float32 in
            reduced precision (flow estimation).
        step_modules: names of submodules called once per frame by each step of a pass (the
            propagation branches, the reconstruction): the engine counts their calls for
            progress and checks for cancellation before each.
        output_step_modules: those of ``step_modules`` called only for the frames whose output
            a pass keeps (the reconstruction; not run for a window's overlap frames).
        precisions: the precision names (``"fp32"``, ``"fp16"``, ``"bf16"``) the network supports,
            or ``None`` for every precision of :data:`vsvsrpp.runtime.device.PRECISIONS`.
        defaults: default values of the family's :attr:`Architecture.options`.
    """

    architecture: Architecture
    model: nn.Module
    config: Any
    scale: int
    size_requirements: SizeRequirements
    memory: MemoryShape
    reach: int = 16
    fp32_modules: tuple[str, ...] = ()
    step_modules: tuple[str, ...] = ()
    output_step_modules: tuple[str, ...] = ()
    precisions: tuple[str, ...] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Display name with the detected size, e.g. ``"BasicVSR++ c64n7 x4"``."""
        return self.architecture.label(self.config)


class Architecture(ABC):
    """One network family: detection, hyperparameters, building and description.

    A family module defines one subclass and one instance of it (``ARCH``); the registry
    (:mod:`vsvsrpp.arch`) lists the instances. Class attributes:

    * ``id``: stable identifier (``"basicvsrpp"``), used in the pretrained registry and files;
    * ``name``: display name (``"BasicVSR++"``);
    * ``entry_point``: name of the VapourSynth filter function (``"BasicVSRPP"``);
    * ``summary``: one sentence for the entry point's docstring (paper and use);
    * ``network``: the ``nn.Module`` class, built from a config;
    * ``fp32_modules``: submodules that stay float32 in reduced precision (flow estimation);
    * ``step_modules``: submodules called once per frame by each step of a pass (progress and
      cancellation points of the engine); ``output_step_modules`` those of them that run only
      for the frames whose output is kept;
    * ``options``: the :class:`CallOption` s its ``forward`` takes besides the frames;
    * ``layouts``: other toolboxes' names for the family's modules, by toolbox (``{"BasicSR":
      rules}``): the :data:`~vsvsrpp.arch.state_dict.Rename` rules that turn such a state dict's
      keys into the official (OpenMMLab) ones that :meth:`matches`, :meth:`read_config` and the
      network use. :func:`vsvsrpp.arch.identify` applies them.

    Configs have ``scale`` and ``size_requirements`` properties; networks keep their config as
    ``model.config``.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    entry_point: ClassVar[str]
    summary: ClassVar[str]
    network: ClassVar[type[nn.Module]]
    fp32_modules: ClassVar[tuple[str, ...]] = ()
    step_modules: ClassVar[tuple[str, ...]] = ()
    output_step_modules: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[CallOption, ...]] = ()
    layouts: ClassVar[Mapping[str, tuple[Rename, ...]]] = {}

    @abstractmethod
    def matches(self, sd: StateDict) -> bool:
        """True when ``sd``'s keys are this family's (a cheap test on key names)."""

    @abstractmethod
    def read_config(self, sd: StateDict) -> Any:
        """The hyperparameters of a state dict of this family.

        Raises:
            CheckpointError: when keys are missing or shapes are not this family's.
        """

    @abstractmethod
    def memory_shape(self, config: Any) -> MemoryShape:
        """What the memory of a pass of a network of ``config`` depends on."""

    def reach(self, config: Any) -> int:
        """Input pixels around a pixel that one frame's computation reads, without the recurrence
        (whose reach is unbounded but fades): the default context margin of spatial tiles."""
        return 16

    def defaults(self, config: Any) -> dict[str, Any]:
        """Default values of :attr:`options` for a network of ``config``."""
        return {}

    def fast_path(self, model: nn.Module, device: torch.device) -> None:
        """Switch a network placed on ``device`` to its fastest implementation there, in place.

        The output equals the default (exact) path's up to float rounding (the engine's accuracy
        tests hold it to 1e-4 max-abs in float32). Here: channels_last weights on the CPU, so that
        every convolution runs on oneDNN's NHWC kernels without reordering (measured on AVX-512
        from 0.9x for 64->64 channels at 180x320 to 3x for 64->3 at 720x1280; 1.06x over a
        whole c64n7 pass); families add their own (BasicVSR++: the sampled deformable
        convolution). Called by the engine once per network instance.
        """
        if device.type == "cpu":
            model.to(memory_format=torch.channels_last)

    def build(self, config: Any) -> nn.Module:
        """A new network with random weights for ``config``."""
        return self.network(config)

    def describe(self, model: nn.Module) -> ModelDescriptor:
        """The descriptor of a network this family built."""
        cfg = model.config
        return ModelDescriptor(
            architecture=self,
            model=model,
            config=cfg,
            scale=cfg.scale,
            size_requirements=cfg.size_requirements,
            memory=self.memory_shape(cfg),
            reach=self.reach(cfg),
            fp32_modules=self.fp32_modules,
            step_modules=self.step_modules,
            output_step_modules=self.output_step_modules,
            defaults=self.defaults(cfg),
        )

    @abstractmethod
    def make_config(self, mid_channels: int, num_blocks: int, scale: int = 4) -> Any:
        """A config from generic size knobs (random-weight networks for benchmarks and tests).

        Raises:
            ValueError: for a ``scale`` the family does not have.
        """

    @abstractmethod
    def label(self, config: Any) -> str:
        """A short display name of a config, e.g. ``"BasicVSR++ c64n7 x4"``."""

    def load(self, sd: StateDict) -> ModelDescriptor:
        """Build the network of ``sd`` and load it strictly.

        Raises:
            CheckpointError: when the keys or shapes do not match the detected config exactly.
        """
        config = self.read_config(sd)
        model = self.build(config)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"state dict does not match the detected {self.label(config)} ({config}): {e}") from e
        return self.describe(model.eval())

    def random(self, mid_channels: int, num_blocks: int, scale: int = 4, seed: int = 0) -> nn.Module:
        """A network of this family with random weights (seeded), in eval mode."""
        torch.manual_seed(seed)
        return self.build(self.make_config(mid_channels, num_blocks, scale)).eval()

    def __repr__(self) -> str:
        return f"<Architecture {self.id}>"
