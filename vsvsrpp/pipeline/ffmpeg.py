"""Everything the package knows about ffmpeg and ffprobe, in one place: file URLs, probes (what an
output keeps of its source: audio, start offset, sample aspect ratio; frame counts), the colour
tags of a stream, pixel formats, and the encoding command line (built with ffmpeg-python)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction
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


@dataclass(frozen=True)
class SourceStreams:
    """What an output keeps of its source besides the frames (:func:`probe_source`).

    Attributes:
        path: the source file.
        audio: it has audio streams (they are copied).
        video_delay: seconds from the start of what the copied audio keeps (the file's start) to
            the first video frame; the output's video starts that much later too.
        sar: the video's sample (pixel) aspect ratio ``(num, den)``, or None for square pixels
            or none given.
    """

    path: Path
    audio: bool = False
    video_delay: float = 0.0
    sar: tuple[int, int] | None = None


def probe_source(path: Path) -> SourceStreams:
    """:class:`SourceStreams` of ``path``, read with ffprobe (with a warning and nothing kept
    when ffprobe fails or is missing: the audio is then not copied)."""
    import ffmpeg

    try:
        info = ffmpeg.probe(file_url(path))
    except ffmpeg.Error as e:
        log.warning("ffprobe failed on %s, audio is not copied: %s", path, (e.stderr or b"").decode("utf-8", "replace").strip())
        return SourceStreams(Path(path))
    except FileNotFoundError:
        log.warning("ffprobe not found, audio is not copied")
        return SourceStreams(Path(path))
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), {})
    # The first decoded video frame: its time and aspect ratio (a Matroska stream's start_time
    # is only ffprobe's estimate, often the file's start).
    frame = _first_frame(path)
    try:
        delay = max(0.0, float(frame.get("best_effort_timestamp_time", video.get("start_time"))) - float(info["format"]["start_time"]))
    except (KeyError, TypeError, ValueError):
        delay = 0.0
    try:
        sar = Fraction(*map(int, (frame.get("sample_aspect_ratio") or video["sample_aspect_ratio"]).split(":")))
    except (KeyError, AttributeError, TypeError, ValueError, ZeroDivisionError):
        sar = Fraction(1)
    return SourceStreams(
        Path(path),
        audio=any(s.get("codec_type") == "audio" for s in streams),
        video_delay=delay,
        sar=None if sar in (0, 1) else (sar.numerator, sar.denominator),
    )


def _first_frame(path: Path) -> dict[str, Any]:
    """ffprobe's description of the first decoded frame of the first video stream ({} if none)."""
    import ffmpeg

    try:
        info = ffmpeg.probe(file_url(path), select_streams="v:0", show_frames=None, read_intervals="%+#1",
                            show_entries="frame=best_effort_timestamp_time,sample_aspect_ratio")  # fmt: skip
    except ffmpeg.Error:
        return {}
    return next(iter(info.get("frames") or []), {})


def video_input_options(source: SourceStreams | None, fps: Fraction) -> dict[str, Any]:
    """ffmpeg input options of the video fed at ``fps`` (frames from 0 s) that keep its start
    offset to the copied audio of ``source``, to the nearest frame: ``itsoffset``."""
    if source is None or not source.audio or round(source.video_delay * fps) == 0:
        return {}
    return {"itsoffset": f"{float(round(source.video_delay * fps) / fps):.6f}"}


def video_output_options(source: SourceStreams | None, input_options: dict[str, Any], size: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """ffmpeg output options of a video encoded from frames fed with ``input_options``
    (:func:`video_input_options`): with a start offset, its frames as they are (``fps_mode
    passthrough``: a constant-rate muxer such as MP4's would otherwise fill the offset with
    copies of the first frame); with ``size`` (the video's ``(width, height)``), ``source``'s
    sample aspect ratio (``aspect``: the display aspect ratio that gives it). Without ``size``
    the frames' own aspect ratio is kept (frames decoded from segments that carry it)."""
    opts: dict[str, Any] = {}
    if source is not None and source.sar is not None and size is not None:
        opts["aspect"] = f"{size[0] * source.sar[0]}:{size[1] * source.sar[1]}"
    if "itsoffset" in input_options:
        opts["fps_mode"] = "passthrough"
    return opts


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


#: Chroma subsamplings (log2 horizontal, log2 vertical) that ffmpeg's Y4M reader takes.
Y4M_SUBSAMPLINGS = {(0, 0), (1, 0), (1, 1), (2, 0)}
#: ffmpeg's planar YUV formats of the other subsamplings, by bits per sample (fed as raw video).
RAW_YUV = {(2, 2): {8: "yuv410p"}, (0, 1): {8: "yuv440p", 10: "yuv440p10le", 12: "yuv440p12le"}}


def raw_pix_fmt(fmt) -> str | None:
    """ffmpeg's pixel format for frames of the VapourSynth format ``fmt`` fed as raw video, or
    None for those fed as Y4M (GRAY, and YUV of the subsamplings Y4M carries). Called before
    any frame is asked for, so a format ffmpeg cannot take fails before the network runs.

    Raises:
        vsvsrpp.errors.VsvsrppError: ffmpeg takes ``fmt`` neither way (the message says what to do).
    """
    import vapoursynth as vs

    if fmt.color_family == vs.RGB:
        return rgb_pix_fmt(fmt.bits_per_sample)
    subsampling = (fmt.subsampling_w, fmt.subsampling_h)
    if fmt.color_family == vs.GRAY or subsampling in Y4M_SUBSAMPLINGS:
        return None
    name = RAW_YUV.get(subsampling, {}).get(fmt.bits_per_sample)
    if name is None:
        raise VsvsrppError(f"ffmpeg cannot take {fmt.name} frames; convert the source to another format first (e.g. ffmpeg -pix_fmt yuv420p)")
    return name


def for_ffmpeg(clip):
    """``clip`` as ffmpeg reads it: planes G,B,R for RGB (VapourSynth's are R,G,B)."""
    import vapoursynth as vs

    if clip.format.color_family == vs.RGB:
        clip = vs.core.std.ShufflePlanes(clip, [1, 2, 0], vs.RGB)
    return clip


#: How RGB frames are converted for an encoder that takes only YUV (libx264...): with this
#: matrix and range, which the output is tagged with (ffmpeg's own conversion uses BT.601 and
#: tags no matrix, so players guess one).
RGB_TO_YUV = {"colorspace": "bt709", "color_range": "tv"}


@functools.lru_cache(maxsize=None)
def encoder_pix_fmts(codec: str) -> tuple[str, ...]:
    """The pixel formats ffmpeg's encoder ``codec`` takes (empty when ffmpeg does not say:
    an unknown encoder, ffmpeg missing)."""
    import subprocess

    try:
        text = subprocess.run(["ffmpeg", "-hide_banner", "-h", f"encoder={codec}"], capture_output=True, text=True).stdout
    except OSError:
        return ()
    line = next((ln for ln in text.splitlines() if "Supported pixel formats:" in ln), "")
    return tuple(line.split(":", 1)[1].split()) if line else ()


def is_rgb_pix_fmt(name: str) -> bool:
    """Whether ffmpeg's pixel format ``name`` is RGB (``gbrp``, ``rgb24``, ``bgr0``...)."""
    return any(k in name for k in ("rgb", "bgr", "gbr"))


def encoder_options(video, encoding: Encoding, rgb: bool):
    """The encoder's output options (``vcodec``, ``crf``, ``preset``, ``pix_fmt``) for the
    ffmpeg-python stream ``video``; RGB frames (``rgb``) that end as YUV (``encoding``'s
    ``pix_fmt``, or an encoder without RGB formats) are converted with :data:`RGB_TO_YUV` and
    tagged with it. Returns ``(video, options)``."""
    opts: dict[str, Any] = {"vcodec": encoding.codec}
    for key in ("crf", "preset", "pix_fmt"):
        if getattr(encoding, key) not in (None, ""):
            opts[key] = getattr(encoding, key)
    if rgb:
        formats = (encoding.pix_fmt,) if encoding.pix_fmt else encoder_pix_fmts(encoding.codec)
        if formats and not any(map(is_rgb_pix_fmt, formats)):
            video = video.filter("scale", out_color_matrix=RGB_TO_YUV["colorspace"], out_range=RGB_TO_YUV["color_range"])
            opts.update(RGB_TO_YUV)
    return video, opts


def encode_command(clip, tags: dict[str, str], encoding: Encoding, target: str, source: SourceStreams | None = None,
                   container: str | None = None, verbose: bool = False) -> list[str]:  # fmt: skip
    """The ffmpeg command line encoding ``clip`` (fed on stdin as Y4M, or as raw video in the
    format :func:`raw_pix_fmt` names) to ``target`` (a :func:`file_url` or ``"pipe:1"``).

    Args:
        clip: the clip as :func:`for_ffmpeg` gives it (its format, size and rate are read).
        tags: colour tags (:func:`color_args`).
        encoding: encoder settings.
        target: where ffmpeg writes.
        source: what the output keeps of its source (:func:`probe_source`): its audio streams
            (copied), the start offset between them and the video, the sample aspect ratio;
            None keeps nothing.
        container: ffmpeg's format name; None guesses it from ``target`` (``matroska`` on stdout).
        verbose: ffmpeg's warnings too (else errors only).

    Raises:
        vsvsrpp.errors.VsvsrppError: ffmpeg cannot take the clip's format (:func:`raw_pix_fmt`).
    """
    import ffmpeg
    import vapoursynth as vs

    fps = f"{clip.fps_num}/{clip.fps_den}"
    fmt = clip.format
    in_opts = video_input_options(source, Fraction(clip.fps_num, clip.fps_den))
    raw = raw_pix_fmt(fmt)
    if raw is not None:
        video_in = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt=raw, s=f"{clip.width}x{clip.height}", framerate=fps, **in_opts)
    else:
        video_in = ffmpeg.input("pipe:0", format="yuv4mpegpipe", **in_opts)
    video, out_opts = encoder_options(video_in["v"], encoding, rgb=fmt.color_family == vs.RGB)
    streams = [video]
    out_opts |= {"r": fps, **video_output_options(source, in_opts, (clip.width, clip.height)), **tags}
    if source is not None and source.audio:
        streams.append(ffmpeg.input(file_url(source.path))["a"])
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
