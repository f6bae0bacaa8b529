"""Training sequences from still photos: a simulated camera moving smoothly over each photo.

Openly licensed video that may be used for training is rare; openly licensed photos are not. A
sequence here is what a camera would film while panning, zooming and rolling slowly over a
photo: for frame ``t`` the output pixel ``q`` (relative to the frame's centre, in output pixels)
shows the photo at

    p(t) = c(t) + R(theta(t)) q / z(t)

with a centre ``c(t) = c0 + v t + a t^2 / 2`` (pixels of the downscaled photo), a zoom
``z(t) = exp(zv t + za t^2 / 2)`` and a roll ``theta(t) = rv t``: smooth sub-pixel motion with
constant acceleration, as in a hand-held or slowly driven shot. Every frame is rendered with
Catmull-Rom interpolation at ``SUPERSAMPLE`` times the output resolution and box-filtered down,
so it is sharp, not aliased, and moves exactly as the path says.

Photos are downscaled (Lanczos, by a random factor of at least ``min_downscale``) before the
camera films them: the JPEG artefacts and noise of the original vanish, and the frames look like
clean ground truth. The BI or BD degradation is applied later, on the fly, by the trainer
(:mod:`vsvsrpp.tools.train.data`), which reads the folder this module writes.

The output folder holds one sub-folder of numbered PNG frames per sequence and
``manifest.json``: the build's settings, every photo used (path, sha256, author, licence,
origin), and each sequence's photo, downscale factor and camera path. Sequence ``k`` is a pure
function of ``(seed, k)`` and the photos, so an interrupted build continues where it stopped and
a rebuild is identical.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...hub.download import sha256_of
from .photos import Photo

__all__ = ["CameraPath", "SequenceSpec", "build_sequences", "random_path", "render", "sample_cubic"]

log = logging.getLogger("vsvsrpp.train")

#: Rendering resolution relative to the output (each output pixel averages SUPERSAMPLE^2 samples).
SUPERSAMPLE = 2
#: Name of the build's record in the output folder.
MANIFEST = "manifest.json"
#: Photo pixels kept between any frame's footprint and the photo's edge (a cubic reads 2 beyond).
EDGE = 3
#: Version of the rendering, stored in the manifest: a folder built by another version is refused.
BUILDER_VERSION = 1


@dataclass(frozen=True)
class CameraPath:
    """A smooth camera motion (see the module docstring for the formula).

    Attributes:
        center: ``(x, y)`` of the frame centre at ``t = 0`` in downscaled-photo pixels.
        velocity, acceleration: ``(x, y)`` pixels per frame and per frame squared.
        zoom_rate, zoom_acceleration: of the log zoom, per frame and per frame squared.
        roll_rate: radians per frame.
    """

    center: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    acceleration: tuple[float, float] = (0.0, 0.0)
    zoom_rate: float = 0.0
    zoom_acceleration: float = 0.0
    roll_rate: float = 0.0

    def at(self, t: float) -> tuple[float, float, float, float]:
        """``(cx, cy, zoom, roll)`` at frame ``t``."""
        cx = self.center[0] + self.velocity[0] * t + 0.5 * self.acceleration[0] * t * t
        cy = self.center[1] + self.velocity[1] * t + 0.5 * self.acceleration[1] * t * t
        zoom = math.exp(self.zoom_rate * t + 0.5 * self.zoom_acceleration * t * t)
        return cx, cy, zoom, self.roll_rate * t

    def footprint(self, frames: int, height: int, width: int) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``: the box of photo coordinates any frame's corners reach."""
        xs, ys = [], []
        for t in range(frames):
            cx, cy, zoom, roll = self.at(t)
            c, s = math.cos(roll), math.sin(roll)
            for qx in (-width / 2, width / 2):
                for qy in (-height / 2, height / 2):
                    xs.append(cx + (c * qx - s * qy) / zoom)
                    ys.append(cy + (s * qx + c * qy) / zoom)
        return min(xs), min(ys), max(xs), max(ys)


