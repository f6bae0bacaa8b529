"""Frame transfer between VapourSynth frames and tensors (CPU path; a CUDA path plugs in here).

The only module that touches both VapourSynth frames and tensors. ``np.asarray(frame[plane])``
is a view of the frame's memory, so reading costs one copy into the stacked array and writing
one copy into the output frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import vapoursynth as vs


def frames_to_tensor(frames: Sequence[vs.VideoFrame]) -> torch.Tensor:
    """Stack RGB float frames into one tensor.

    Args:
        frames: ``t`` frames of format RGBS or RGBH, all the same size ``h x w``.

    Returns:
        ``(t, 3, h, w)`` float32 CPU tensor (values as stored; RGB in [0, 1] by convention).
    """
    arr = np.empty((len(frames), 3, frames[0].height, frames[0].width), dtype=np.float32)
    for i, f in enumerate(frames):
        for p in range(3):
            arr[i, p] = np.asarray(f[p])
    return torch.from_numpy(arr)


def write_frame(frame: vs.VideoFrame, data: np.ndarray) -> None:
    """Copy ``(3, h, w)`` float data into the planes of a writable RGBS/RGBH frame.

    Float16 frames receive the values rounded to the nearest half-precision number.
    """
    for p in range(3):
        np.copyto(np.asarray(frame[p]), data[p], casting="same_kind")
