"""The engine: runs a network on one window of frames on the chosen device.

Knows nothing of VapourSynth, so the filter and the command line share it. Padding to the
network's size requirements lives in the network's ``forward``.
"""

from __future__ import annotations

import torch
from torch import nn

from .windows import WindowPlan


def default_device() -> torch.device:
    """``cuda`` when a CUDA device is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Engine:
    """Run a video network on windows of frames.

    Args:
        model: a network whose ``forward`` maps ``(n, t, 3, h, w)`` to
            ``(n, t, 3, scale*h, scale*w)`` and which has a ``.scale`` attribute.
        device: where to run it (``None``: :func:`default_device`).
    """

    def __init__(self, model: nn.Module, device: str | torch.device | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.scale: int = model.scale
        self.dtype = next(model.parameters()).dtype

    def __call__(self, frames: torch.Tensor, **model_kwargs) -> torch.Tensor:
        """Process one window.

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1] on any device.
            model_kwargs: passed to the network's ``forward`` (e.g. RealBasicVSR's
                ``refine_threshold``), per call so that one cached engine serves every filter.

        Returns:
            ``(t, 3, scale*h, scale*w)`` float32 on the CPU, clamped to [0, 1].
        """
        with torch.inference_mode():
            x = frames.to(self.device, self.dtype).unsqueeze(0)
            return self.model(x, **model_kwargs)[0].clamp_(0.0, 1.0).to("cpu", torch.float32)

    def process_sequence(self, frames: torch.Tensor, window: int, overlap: int, **model_kwargs) -> torch.Tensor:
        """Process a whole sequence window by window, exactly as the VapourSynth filter does.

        Args:
            frames: ``(t, 3, h, w)`` float RGB in [0, 1].
            window, overlap: the window grid (see :class:`vsvsrpp.windows.WindowPlan`).
            model_kwargs: passed to the network's ``forward`` for every window.

        Returns:
            ``(t, 3, scale*h, scale*w)`` float32 on the CPU, clamped to [0, 1].

        Raises:
            ValueError: for bad ``window``/``overlap`` values.
        """
        plan = WindowPlan(frames.shape[0], window, overlap)
        return torch.cat([self(frames[w.start : w.end], **model_kwargs)[w.emitted] for w in plan])
