"""Modulated deformable 3x3 convolution (DCNv2, Zhu et al., CVPR 2019), two implementations.

* ``"torchvision"``: :func:`torchvision.ops.deform_conv2d`, the exact path (and the one the
  official checkpoints were validated with).
* ``"sampled"``: the same sum written as one bilinear :func:`torch.nn.functional.grid_sample` of
  the nine kernel taps of every deformable group, times the modulation mask, followed by one
  matrix product with the reshaped weight (the decomposition TensorRT builds of BasicVSR++ use).
  It differs from the exact path by float rounding only (summation order; about 1e-6 relative),
  writes its output in the input's memory format (channels_last stays channels_last) and works
  on bands of output rows so that its buffers stay small. It is differentiable (training uses it
  on the CPU, where torchvision's backward kernel is slow).

Measured on a 2-core AVX-512 Xeon (torch 2.15, fp32, 2 threads; one BasicVSR++ alignment at
180x320, 128 -> 64 channels, 16 groups): torchvision 1.77 s, sampled 0.32 s. Which one a device
uses is :data:`IMPLEMENTATIONS`; a GPU has not been measured, so CUDA keeps torchvision's kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from .blocks import memory_format_of

#: The implementation the fast path uses, per device type (decided by measurement; see above).
IMPLEMENTATIONS = {"cpu": "sampled", "cuda": "torchvision"}
#: Output pixels per band of the sampled implementation: its sampled taps take
#: ``in_channels * 9 * BAND_PIXELS`` values (18 MiB for 128 channels in float32).
BAND_PIXELS = 4096


def modulated_deform_conv3x3(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    impl: str = "torchvision",
    origin: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``y[o, p] = bias[o] + sum_{c, k} weight[o, c, k] * mask[g(c), k, p] * x[c, p + k + offset[g(c), k, p]]``.

    A 3x3 kernel, stride 1, padding 1, dilation 1; input channels fall into
    ``G = mask.shape[1] // 9`` deformable groups; samples are bilinear and read zero outside the
    frame (as mmcv's and torchvision's kernels).

    Args:
        x: ``(n, c_in, h, w)`` features, any float dtype and memory format.
        offset: ``(n, 2 * G * 9, h, w)`` float32 offsets in pixels, ``(dy, dx)`` pairs for group
            ``g`` and tap ``k = 3 * ky + kx`` at channels ``2 * (9 * g + k)`` and the next
            (torchvision's and mmcv's layout).
        mask: ``(n, G * 9, h, w)`` modulation in [0, 1] (after the sigmoid), channel ``9 * g + k``.
        weight: ``(c_out, c_in, 3, 3)``.
        bias: ``(c_out,)``.
        impl: ``"torchvision"`` or ``"sampled"`` (see the module docstring).
        origin: ``(oy, ox)``: the output covers only a region of ``x``'s frame, whose top-left
            pixel this is; its size is ``offset``'s and ``mask``'s ``(rh, rw)``, and output pixel
            ``p`` is ``x``'s pixel ``p + origin`` (step-wise tiles: the region of the
            convolution of a whole frame, reading the whole frame). None: ``(0, 0)``, and
            ``offset`` and ``mask`` must be ``x``'s size.

    Returns:
        ``(n, c_out, rh, rw)`` (``(n, c_out, h, w)`` without ``origin``) in ``weight``'s dtype;
        channels_last when ``impl="sampled"`` and ``x`` is channels_last.

    Raises:
        ValueError: for an unknown ``impl``, or shapes that do not fit together (quoted).
    """
    n, c_in, h, w = x.shape
    groups = mask.shape[1] // 9
    rh, rw = offset.shape[-2:]
    oy, ox = origin or (0, 0)
    if mask.shape[-2:] != (rh, rw) or oy < 0 or ox < 0 or oy + rh > h or ox + rw > w or (origin is None and (rh, rw) != (h, w)):
        raise ValueError(
            f"modulated_deform_conv3x3: offset {tuple(offset.shape)} and mask {tuple(mask.shape)} at {origin or (0, 0)} "
            f"do not cover a region of x {tuple(x.shape)}"
        )
    if groups < 1 or mask.shape[1] != 9 * groups or offset.shape[1] != 18 * groups or c_in % groups:
        raise ValueError(
            f"modulated_deform_conv3x3: offset {tuple(offset.shape)} and mask {tuple(mask.shape)} do not fit "
            f"x {tuple(x.shape)} (need 18*G and 9*G channels, G dividing {c_in})"
        )
    if tuple(weight.shape[1:]) != (c_in, 3, 3):
        raise ValueError(f"modulated_deform_conv3x3: weight {tuple(weight.shape)} is not (c_out, {c_in}, 3, 3)")
    if impl == "torchvision":
        if (rh, rw) == (h, w):
            return deform_conv2d(x, offset, weight, bias, padding=(1, 1), mask=mask)
        return _torchvision_region(x, offset, mask, weight, bias, (oy, ox))
    if impl != "sampled":
        raise ValueError(f"modulated_deform_conv3x3: impl must be 'torchvision' or 'sampled', got {impl!r}")
    return _sampled(x, offset, mask, weight, bias, groups, (oy, ox))


