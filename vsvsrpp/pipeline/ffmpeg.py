"""Everything the package knows about ffmpeg and ffprobe, in one place: file URLs, probes (audio,
frame counts), the colour tags of a stream, pixel formats, and the encoding command line
(built with ffmpeg-python)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import OutputError, VsvsrppError
from .spec import Encoding

log = logging.getLogger("vsvsrpp.pipeline")

#: Container written to stdout when no format is given.
DEFAULT_STDOUT_FORMAT = "matroska"

# ITU-T H.273 codes -> ffmpeg option values.
COLORSPACE = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 14: "ictcp",
}  # fmt: skip
PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22",
}  # fmt: skip
TRANSFER = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
CHROMALOC = {0: "left", 1: "center", 2: "topleft", 3: "top", 4: "bottomleft", 5: "bottom"}


def file_url(path: Path | str) -> str:
    """``path`` as an ffmpeg URL that cannot be mistaken for an option or a protocol."""
    return "file:" + str(Path(path).absolute())


def color_args(colors, subsampled: bool = True) -> dict[str, str]:
    """ffmpeg output options tagging a stream with ``colors`` (a
    :class:`vsvsrpp.plugin.colors.Colors`): ``colorspace``, ``color_range``,
    ``chroma_sample_location`` (subsampled YUV), ``color_primaries``, ``color_trc``.

    RGB gets no ``colorspace``/``color_range``: ffmpeg may convert it to YUV for encoders
    without RGB support, and the tags would then be wrong.
    """
    from ..plugin.colors import RANGE_FULL  # (VapourSynth's enums: imported only when tagging)

    family = getattr(colors.family, "name", str(colors.family))
    args: dict[str, str] = {}
    if family != "RGB":
        if colors.matrix in COLORSPACE:
            args["colorspace"] = COLORSPACE[colors.matrix]
        args["color_range"] = "pc" if colors.range == RANGE_FULL else "tv"
        if subsampled and family == "YUV":
            args["chroma_sample_location"] = CHROMALOC[colors.chromaloc]
    if colors.primaries is not None:
        args["color_primaries"] = PRIMARIES[colors.primaries]
    if colors.transfer is not None:
        args["color_trc"] = TRANSFER[colors.transfer]
    return args


def clip_color_args(clip, colors) -> dict[str, str]:
    """:func:`color_args` for an output clip of the network (chroma location only where its
    format is subsampled)."""
    fmt = clip.format
    return color_args(colors, subsampled=bool(fmt.subsampling_w or fmt.subsampling_h) and fmt.color_family.name == "YUV")


def has_audio(path: Path) -> bool:
    """Whether ffprobe finds an audio stream in ``path`` (False, with a warning, when ffprobe
    fails or is missing: the audio is then not copied)."""
    import ffmpeg

    try:
        info = ffmpeg.probe(file_url(path))
    except ffmpeg.Error as e:
        log.warning("ffprobe failed on %s, audio is not copied: %s", path, (e.stderr or b"").decode("utf-8", "replace").strip())
        return False
    except FileNotFoundError:
        log.warning("ffprobe not found, audio is not copied")
        return False
    return any(s.get("codec_type") == "audio" for s in info.get("streams", []))


def count_frames(path: Path) -> int:
    """Video frames (packets of the first video stream) in a media file, counted by ffprobe.

    Raises:
        vsvsrpp.errors.OutputError: ffprobe failed or found no video stream.
    """
    import ffmpeg

    try:
        info = ffmpeg.probe(file_url(path), select_streams="v:0", count_packets=None)
    except ffmpeg.Error as e:
        raise OutputError(f"ffprobe cannot read {path}: {(e.stderr or b'').decode('utf-8', 'replace').strip()}") from None
    streams = info.get("streams") or []
    if not streams or "nb_read_packets" not in streams[0]:
        raise OutputError(f"{path} has no video stream")
    return int(streams[0]["nb_read_packets"])


def rgb_pix_fmt(bits: int) -> str:
    """ffmpeg's planar GBR pixel format for ``bits`` per sample (VapourSynth writes >8 bit as
    16-bit little-endian words).

    Raises:
        vsvsrpp.errors.VsvsrppError: for a depth ffmpeg has no planar GBR format of.
    """
    if bits == 8:
        return "gbrp"
    if bits in (9, 10, 12, 14, 16):
        return f"gbrp{bits}le"
    raise VsvsrppError(f"RGB sources with {bits} bits per sample are not supported")


def for_ffmpeg(clip):
    """``clip`` as ffmpeg reads it: planes G,B,R for RGB (VapourSynth's are R,G,B)."""
    import vapoursynth as vs

    if clip.format.color_family == vs.RGB:
        clip = vs.core.std.ShufflePlanes(clip, [1, 2, 0], vs.RGB)
    return clip


def encode_command(clip, tags: dict[str, str], encoding: Encoding, target: str, audio_from: Path | None = None,
                   container: str | None = None, verbose: bool = False) -> list[str]:  # fmt: skip
    """The ffmpeg command line encoding ``clip`` (fed on stdin as Y4M, or raw planar GBR for
    RGB) to ``target`` (a :func:`file_url` or ``"pipe:1"``).

    Args:
        clip: the clip as :func:`for_ffmpeg` gives it (its format, size and rate are read).
        tags: colour tags (:func:`color_args`).
        encoding: encoder settings.
        target: where ffmpeg writes.
        audio_from: a file whose audio streams are copied, or None.
        container: ffmpeg's format name; None guesses it from ``target`` (``matroska`` on stdout).
        verbose: ffmpeg's warnings too (else errors only).
    """
    import ffmpeg
    import vapoursynth as vs

    fps = f"{clip.fps_num}/{clip.fps_den}"
    fmt = clip.format
    if fmt.color_family == vs.RGB:
        video_in = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt=rgb_pix_fmt(fmt.bits_per_sample), s=f"{clip.width}x{clip.height}", framerate=fps)
    else:
        video_in = ffmpeg.input("pipe:0", format="yuv4mpegpipe")
    streams = [video_in["v"]]
    out_opts: dict[str, Any] = {"vcodec": encoding.codec, "r": fps}
    for key in ("crf", "preset", "pix_fmt"):
        if getattr(encoding, key) not in (None, ""):
            out_opts[key] = getattr(encoding, key)
    out_opts.update(tags)
    if audio_from is not None:
        streams.append(ffmpeg.input(file_url(audio_from))["a"])
        out_opts["acodec"] = "copy"
    if container:
        out_opts["format"] = container
    elif target == "pipe:1":
        out_opts["format"] = DEFAULT_STDOUT_FORMAT
    return command(ffmpeg.output(*streams, target, **out_opts), verbose)


def command(node, verbose: bool = False) -> list[str]:
    """The ffmpeg command line of an ffmpeg-python output ``node``: quiet (errors only, or
    warnings too with ``verbose``), overwriting, and failing on the first write error."""
    import ffmpeg

    # -xerror: ffmpeg otherwise exits 0 after a failed write (a full disk: a cut-short file
    # reported as success; a FIFO whose reader left: the run goes on to the end).
    return ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "warning" if verbose else "error", "-xerror", "-y", *ffmpeg.get_args(node)]


def tag_flags(tags: dict[str, str]) -> list[str]:
    """``tags`` (:func:`color_args`) as ffmpeg command-line words: ``["-colorspace", "bt709", ...]``."""
    return [word for key, value in tags.items() for word in (f"-{key}", value)]
