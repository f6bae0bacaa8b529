"""The network a run starts from: random (optionally with pretrained SPyNet weights, as the
paper does), or a 4x BasicVSR++ checkpoint to fine-tune."""

from __future__ import annotations

import re

from torch import nn

from ... import arch
from ...arch import StateDict, basicvsrpp
from ...arch.blocks import SPYNET_BASICSR
from ...arch.state_dict import rename_keys
from ...arch.basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig
from ...hub.checkpoint import load_descriptor, read_state_dict, resolve
from .config import TrainConfig

#: Hyperparameters :class:`TrainConfig` can set and a saved network must match.
SIZE_FIELDS = ("mid_channels", "num_blocks")


def network_size(config: BasicVSRPPConfig) -> dict[str, int]:
    """``{"mid_channels", "num_blocks"}`` of a network config (the training state's ``arch``)."""
    return {name: getattr(config, name) for name in SIZE_FIELDS}


def check_size(config: TrainConfig, actual: dict[str, int], source: str) -> None:
    """Raise ``ValueError`` when the run asks for a size (``mid_channels``, ``num_blocks``)
    other than ``actual``, the size of the network in ``source`` (named in the message)."""
    for name in SIZE_FIELDS:
        wanted = getattr(config, name)
        if wanted is not None and wanted != actual[name]:
            raise ValueError(f"{name}={wanted} does not match {source} ({actual[name]})")


def new_network(mid_channels: int, num_blocks: int) -> BasicVSRPlusPlus:
    """A 4x BasicVSR++ with random weights (drawn from torch's global generator)."""
    return basicvsrpp.ARCH.build(basicvsrpp.ARCH.make_config(mid_channels, num_blocks, scale=4))


def build_network(config: TrainConfig) -> BasicVSRPlusPlus:
    """The network a new run starts from (float32, CPU).

    * ``config.init``: the checkpoint it names (:func:`vsvsrpp.hub.checkpoint.resolve`), which
      must hold a 4x BasicVSR++ of the size ``config`` asks for, if it asks;
    * else a random network of ``config``'s size (64 channels and 7 blocks by default);

    then, in either case, SPyNet is replaced by the one in ``config.spynet_init`` if given (see
    :func:`load_spynet`), or starts at zero flow if that is :data:`ZERO_FLOW` (``"zero"``).

    Raises:
        ValueError: ``init`` is not a 4x BasicVSR++ or not of the requested size, or
            ``spynet_init`` holds no SPyNet weights; unknown registry names
            (:class:`vsvsrpp.arch.CheckpointError` is a ``ValueError`` too).
        FileNotFoundError: a checkpoint file does not exist.
    """
    if config.init is not None:
        descriptor = load_descriptor(config.init)
        if descriptor.architecture is not basicvsrpp.ARCH or descriptor.scale != 4:
            raise ValueError(f"{config.init}: only 4x BasicVSR++ networks can be trained here (this is {descriptor.name})")
        check_size(config, network_size(descriptor.config), "the init checkpoint")
        model = descriptor.model
    else:
        model = new_network(config.mid_channels or 64, config.num_blocks or 7)
    if config.spynet_init == ZERO_FLOW:
        zero_flow(model)
    elif config.spynet_init is not None:
        load_spynet(model, config.spynet_init)
    return model


#: ``spynet_init`` value: SPyNet trained from scratch, starting from zero flow.
ZERO_FLOW = "zero"


def zero_flow(model: BasicVSRPlusPlus) -> None:
    """Zero the last convolution of every SPyNet level, so that the flow starts at exactly 0 (the
    network starts as if the frames were aligned; the deformable offsets and SPyNet learn the
    motion). Used when no pretrained SPyNet is available."""
    for level in model.spynet.basic_module:
        last = level.basic_module[-1].conv
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)


def load_spynet(model: BasicVSRPlusPlus, source: str) -> None:
    """Load SPyNet weights into ``model.spynet`` from a registry name or checkpoint path: the
    SPyNet of a whole network's checkpoint (BasicVSR++, BasicVSR or RealBasicVSR, in the
    OpenMMLab or BasicSR layout), or a bare SPyNet state dict (its ``mean``/``std`` buffers may be
    missing). See :func:`spynet_state_dict`.

    Raises:
        ValueError: the checkpoint holds no SPyNet weights (or an unknown registry name).
        FileNotFoundError: the file does not exist.
    """
    sd = spynet_state_dict(read_state_dict(resolve(source).path))
    missing, unexpected = model.spynet.load_state_dict(sd, strict=False)
    if unexpected or any(k not in ("mean", "std") for k in missing):
        raise ValueError(
            f"{source}: not SPyNet weights (missing {', '.join(missing[:3]) or 'nothing'}, unexpected "
            f"{', '.join(unexpected[:3]) or 'nothing'}); give a BasicVSR, BasicVSR++ or RealBasicVSR checkpoint or a bare SPyNet"
        )


def spynet_state_dict(sd: StateDict) -> StateDict:
    """The SPyNet part of a state dict, in the official names without a prefix.

    ``sd`` is a whole network's state dict in any layout :func:`vsvsrpp.arch.identify` knows (the
    SPyNet under ``spynet.``, or ``basicvsr.spynet.`` in RealBasicVSR), or a bare SPyNet's (the
    OpenMMLab or BasicSR names). Returns ``sd`` unchanged when it has neither.
    """
    sd = arch.identify(sd).state_dict
    inner = {m.group(1): v for k, v in sd.items() if (m := _SPYNET_PART.fullmatch(k))}
    return rename_keys(inner or sd, SPYNET_BASICSR)


_SPYNET_PART = re.compile(r"(?:.+\.)?spynet\.(.+)")
