"""Helpers that turn arrays into VapourSynth clips and back (test-only)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import vapoursynth as vs

core = vs.core


def moving_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """``(t, 3, h, w)`` float32 in [0, 1]: a smooth random texture panning 1 px right and 0.5 px
    down per frame (no cut: consecutive frames differ by well under the scene-cut threshold)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, (h + t) // 8 + 2, (w + t) // 8 + 2, generator=g)
    big = F.interpolate(base, scale_factor=8, mode="bicubic", align_corners=False).clamp(0, 1)[0]
    frames = [big[:, i // 2 : i // 2 + h, i : i + w] for i in range(t)]
    return torch.stack(frames).numpy().astype(np.float32)


def clip_from_array(arr: np.ndarray, fmt: int = vs.RGBS, fps: tuple[int, int] = (24000, 1001)) -> vs.VideoNode:
    """An RGB clip whose frame n holds ``arr[n]`` and the property ``Index = n``."""
    t, _, h, w = arr.shape
    blank = core.std.BlankClip(format=fmt, width=w, height=h, length=t, fpsnum=fps[0], fpsden=fps[1], keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), arr[n, p], casting="same_kind")
        out.props["Index"] = n
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def frame_to_array(f: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)]).astype(np.float32)


def clip_to_array(clip: vs.VideoNode, order=None) -> np.ndarray:
    """All frames as ``(t, planes, h, w)`` float32, requested in ``order`` (default 0..t-1)."""
    order = range(clip.num_frames) if order is None else order
    out = {n: frame_to_array(clip.get_frame(n)) for n in order}
    return np.stack([out[n] for n in range(clip.num_frames)])


def clip_to_array_async(clip: vs.VideoNode, order) -> np.ndarray:
    """All frames, with every request in ``order`` issued at once (parallel requests)."""
    futures = {n: clip.get_frame_async(n) for n in order}
    out = {n: frame_to_array(fut.result()) for n, fut in futures.items()}
    return np.stack([out[n] for n in range(clip.num_frames)])


def clip_from_planes(planes, fmt: int, props: dict | None = None) -> vs.VideoNode:
    """A one-frame clip of format ``fmt`` whose planes hold ``planes`` (each at its own size),
    with the frame properties ``props``."""
    h, w = planes[0].shape
    blank = core.std.BlankClip(format=fmt, width=w, height=h, length=1, keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p, plane in enumerate(planes):
            np.copyto(np.asarray(out[p]), plane, casting="same_kind")
        out.props.update(props or {})
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def frame_planes(clip: vs.VideoNode, n: int = 0) -> list[np.ndarray]:
    """Frame ``n``'s planes as arrays in their own dtype and size."""
    f = clip.get_frame(n)
    return [np.array(f[p]) for p in range(f.format.num_planes)]
