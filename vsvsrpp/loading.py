"""Reading checkpoints, detecting the architecture from a state dict, building the network.

Detection works like spandrel's: hyperparameters are read off key names and tensor shapes, so
any official or custom-trained BasicVSR++ checkpoint loads without a config file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .basicvsrpp import BasicVSRPlusPlus, BasicVSRPPConfig


class CheckpointError(ValueError):
    """A file is not a checkpoint this package can load (with the reason and what to do)."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return the generator's bare state dict.

    Accepted layouts: the OpenMMLab (mmediting) one (a dict with ``state_dict`` whose keys start
    with ``generator.``), a dict with ``params`` (BasicSR), or a bare state dict, with or without
    the ``generator.`` / ``module.`` prefixes. The file is read with
    ``torch.load(..., weights_only=True)``: a checkpoint can never execute code.

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
    for prefix in ("generator.", "module."):
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def detect_config(sd: dict[str, torch.Tensor]) -> BasicVSRPPConfig:
    """Read BasicVSR++ hyperparameters off a bare state dict.

    ``mid_channels`` is the output width of ``reconstruction.main.0``; ``num_blocks`` the number
    of residual blocks in ``backbone.backward_1``; ``is_low_res_input`` is False when features are
    extracted with the strided convolutions of the 1x models (``feat_extract.0.weight``).
    ``max_residue_magnitude`` is not stored in checkpoints; the official value 10 is used.

    Raises:
        CheckpointError: if the keys are not those of a BasicVSR++ generator.
    """
    required = ("reconstruction.main.0.weight", "backbone.backward_1.main.0.weight", "spynet.basic_module.0.basic_module.0.conv.weight")
    missing = [k for k in required if k not in sd]
    if missing:
        sample = ", ".join(sorted(sd)[:5])
        raise CheckpointError(
            f"not a BasicVSR++ state dict: missing {', '.join(missing)} (first keys found: {sample}). "
            "Expected an OpenMMLab BasicVSR++ checkpoint (keys such as generator.backbone.backward_1.*)."
        )
    mid = sd["reconstruction.main.0.weight"].shape[0]
    block = re.compile(r"backbone\.backward_1\.main\.2\.(\d+)\.conv1\.weight")
    num_blocks = len({m.group(1) for k in sd if (m := block.fullmatch(k))})
    if "feat_extract.main.0.weight" in sd:
        low_res = True
    elif "feat_extract.0.weight" in sd:
        low_res = False
    else:
        raise CheckpointError("not a BasicVSR++ state dict: no feat_extract.main.0.weight or feat_extract.0.weight")
    return BasicVSRPPConfig(mid_channels=mid, num_blocks=num_blocks, is_low_res_input=low_res)


def build_model(sd: dict[str, torch.Tensor]) -> BasicVSRPlusPlus:
    """Detect the architecture of a bare state dict and load it strictly into a new network.

    Raises:
        CheckpointError: if detection fails or the keys/shapes do not match exactly.
    """
    model = BasicVSRPlusPlus(detect_config(sd))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"state dict does not match the detected {model.config}: {e}") from e
    return model.eval()


def load_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> BasicVSRPlusPlus:
    """Load a network from a catalogue name (downloaded on first use) or a checkpoint path.

    Args:
        name_or_path: a name from :data:`vsvsrpp.catalogue.MODELS` (e.g. ``"reds4"``) or the path
            of a ``.pth`` file in any layout :func:`read_state_dict` accepts.
        device: torch device for the parameters.
        dtype: parameter dtype (float32 for exact results).

    Returns:
        The network in eval mode: ``forward((n, t, 3, h, w))`` float RGB in [0, 1] returns
        ``(n, t, 3, scale*h, scale*w)``; ``.scale`` is 4 or 1.

    Raises:
        ValueError: if ``name_or_path`` is neither a catalogue name nor an existing file.
        CheckpointError: if the file is not a loadable BasicVSR++ checkpoint.
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