def _torchvision_region(
    x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, origin: tuple[int, int]
) -> torch.Tensor:
    """torchvision's kernel on a region smaller than ``x``: its output size is ``size + 2 pad -
    2 dilation`` a side (3x3, stride 1), so a dilation (and padding) is chosen per axis that
    gives the region's size, and the offsets are shifted per tap so that every tap samples
    where the plain convolution's would: tap ``k`` of output pixel ``q`` reads
    ``q - pad + k * dilation + offset'`` in torchvision and must read
    ``q + origin + (k - 1) + offset``. A region whose size differs from ``x``'s in parity gets
    one more row (column) of zero offsets and mask, cut from the output."""
    h, w = x.shape[-2:]
    rh, rw = offset.shape[-2:]
    eh, ew = (h - rh) % 2, (w - rw) % 2
    if eh or ew:
        offset, mask = F.pad(offset, (0, ew, 0, eh)), F.pad(mask, (0, ew, 0, eh))

    def axis(size: int, region: int) -> tuple[int, int]:  # (padding, dilation)
        return (1, 1) if region == size else (0, (size - region) // 2)

    (py, dy), (px, dx) = axis(h, rh + eh), axis(w, rw + ew)
    k = torch.arange(9, device=offset.device, dtype=torch.float32)
    shift_y = origin[0] - 1 + py + (k // 3) * (1 - dy)
    shift_x = origin[1] - 1 + px + (k % 3) * (1 - dx)
    shift = torch.stack((shift_y, shift_x), dim=1).reshape(1, 18, 1, 1).repeat(1, offset.size(1) // 18, 1, 1)
    out = deform_conv2d(x, offset + shift, weight, bias, padding=(py, px), dilation=(dy, dx), mask=mask)
    return out[..., :rh, :rw]


def _sampled(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    groups: int,
    origin: tuple[int, int],
) -> torch.Tensor:
    n, c_in, h, w = x.shape
    rh, rw = offset.shape[-2:]  # the output region, at ``origin`` of x's frame
    oy, ox = origin
    c_out = weight.shape[0]
    cg = c_in // groups
    dev = x.device
    channels_last = memory_format_of(x) == torch.channels_last
    # Sampling in float32 (positions need it), the product in the weight's dtype.
    xg = x.float().reshape(n * groups, cg, h, w)
    taps = torch.arange(9, device=dev)
    ky = (taps // 3 - 1).float().view(1, 1, 9, 1, 1)
    kx = (taps % 3 - 1).float().view(1, 1, 9, 1, 1)
    offset = offset.float().view(n, groups, 9, 2, rh, rw)
    mask = mask.view(n * groups, 1, 9, rh, rw)
    # weight[o, c, ky, kx] -> (c_out, c_in * 9): column (c, k) matches the samples' (g, c_g, k)
    wm = weight.reshape(c_out, c_in * 9)
    # Under autograd (training) every band is a new tensor and the bands are concatenated;
    # otherwise they are written in place into one output buffer.
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, offset, mask, weight, bias))
    bands: list[torch.Tensor] = []
    # (n, h, w, c_out) memory viewed as NCHW is channels_last; else plain NCHW
    out = None if grad else x.new_empty((n, rh, rw, c_out) if channels_last else (n, c_out, rh, rw), dtype=weight.dtype)
    # pixel p -> (2p + 1) / size - 1, the grid of align_corners=False (right for a size of 1 too)
    sx, sy = 2.0 / w, 2.0 / h
    cols = torch.arange(ox, ox + rw, device=dev, dtype=torch.float32).view(1, 1, 1, 1, rw)
    rows_per_band = max(1, BAND_PIXELS // rw)
    for r0 in range(0, rh, rows_per_band):
        r1 = min(rh, r0 + rows_per_band)
        pixels = (r1 - r0) * rw
        rows = torch.arange(oy + r0, oy + r1, device=dev, dtype=torch.float32).view(1, 1, 1, -1, 1)
        gx = (offset[:, :, :, 1, r0:r1] + cols + kx).add_(0.5).mul_(sx).sub_(1.0)
        gy = (offset[:, :, :, 0, r0:r1] + rows + ky).add_(0.5).mul_(sy).sub_(1.0)
        grid = torch.stack((gx, gy), dim=-1).view(n * groups, 9, pixels, 2)
        s = F.grid_sample(xg, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        m = mask[..., r0:r1, :].reshape(n * groups, 1, 9, pixels).float()
        s = s * m if grad else s.mul_(m)
        s = s.view(n, c_in * 9, pixels).to(weight.dtype)
        if channels_last:  # (pixels, c_in*9) @ (c_in*9, c_out) lands in NHWC order
            args = (bias.view(1, 1, c_out), s.transpose(1, 2), wm.t().expand(n, -1, -1))
            if grad:
                bands.append(torch.baddbmm(*args))
            else:
                torch.baddbmm(*args, out=out[:, r0:r1].view(n, pixels, c_out))
        else:
            args = (bias.view(1, c_out, 1), wm.expand(n, -1, -1), s)
            if grad:
                bands.append(torch.baddbmm(*args))
            else:
                torch.baddbmm(*args, out=out[:, :, r0:r1].view(n, c_out, pixels))
    if grad:
        out = torch.cat(bands, dim=1).view(n, rh, rw, c_out) if channels_last else torch.cat(bands, dim=2).view(n, c_out, rh, rw)
    return out.permute(0, 3, 1, 2) if channels_last else out