def random_path(
    rng: np.random.Generator,
    frames: int,
    height: int,
    width: int,
    photo_height: int,
    photo_width: int,
    *,
    max_speed: float = 3.0,
    max_acceleration: float = 0.15,
    max_zoom_rate: float = 0.01,
    max_roll_rate: float = math.radians(0.25),
) -> CameraPath | None:
    """A random :class:`CameraPath` whose every frame lies inside the photo.

    Speeds are drawn uniformly within the limits (pixels of the output per frame; zoom as a
    fraction per frame; roll in radians per frame) in a random direction; when the motion would
    leave the photo it is halved (up to 6 times) before giving up.

    Returns:
        The path, or ``None`` when not even a still camera fits (the photo is smaller than the
        frame plus :data:`EDGE` pixels each side).
    """
    speed, direction = rng.uniform(0, max_speed), rng.uniform(0, 2 * math.pi)
    accel, accel_dir = rng.uniform(0, max_acceleration), rng.uniform(0, 2 * math.pi)
    zoom_rate, zoom_accel = rng.uniform(-max_zoom_rate, max_zoom_rate), rng.uniform(-0.05, 0.05) * max_zoom_rate
    roll = rng.uniform(-max_roll_rate, max_roll_rate)
    u = rng.uniform(size=2)
    for _ in range(7):
        path = CameraPath(
            (0.0, 0.0),
            (speed * math.cos(direction), speed * math.sin(direction)),
            (accel * math.cos(accel_dir), accel * math.sin(accel_dir)),
            zoom_rate,
            zoom_accel,
            roll,
        )
        x0, y0, x1, y1 = path.footprint(frames, height, width)
        room_x, room_y = photo_width - 2 * EDGE - (x1 - x0), photo_height - 2 * EDGE - (y1 - y0)
        if room_x >= 0 and room_y >= 0:
            # Place the footprint uniformly inside the photo, EDGE pixels from its edges.
            cx = EDGE - x0 + u[0] * room_x
            cy = EDGE - y0 + u[1] * room_y
            return CameraPath((cx, cy), path.velocity, path.acceleration, zoom_rate, zoom_accel, roll)
        speed, accel, zoom_rate, zoom_accel, roll = speed / 2, accel / 2, zoom_rate / 2, zoom_accel / 2, roll / 2
    return None


