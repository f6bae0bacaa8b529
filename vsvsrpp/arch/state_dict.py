"""Reading a network family's hyperparameters off a bare state dict, safely.

Every reader here turns a malformed state dict (a missing key, a tensor of the wrong rank, a
scalar where a convolution weight belongs, NaN weights) into a :class:`CheckpointError` that
names the key, instead of an ``IndexError`` or silently black frames later.
"""

from __future__ import annotations

import re

import torch

#: A bare state dict: parameter and buffer names (no ``generator.`` prefix) to tensors.
StateDict = dict[str, torch.Tensor]

#: One renaming rule of a foreign checkpoint layout: a regular expression that must match a whole
#: key, and the replacement (``re`` template syntax, ``\g<1>``) that gives the official name.
Rename = tuple[str, str]


from ..errors import CheckpointError  # noqa: E402  (the package's error family; re-exported here)


def require_keys(sd: StateDict, keys: tuple[str, ...], family: str, example: str, hint: str = "") -> None:
    """Raise :class:`CheckpointError` naming the missing keys and the first keys found.

    Args:
        sd: the state dict.
        keys: keys the family cannot do without.
        family: the family's display name (``"BasicVSR++"``).
        example: a key pattern of the official layout, for the message.
        hint: appended to the message.
    """
    missing = [k for k in keys if k not in sd]
    if missing:
        sample = ", ".join(sorted(sd)[:5]) or "none"
        article = "an" if family[0] in "AEIOU" else "a"
        raise CheckpointError(
            f"not {article} {family} state dict: missing {', '.join(missing)} (found {modules_found(sd)}; first keys: {sample}). "
            f"Expected an OpenMMLab or BasicSR {family} checkpoint (keys such as {example}){hint}."
        )


def modules_found(sd: StateDict) -> str:
    """The top-level module names of a state dict with their key counts, for error messages:
    ``"12 keys in 3 modules: backward_trunk (8), conv_last (2), spynet (2)"``."""
    counts: dict[str, int] = {}
    for key in sd:
        top = key.split(".", 1)[0]
        counts[top] = counts.get(top, 0) + 1
    shown = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items())[:12])
    more = f", and {len(counts) - 12} more" if len(counts) > 12 else ""
    return f"{len(sd)} keys in {len(counts)} modules: {shown}{more}" if sd else "no keys"


def rename_keys(sd: StateDict, rules: tuple[Rename, ...]) -> StateDict:
    """``sd`` with each key renamed by the first rule whose pattern matches the whole key; keys
    that no rule matches are kept as they are. The tensors are not copied.

    Raises:
        CheckpointError: if two keys end up with the same name (the rules do not fit this state dict).
    """
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    out: StateDict = {}
    for key, value in sd.items():
        new = next((m.expand(r) for p, r in compiled if (m := p.fullmatch(key))), key)
        if new in out:
            raise CheckpointError(f"{key} and another key both stand for {new}: the checkpoint mixes two layouts")
        out[new] = value
    return out


def out_channels(sd: StateDict, key: str) -> int:
    """Output channels of the 4-D convolution weight ``sd[key]`` (``(out, in, kh, kw)``).

    Raises:
        CheckpointError: if ``sd[key]`` is not a 4-D tensor with at least one output channel.
    """
    w = sd[key]
    if w.dim() != 4 or w.shape[0] < 1:
        raise CheckpointError(
            f"{key} has shape {tuple(w.shape)}, but a convolution weight (out, in, kh, kw) belongs there; "
            "the checkpoint is damaged or of another network"
        )
    return int(w.shape[0])


def count_blocks(sd: StateDict, prefix: str) -> int:
    """Residual blocks of the ``ResidualBlocksWithInputConv`` whose keys start with ``prefix``."""
    block = re.compile(re.escape(prefix) + r"\.main\.2\.(\d+)\.conv1\.weight")
    return len({m.group(1) for k in sd if (m := block.fullmatch(k))})


def check_finite(sd: StateDict) -> None:
    """Raise :class:`CheckpointError` naming the first floating tensor with NaN or infinity.

    A network with such weights produces NaN frames (black after conversion) on every input.
    """
    for key, value in sd.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{key} holds NaN or infinite values: the file is damaged or its training diverged; "
                "download it again or use an earlier checkpoint"
            )
