"""Reading checkpoints, detecting the architecture from a state dict, building the network.

Detection works like spandrel's: the family (BasicVSR++, BasicVSR, RealBasicVSR) and its
hyperparameters are read off key names and tensor shapes, so any official or custom-trained
checkpoint of these families loads without a config file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from .basicvsr import BasicVSR, BasicVSRConfig, RealBasicVSR, RealBasicVSRConfig
from .basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig

#: Any network configuration :func:`detect_config` returns.
NetworkConfig = BasicVSRPPConfig | BasicVSRConfig | RealBasicVSRConfig
#: Any network :func:`build_model` returns.
Network = BasicVSRPlusPlus | BasicVSR | RealBasicVSR

#: Architecture name -> (config class, network class).
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "basicvsrpp": (BasicVSRPPConfig, BasicVSRPlusPlus),
    "basicvsr": (BasicVSRConfig, BasicVSR),
    "realbasicvsr": (RealBasicVSRConfig, RealBasicVSR),
}


class CheckpointError(ValueError):
    """A file is not a checkpoint this package can load (with the reason and what to do)."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return the generator's bare state dict.

    Accepted layouts: the OpenMMLab (mmediting) one (a dict with ``state_dict`` whose keys start
    with ``generator.``), a dict with ``params_ema`` / ``params`` (BasicSR), or a bare state
    dict, with or without the ``generator.`` / ``module.`` prefixes. The file is read with
    ``torch.load(..., weights_only=True)``: a checkpoint can never execute code.

    Exponential-moving-average weights are preferred: OpenMMLab checkpoints trained with EMA
    (``is_use_ema=True``, e.g. RealBasicVSR) hold both ``generator.*`` and ``generator_ema.*``
    keys, and the official test code runs ``generator_ema``, so when ``generator_ema.*`` keys are
    present they are returned and ``generator.*`` is ignored (likewise ``params_ema`` over
    ``params``).

    Args:
        path: path of a ``.pth`` file.

    Returns:
        ``{key: tensor}`` without prefixes, tensors on the CPU.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file cannot be read safely or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, refused globals, truncated zip
        raise CheckpointError(
            f"cannot read {path} as a weights-only PyTorch checkpoint ({type(e).__name__}: {e}). "
            "Checkpoints that need arbitrary code to load are refused; re-save the state dict with "
            "torch.save(model.state_dict(), path)."
        ) from e
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "params_ema", "params"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict (expected a dict of tensors, got {type(obj).__name__})")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefixes in (("generator_ema.", "generator."), ("module.",)):
        for prefix in prefixes:  # the first prefix present wins
            if any(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
                break
    return sd


def _count_blocks(sd: dict[str, torch.Tensor], prefix: str) -> int:
    """Residual blocks of the ``ResidualBlocksWithInputConv`` whose keys start with ``prefix``."""
    block = re.compile(re.escape(prefix) + r"\.main\.2\.(\d+)\.conv1\.weight")
    return len({m.group(1) for k in sd if (m := block.fullmatch(k))})


def _require(sd: dict[str, torch.Tensor], keys: tuple[str, ...], family: str, example: str, hint: str = "") -> None:
    missing = [k for k in keys if k not in sd]
    if missing:
        sample = ", ".join(sorted(sd)[:5])
        raise CheckpointError(
            f"not a {family} state dict: missing {', '.join(missing)} (first keys found: {sample}). "
            f"Expected an OpenMMLab {family} checkpoint (keys such as {example}){hint}."
        )


_SPYNET_KEY = "spynet.basic_module.0.basic_module.0.conv.weight"


def detect_arch(sd: dict[str, torch.Tensor]) -> str:
    """The network family of a bare state dict: ``"basicvsrpp"``, ``"realbasicvsr"`` or ``"basicvsr"``.

    BasicVSR++ has ``deform_align.*`` (second-order deformable alignment) or ``backbone.*``;
    RealBasicVSR has ``image_cleaning.*`` (and its BasicVSR under ``basicvsr.*``); BasicVSR has
    ``backward_resblocks.*`` and no cleaning module. Anything else is reported as BasicVSR++
    (the package's main family), so :func:`detect_config` names the keys it misses.
    """
    if any(k.startswith(("deform_align.", "backbone.")) for k in sd):
        return "basicvsrpp"
    if any(k.startswith("image_cleaning.") for k in sd):
        return "realbasicvsr"
    if any(k.startswith("backward_resblocks.") for k in sd):
        return "basicvsr"
    return "basicvsrpp"


def _basicvsrpp_config(sd: dict[str, torch.Tensor]) -> BasicVSRPPConfig:
    _require(
        sd,
        ("reconstruction.main.0.weight", "backbone.backward_1.main.0.weight", _SPYNET_KEY),
        "BasicVSR++",
        "generator.backbone.backward_1.*",
        "; BasicVSR (backward_resblocks.*) and RealBasicVSR (image_cleaning.*) checkpoints are accepted too",
    )
    mid = sd["reconstruction.main.0.weight"].shape[0]
    num_blocks = _count_blocks(sd, "backbone.backward_1")
    if "feat_extract.main.0.weight" in sd:
        low_res = True
    elif "feat_extract.0.weight" in sd:
        low_res = False
    else:
        raise CheckpointError("not a BasicVSR++ state dict: no feat_extract.main.0.weight or feat_extract.0.weight")
    return BasicVSRPPConfig(mid_channels=mid, num_blocks=num_blocks, is_low_res_input=low_res)


def _basicvsr_config(sd: dict[str, torch.Tensor], prefix: str = "", family: str = "BasicVSR") -> BasicVSRConfig:
    key = prefix + "backward_resblocks.main.0.weight"
    _require(sd, (key, prefix + _SPYNET_KEY), family, f"generator.{prefix}backward_resblocks.*")
    mid = sd[key].shape[0]
    return BasicVSRConfig(mid_channels=mid, num_blocks=_count_blocks(sd, prefix + "backward_resblocks"))


def _realbasicvsr_config(sd: dict[str, torch.Tensor]) -> RealBasicVSRConfig:
    _require(sd, ("image_cleaning.0.main.0.weight",), "RealBasicVSR", "generator.image_cleaning.*")
    inner = _basicvsr_config(sd, "basicvsr.", "RealBasicVSR")
    return RealBasicVSRConfig(
        mid_channels=inner.mid_channels,
        num_propagation_blocks=inner.num_blocks,
        num_cleaning_blocks=_count_blocks(sd, "image_cleaning.0"),
    )


_DETECTORS = {"basicvsrpp": _basicvsrpp_config, "basicvsr": _basicvsr_config, "realbasicvsr": _realbasicvsr_config}


def detect_config(sd: dict[str, torch.Tensor]) -> NetworkConfig:
    """Read the network family and its hyperparameters off a bare state dict.

    * BasicVSR++ (:class:`~vsvsrpp.basicvsrpp.BasicVSRPPConfig`): ``mid_channels`` is the output
      width of ``reconstruction.main.0``; ``num_blocks`` the number of residual blocks in
      ``backbone.backward_1``; ``is_low_res_input`` is False when features are extracted with the
      strided convolutions of the 1x models (``feat_extract.0.weight``).
      ``max_residue_magnitude`` is not stored in checkpoints; the official value 10 is used.
    * BasicVSR (:class:`~vsvsrpp.basicvsr.BasicVSRConfig`): ``mid_channels`` is the output width
      of ``backward_resblocks.main.0``, ``num_blocks`` its number of residual blocks.
    * RealBasicVSR (:class:`~vsvsrpp.basicvsr.RealBasicVSRConfig`): the same read off
      ``basicvsr.backward_resblocks`` (``num_propagation_blocks``), and ``num_cleaning_blocks``
      from ``image_cleaning.0``. The refinement threshold is not stored; the default is used.

    The family is chosen by :func:`detect_arch`.

    Raises:
        CheckpointError: if the keys are not those of a generator of these families.
    """
    return _DETECTORS[detect_arch(sd)](sd)


def build_model(sd: dict[str, torch.Tensor]) -> Network:
    """Detect the architecture of a bare state dict and load it strictly into a new network.

    Returns:
        A :class:`~vsvsrpp.basicvsrpp.BasicVSRPlusPlus`, :class:`~vsvsrpp.basicvsr.BasicVSR` or
        :class:`~vsvsrpp.basicvsr.RealBasicVSR` in eval mode.

    Raises:
        CheckpointError: if detection fails or the keys/shapes do not match exactly.
    """
    arch = detect_arch(sd)
    model = ARCHITECTURES[arch][1](_DETECTORS[arch](sd))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"state dict does not match the detected {model.config}: {e}") from e
    return model.eval()