def _cubic_weights(f: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Catmull-Rom weights (Keys' cubic convolution with a = -0.5) of the taps at offsets
    -1, 0, 1, 2 from ``floor``, for fractional positions ``f`` in [0, 1)."""
    f2, f3 = f * f, f * f * f
    return (-f3 + 2 * f2 - f) / 2, (3 * f3 - 5 * f2 + 2) / 2, (-3 * f3 + 4 * f2 + f) / 2, (f3 - f2) / 2


def sample_cubic(image: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at real positions with Catmull-Rom interpolation.

    Catmull-Rom reproduces polynomials up to degree 2, so a sub-pixel shift moves content by
    exactly that shift; ``torch.nn.functional.grid_sample``'s bicubic (a = -0.75) does not (on a
    linear ramp a 0.3 px shift lands 0.05 px off), which would make a smooth pan wobble.

    Args:
        image: ``(c, H, W)`` float.
        px, py: positions of any equal shape ``S``, in pixels with pixel centres at ``k + 0.5``.

    Returns:
        ``(c, *S)``; taps outside the image read as 0.
    """
    c, H, W = image.shape
    u, v = px - 0.5, py - 0.5
    x0, y0 = torch.floor(u), torch.floor(v)
    wx, wy = _cubic_weights(u - x0), _cubic_weights(v - y0)
    x0, y0 = x0.long(), y0.long()
    flat = image.reshape(c, H * W)
    out = torch.zeros((c, *px.shape), dtype=image.dtype)
    for j, wyj in enumerate(wy):
        yy = y0 + (j - 1)
        for i, wxi in enumerate(wx):
            xx = x0 + (i - 1)
            inside = (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
            index = (yy.clamp(0, H - 1) * W + xx.clamp(0, W - 1)).reshape(-1)
            out += flat[:, index].reshape(c, *px.shape) * (wyj * wxi * inside)
    return out


def render(photo: torch.Tensor, path: CameraPath, frames: int, height: int, width: int) -> torch.Tensor:
    """Film ``photo`` along ``path``.

    Args:
        photo: ``(3, H, W)`` float RGB in [0, 1] (float32 or float64).
        path: the camera motion, in pixels of ``photo`` (pixel centres at integer + 0.5).
        frames, height, width: the sequence's length and frame size (output pixels).

    Returns:
        ``(frames, 3, height, width)`` in ``photo``'s dtype, in [0, 1]: each pixel is the mean of
        ``SUPERSAMPLE^2`` Catmull-Rom samples (:func:`sample_cubic`) spread over it. Samples
        outside the photo read as 0 (:func:`random_path` keeps every frame inside).
    """
    ss = SUPERSAMPLE
    dtype = photo.dtype
    qy = (torch.arange(height * ss, dtype=dtype) + 0.5) / ss - height / 2
    qx = (torch.arange(width * ss, dtype=dtype) + 0.5) / ss - width / 2
    qy, qx = torch.meshgrid(qy, qx, indexing="ij")
    out = torch.empty(frames, 3, height, width, dtype=dtype)
    for t in range(frames):
        cx, cy, zoom, roll = path.at(t)
        c, s = math.cos(roll), math.sin(roll)
        sampled = sample_cubic(photo, cx + (c * qx - s * qy) / zoom, cy + (s * qx + c * qy) / zoom)
        out[t] = F.avg_pool2d(sampled[None], ss)[0].clamp(0, 1)
    return out


@dataclass(frozen=True)
class SequenceSpec:
    """What a build makes (stored in the manifest; a folder is only continued with the same).

    Attributes:
        sequences: how many sequences.
        frames: frames per sequence.
        height, width: frame size (ground truth, output pixels).
        min_downscale, max_downscale: range of the factor each photo is shrunk by before it is
            filmed (at least 2 so that JPEG artefacts vanish; smaller photos get smaller factors,
            never below ``min_downscale``).
        max_speed: the fastest pan, output pixels per frame.
        seed: seeds every random choice.
    """

    sequences: int = 200
    frames: int = 20
    height: int = 384
    width: int = 384
    min_downscale: float = 2.0
    max_downscale: float = 4.0
    max_speed: float = 3.0
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        for name in ("sequences", "frames", "height", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2 (the network propagates between frames), got {self.frames}")
        if not 1.0 <= self.min_downscale <= self.max_downscale:
            raise ValueError(f"need 1 <= min_downscale <= max_downscale, got {self.min_downscale} and {self.max_downscale}")
        if self.max_speed < 0:
            raise ValueError(f"max_speed must be >= 0, got {self.max_speed}")


def _load_photo(path: Path) -> "PIL.Image.Image":  # noqa: F821
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _photo_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` as :func:`_load_photo` returns it, read from the file's header
    (EXIF orientations 5-8 are rotated a quarter turn)."""
    from PIL import Image

    with Image.open(path) as im:
        turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
        return (im.height, im.width) if turned else (im.width, im.height)


def _shrink(image, factor: float) -> torch.Tensor:
    """Lanczos-downscale a PIL image by ``factor``; ``(3, h, w)`` float64 in [0, 1]."""
    from PIL import Image

    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    small = image.resize(size, Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(small, dtype=np.float64) / 255).permute(2, 0, 1).contiguous()


def _write_png(frame: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = (frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(array).save(path, optimize=False, compress_level=1)


def _write_json(data: dict, path: Path) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".manifest-", suffix=".tmp", delete=False) as f:
        json.dump(data, f, indent=1)
        tmp = f.name
    os.replace(tmp, path)


def build_sequences(photos: Sequence[Photo], out_dir: str | os.PathLike, spec: SequenceSpec = SequenceSpec(), progress: bool = False) -> dict:
    """Render ``spec.sequences`` sequences from ``photos`` into ``out_dir``.

    Sequence ``k`` films photo ``k mod len(photos)`` (so every photo is used about equally) with
    a random downscale factor and :func:`random_path`, both drawn from ``(seed, k)``. Each
    sequence is written to a hidden folder and renamed into place when complete, and sequences
    already present are kept: an interrupted build, run again with the same photos and spec,
    finishes the same set. Photos too small for the frame at ``min_downscale`` are skipped with a
    warning.

    Args:
        photos: the photos, with their sources (:func:`vsvsrpp.tools.train.photos.find_photos`).
        out_dir: the output folder (created if missing).
        spec: what to build.
        progress: a progress bar on stderr.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ValueError: a bad ``spec``; ``out_dir`` holds a build with other settings or photos; no
            photo is large enough.
    """
    spec.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    usable = []
    for photo in photos:
        width, height = _photo_size(photo.path)
        if min(width, height) / spec.min_downscale < max(spec.height, spec.width) + 2 * EDGE:
            log.warning("skipping %s: %dx%d is too small for %dx%d frames at downscale %g", photo.path.name, width, height, spec.width, spec.height, spec.min_downscale)
            continue
        usable.append((photo, width, height))
    if not usable:
        raise ValueError(f"no photo is large enough for {spec.width}x{spec.height} frames at downscale {spec.min_downscale}")
    manifest = {
        "builder": f"vsvsrpp.tools.train.sequences v{BUILDER_VERSION}",
        "spec": asdict(spec),
        "photos": [{**p.record(), "sha256": sha256_of(p.path), "size": [w, h]} for p, w, h in usable],
        "sequences": [],
    }
    previous = out / MANIFEST
    if previous.is_file():
        old = json.loads(previous.read_text())
        same = old.get("builder") == manifest["builder"] and old.get("spec") == manifest["spec"]
        same = same and [p["sha256"] for p in old.get("photos", [])] == [p["sha256"] for p in manifest["photos"]]
        if not same:
            raise ValueError(f"{out} holds a build with other settings or photos; choose another folder or delete it")

    from tqdm import tqdm

    plans = []  # (photo index, record, camera path), in sequence order
    for k in range(spec.sequences):
        index = k % len(usable)
        photo, w, h = usable[index]
        rng = np.random.default_rng([spec.seed, k])
        largest = min(spec.max_downscale, min(w, h) / (max(spec.height, spec.width) * 1.25))
        factor = round(float(rng.uniform(spec.min_downscale, max(spec.min_downscale, largest))), 3)
        small_w, small_h = max(1, round(w / factor)), max(1, round(h / factor))
        path = random_path(rng, spec.frames, spec.height, spec.width, small_h, small_w, max_speed=spec.max_speed)
        if path is None:  # cannot happen for a usable photo; kept as a guard
            raise ValueError(f"{photo.path.name} at downscale {factor} is too small for the frame")
        record = {"name": f"{k:05d}_{photo.path.stem}", "photo": index, "downscale": factor, "camera": asdict(path)}
        manifest["sequences"].append(record)
        plans.append((index, record, path))
    _write_json(manifest, previous)  # the plan: a sequence exists once its folder does

    # Render photo by photo, so that each photo is decoded once.
    missing = sorted((p for p in plans if not (out / p[1]["name"]).is_dir()), key=lambda p: p[0])
    decoded: tuple[int, object] | None = None
    for index, record, path in tqdm(missing, desc="sequences", disable=not progress, file=None):
        if decoded is None or decoded[0] != index:
            decoded = (index, _load_photo(usable[index][0].path))
        frames = render(_shrink(decoded[1], record["downscale"]), path, spec.frames, spec.height, spec.width)
        name = record["name"]
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{name}-"))
        try:
            for t, frame in enumerate(frames):
                _write_png(frame, tmp / f"{t:08d}.png")
            os.replace(tmp, out / name)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return manifest
