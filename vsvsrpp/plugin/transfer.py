"""Frame transfer between VapourSynth frames and the network's tensors: the host path and the
plane path.

The only module that touches both VapourSynth frames and tensors. The window graph
(:mod:`vsvsrpp.plugin.graph`) asks a transfer for a window's input tensor and for the output
frames' data, and touches neither NumPy nor the device itself:

* :class:`HostTransfer` (the CPU, and CUDA where the plane path does not apply): the frames are
  float RGB already (``core.resize`` on the host, :func:`~vsvsrpp.plugin.colors.to_rgb`), copied
  once into one stacked array; results come back as float32 RGB host arrays and are copied once
  into the output frames, which ``core.resize`` converts to the output format.
* :class:`PlaneTransfer` (CUDA with CuPy): the frames travel in the clip's own format, every
  plane at its own size and sample type. Each plane's ``np.asarray(frame[p])`` view is copied
  once into a pinned staging buffer from CuPy's pinned memory pool, uploaded asynchronously on
  a copy stream, converted to RGB on the device (:mod:`vsvsrpp.plugin.colorxp`, the arithmetic
  of ``core.resize``) and handed to torch by DLPack, without a device copy. The output goes back
  the same way: converted to the output format on the device, downloaded into pinned buffers,
  copied into the output frames' planes. Frames are never float RGB on the host.

The array backend of the plane path is a value (:class:`CupyPlanes` on CUDA): the tests run the
very same :class:`PlaneTransfer` on the CPU with :class:`NumpyPlanes`, where NumPy arrays stand
for device arrays. CuPy is an optional extra (``pip install 'vsvsrpp[cuda]'``); nothing on the CPU
imports it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import vapoursynth as vs

from . import colorxp
from .colors import Colors

log = logging.getLogger("vsvsrpp")

__all__ = ["CupyPlanes", "HostTransfer", "NumpyPlanes", "PlaneTransfer", "bytes_per_frame", "choose", "frames_to_tensor", "write_frame"]


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


def write_frame(frame: vs.VideoFrame, data: Sequence[np.ndarray]) -> None:
    """Copy one array per plane into the planes of a writable frame (``data[p]`` of the plane's
    shape, ``(h_p, w_p)``).

    Float16 frames receive the values rounded to the nearest half-precision number.
    """
    for p in range(frame.format.num_planes):
        np.copyto(np.asarray(frame[p]), data[p], casting="same_kind")


class HostTransfer:
    """The host path: float RGB frames in, float32 RGB host arrays out (see the module's description)."""

    #: The engine returns its output in host memory.
    to_host = True
    #: The graph's input and output clips are float RGB (``core.resize`` converts around it).
    planes = False

    def to_tensor(self, frames: Sequence[vs.VideoFrame]) -> torch.Tensor:
        """``(t, 3, h, w)`` float32 CPU tensor of ``t`` RGBS/RGBH frames."""
        return frames_to_tensor(frames)

    def to_frames(self, out: torch.Tensor) -> list[np.ndarray]:
        """Each frame's data for :meth:`write`: ``out`` is the engine's ``(t, 3, H, W)`` float32 host tensor."""
        return list(out.numpy())

    def write(self, frame: vs.VideoFrame, data: np.ndarray) -> None:
        """Copy one frame's ``(3, H, W)`` float32 data into a writable RGBS/RGBH frame."""
        write_frame(frame, data)


class NumpyPlanes:
    """The plane path's array backend on the CPU, for tests: NumPy arrays stand for device
    arrays, "uploads" and "downloads" are copies, DLPack hands arrays to torch and back."""

    xp = np

    def staging(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.empty(shape, dtype)

    def upload(self, host: np.ndarray) -> np.ndarray:
        return host.copy()

    def download(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True)

    def on_compute_stream(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def to_torch(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_dlpack(array)

    def from_torch(self, tensor: torch.Tensor) -> np.ndarray:
        return np.from_dlpack(tensor.detach())


class CupyPlanes:
    """The plane path's array backend on a CUDA device, with CuPy.

    Uploads and downloads run on a dedicated copy stream between pinned host buffers (CuPy's
    pinned memory pool) and device arrays; the colour arithmetic runs on torch's current stream
    of the device (CuPy wraps it as an external stream), and events order the copy stream after
    that stream and that stream after the copies. :meth:`upload` and :meth:`download` return
    once their copy is done, so a staging buffer is never rewritten while a copy reads it.

    Raises:
        ImportError: CuPy is not installed.
    """

    def __init__(self, device: torch.device):
        import cupy  # noqa: PLC0415  (optional: the [cuda] extra)
        import cupyx  # noqa: PLC0415

        self.xp, self._cupyx = cupy, cupyx
        self.index = device.index if device.index is not None else torch.cuda.current_device()
        with cupy.cuda.Device(self.index):
            self.copy_stream = cupy.cuda.Stream(non_blocking=True)

    def on_compute_stream(self) -> contextlib.AbstractContextManager:
        """CuPy's current device and stream: torch's current stream of the device."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.xp.cuda.Device(self.index))
        stack.enter_context(self.xp.cuda.ExternalStream(torch.cuda.current_stream(self.index).cuda_stream, self.index))
        return stack

    def staging(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self._cupyx.empty_pinned(shape, dtype)

    def upload(self, host: np.ndarray) -> Any:
        """A device copy of a pinned host array, ready for work on the compute stream."""
        with self.on_compute_stream():
            compute = self.xp.cuda.get_current_stream()
            device = self.xp.empty(host.shape, host.dtype)  # from the pool of the compute stream
            self.copy_stream.wait_event(compute.record())  # earlier readers of reused memory first
            device.set(host, stream=self.copy_stream)
            copied = self.copy_stream.record()
            compute.wait_event(copied)
        copied.synchronize()  # the staging buffer may be reused from here on
        return device

    def download(self, array: Any) -> np.ndarray:
        """A pinned host copy of a device array written on the compute stream."""
        host = self.staging(array.shape, array.dtype)
        with self.on_compute_stream():
            self.copy_stream.wait_event(self.xp.cuda.get_current_stream().record())
            array.get(stream=self.copy_stream, out=host)
        self.copy_stream.synchronize()
        return host

    def to_torch(self, array: Any) -> torch.Tensor:
        return torch.from_dlpack(array)  # the same device memory (DLPack), no copy

    def from_torch(self, tensor: torch.Tensor) -> Any:
        return self.xp.from_dlpack(tensor.detach())


class PlaneTransfer:
    """The plane path (see the module's description).

    Args:
        backend: :class:`CupyPlanes` (CUDA) or :class:`NumpyPlanes` (the CPU, for tests).
        source: the input clip's format; ``colors`` how to read it.
        output: the output format (``colors`` decide its matrix, range and chroma location, as
            :func:`vsvsrpp.plugin.colors.from_rgb` does).

    Raises:
        colorxp.UnsupportedConversion: a format, matrix or dither the device does not convert
            (constant-luminance and ICtCp matrices, the ``random`` and ``error_diffusion``
            dithers); the caller uses :class:`HostTransfer`.
    """

    to_host = False
    planes = True

    def __init__(self, backend, source: vs.VideoFormat, colors: Colors, output: vs.VideoFormat, dither: str = "none"):
        colorxp.check_supported(source, colors)
        colorxp.check_supported(output, colors, dither)
        self.backend, self.source, self.colors, self.output, self.dither = backend, source, colors, output, dither

    def to_tensor(self, frames: Sequence[vs.VideoFrame]) -> torch.Tensor:
        """``(t, 3, h, w)`` float32 RGB of ``t`` frames in the source format, on the backend's
        device (each plane of the window uploaded at once; converted frame by frame, so that
        the conversion's float64 intermediates stay one frame's)."""
        b, t = self.backend, len(frames)
        uploaded = []
        for p in range(self.source.num_planes):
            plane = np.asarray(frames[0][p])
            host = b.staging((t, *plane.shape), plane.dtype)
            for i, f in enumerate(frames):
                np.copyto(host[i], np.asarray(f[p]))
            uploaded.append(b.upload(host))
        with b.on_compute_stream():
            rgb = b.xp.empty((t, 3, frames[0].height, frames[0].width), dtype=b.xp.float32)
            for i in range(t):
                rgb[i] = colorxp.planes_to_rgb([plane[i] for plane in uploaded], self.source, self.colors)
            return b.to_torch(rgb)

    def to_frames(self, out: torch.Tensor) -> list[tuple[np.ndarray, ...]]:
        """Each output frame's planes (host arrays, pinned on CUDA) from the engine's
        ``(e, 3, H, W)`` float32 RGB on the device, converted and downloaded frame by frame."""
        b = self.backend
        frames = []
        with b.on_compute_stream():
            rgb = b.from_torch(out.contiguous())
        for i in range(out.size(0)):
            with b.on_compute_stream():
                planes = [b.xp.ascontiguousarray(p) for p in colorxp.rgb_to_planes(rgb[i], self.output, self.colors, self.dither)]
            frames.append(tuple(b.download(p) for p in planes))
        return frames

    def write(self, frame: vs.VideoFrame, data: Sequence[np.ndarray]) -> None:
        """Copy one frame's planes into a writable frame of the output format."""
        write_frame(frame, data)


def bytes_per_frame(fmt: vs.VideoFormat, width: int, height: int, planes: bool) -> int:
    """Bytes a frame of ``width x height`` moves between host and device, one way: its planes in
    ``fmt`` on the plane path, float32 RGB on the host path."""
    if not planes:
        return 3 * width * height * 4
    luma = width * height
    chroma = (width >> fmt.subsampling_w) * (height >> fmt.subsampling_h)
    return fmt.bytes_per_sample * (luma + (fmt.num_planes - 1) * chroma)


def backend_for(device: torch.device):
    """The plane path's array backend on ``device``, or None where the host path runs: the CPU,
    or CUDA without CuPy. (The tests substitute :class:`NumpyPlanes` here for the CPU.)"""
    if device.type != "cuda":
        return None
    try:
        return CupyPlanes(device)
    except ImportError:
        log.info("CuPy is not installed: colour conversion runs on the host (pip install 'vsvsrpp[cuda]' moves it to the GPU)")
        return None


def choose(device: torch.device, source: vs.VideoFormat, colors: Colors, output: vs.VideoFormat, dither: str):
    """The transfer for a filter on ``device``: :class:`PlaneTransfer` where its backend exists
    and it converts the formats, else :class:`HostTransfer` (with one log line saying why)."""
    backend = backend_for(device)
    if backend is None:
        return HostTransfer()
    try:
        return PlaneTransfer(backend, source, colors, output, dither)
    except colorxp.UnsupportedConversion as e:
        log.info("colour conversion on the host: %s", e)
        return HostTransfer()
