"""The CUDA calls the runtime makes that PyTorch's fake tensors cannot run, in one small seam.

Everything else a pass does on CUDA (building tensors on the device, convolutions, sampling,
the deformable convolution, dtype and device rules) runs under
``torch._subclasses.fake_tensor.FakeTensorMode`` on a machine without a GPU, so CI checks the
CUDA code path's device and dtype logic (``tests/test_fake_cuda.py``). What the mode cannot do
(asking the driver, moving a real module, pinned host memory, synchronisation, the caching
allocator, memory statistics) goes through these functions, which that harness replaces; the
rest of the pass is the real code.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["device_count", "empty_cache", "free_bytes", "host_buffer", "place", "synchronize"]


def device_count() -> int:
    """CUDA devices visible to this process (0 when CUDA is not usable)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def place(module: nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> nn.Module:
    """Move ``module``'s parameters and buffers to ``device`` (floating ones to ``dtype``), in place."""
    return module.to(device, dtype) if dtype is not None else module.to(device)


def host_buffer(shape: tuple[int, ...], zeros: bool, pinned: bool) -> torch.Tensor:
    """A float32 host tensor for a pass's output: page-locked (``pinned``) so that copies from
    the device into it are asynchronous; zero-filled when ``zeros`` (tiles are added into it)."""
    return (torch.zeros if zeros else torch.empty)(shape, dtype=torch.float32, pin_memory=pinned)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device``'s current stream (the asynchronous copies to pinned
    host memory of a pass)."""
    torch.cuda.current_stream(device).synchronize()


def empty_cache() -> None:
    """Return the caching allocator's free blocks to the driver (after an out-of-memory error)."""
    torch.cuda.empty_cache()


def free_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device, in bytes."""
    return torch.cuda.mem_get_info(device)[0]