def load_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Network:
    """Load a network from a catalogue name (downloaded on first use) or a checkpoint path.

    Args:
        name_or_path: a name from :data:`vsvsrpp.catalogue.MODELS` (e.g. ``"reds4"``) or the path
            of a ``.pth`` file in any layout :func:`read_state_dict` accepts.
        device: torch device for the parameters.
        dtype: parameter dtype (float32 for exact results).

    Returns:
        The network (BasicVSR++, BasicVSR or RealBasicVSR, as detected) in eval mode:
        ``forward((n, t, 3, h, w))`` float RGB in [0, 1] returns ``(n, t, 3, scale*h, scale*w)``;
        ``.scale`` is 4 or 1.

    Raises:
        ValueError: if ``name_or_path`` is neither a catalogue name nor an existing file.
        CheckpointError: if the file is not a loadable BasicVSR++ / BasicVSR / RealBasicVSR checkpoint.
        vsvsrpp.weights.DownloadError: if a catalogue checkpoint is missing and cannot be fetched.
    """
    from . import catalogue, weights

    if str(name_or_path) in catalogue.MODELS:
        path = weights.fetch(catalogue.MODELS[str(name_or_path)])
    elif Path(name_or_path).is_file():
        path = Path(name_or_path)
    else:
        raise ValueError(
            f"{str(name_or_path)!r} is neither a model name nor a checkpoint file; "
            f"names: {', '.join(catalogue.MODELS)}"
        )
    return build_model(read_state_dict(path)).to(device=device, dtype=dtype)
