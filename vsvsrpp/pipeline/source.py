"""Opening a source file and putting the network on it.

The source is decoded with BestSource, which also writes its frame times: a variable frame
rate source is refused (:mod:`vsvsrpp.pipeline.timing`), since writing it at a constant rate
would move frames in time. Its colours are read from its properties; untagged YUV of a
non-standard size is taken as BT.709 (a file must be written: the filter alone would refuse).
The network (:func:`vsvsrpp.plugin.entry.apply`, any family) converts it to RGB with those
colours and back to the output format.
"""

from __future__ import annotations

import logging
import shlex
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UsageError, VsvsrppError
from .timing import fastest_rate, read_timecodes, retiming_problem

log = logging.getLogger("vsvsrpp.pipeline")


def open_source(path: Path, check_rate: bool = True):
    """Decode ``path`` with BestSource.

    Args:
        path: a video file.
        check_rate: refuse a variable frame rate (one frame would move by half a frame
            interval or more at the reported constant rate).

    Returns:
        The source clip (``vs.VideoNode``).

    Raises:
        vsvsrpp.errors.VsvsrppError: it cannot be decoded, its format or size varies, or (with
            ``check_rate``) its frame rate varies: the error says how to convert it first.
    """
    import vapoursynth as vs

    with tempfile.TemporaryDirectory(prefix="vsvsrpp-") as tmp:
        timecodes = Path(tmp) / "timecodes.txt"
        try:
            src = vs.core.bs.VideoSource(str(path), timecodes=str(timecodes))
        except vs.Error as e:
            raise VsvsrppError(f"cannot decode {path}: {e}") from None
        times = read_timecodes(timecodes) if timecodes.is_file() else []
    if src.format is None or src.format.id == vs.NONE or src.width == 0 or src.height == 0:
        raise VsvsrppError(f"{path}: variable format or size is not supported")
    problem = retiming_problem(times, src.fps_num, src.fps_den) if check_rate else None
    if problem is not None:
        raise VsvsrppError(
            f"{path}: {problem}. Convert it to a constant frame rate first, e.g. "
            f"ffmpeg -i {shlex.quote(str(path))} -fps_mode cfr -r {fastest_rate(times)} -c:a copy cfr.mkv"
        )
    return src


def source_colors(src, path: Path):
    """The :class:`~vsvsrpp.plugin.colors.Colors` of a decoded source; untagged YUV of a size
    that decides no matrix is taken as BT.709 (logged once).

    Raises:
        vsvsrpp.errors.VsvsrppError: a matrix that cannot be converted (the message says what to do).
    """
    from ..plugin.colors import MATRIX_BT709, Colors

    try:
        colors = Colors.from_video(src, fallback_matrix=MATRIX_BT709)
    except ValueError as e:
        raise VsvsrppError(f"{path}: {e}") from None
    if colors.matrix_guessed:
        name = "BT.709" if colors.matrix == MATRIX_BT709 else "BT.601 (SMPTE 170M)"
        log.info("%s has no colour matrix tag; assuming %s for %dx%d", Path(path).name, name, src.width, src.height)
    return colors


def output_format(src_format):
    """The integer format the result is written in: the source's, 16-bit for float sources."""
    import vapoursynth as vs

    fmt = src_format
    if fmt.sample_type == vs.FLOAT:
        fmt = fmt.replace(sample_type=vs.INTEGER, bits_per_sample=16)
    return fmt


def run_network(clip, **kwargs):
    """Apply the network of the checkpoint, whatever its family (:func:`vsvsrpp.plugin.entry.apply`)."""
    from ..plugin import entry

    return entry.apply(clip, **kwargs)


def network_clip(path: Path, kwargs: dict[str, Any], fmt=None, check_rate: bool = True):
    """Decode ``path`` and run the network on it (:func:`run_network`, which converts formats).

    Args:
        path: the input video file (or an image sequence pattern, with ``check_rate=False``).
        kwargs: filter arguments (:attr:`vsvsrpp.pipeline.spec.RunSpec.filter_kwargs`).
        fmt: the output's VapourSynth format (``None``: :func:`output_format` of the source's).
        check_rate: refuse a variable frame rate source (see :func:`open_source`).

    Returns:
        ``(source clip, network output clip, Colors of the source)``.

    Raises:
        vsvsrpp.errors.VsvsrppError: a source that cannot be used or a network that cannot be
            set up (the filter's message).
    """
    src = open_source(path, check_rate)
    colors = source_colors(src, path)
    log.debug("source %s %dx%d %d frames %s/%s fps, %s", src.format.name, src.width, src.height, src.num_frames, src.fps_num, src.fps_den, colors)
    fixed: dict[str, Any] = {"output_format": (fmt or output_format(src.format)).id}
    fixed["dither"] = kwargs.get("dither", "error_diffusion")
    if colors.matrix_guessed:
        fixed["matrix"] = colors.matrix
    try:
        out = run_network(src, **{k: v for k, v in kwargs.items() if k != "dither"}, **fixed)
    except Exception as e:  # unknown model, unreadable checkpoint, bad device, bad window...
        log.debug("setting up the network failed", exc_info=True)
        message = f"cannot set up the network: {str(e).removeprefix('vsvsrpp: ')}"
        raise (UsageError(message) if isinstance(e, UsageError) else VsvsrppError(message)) from None
    return src, out, colors
