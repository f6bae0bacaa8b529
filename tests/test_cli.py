"""Tests of the command line interface (vsvsrpp.cli).

Most end-to-end tests replace the network with a bicubic 4x stand-in (``pipeline.source.run_network``)
so they do not depend on the filter; those under ``real filter`` run the actual filter with tiny
generated checkpoints of each family.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import ffmpeg
import pytest
import vapoursynth as vs
from hypothesis import given
from hypothesis import strategies as st

import media
import vsvsrpp
from conftest import make_checkpoint
from vsvsrpp import cli
from vsvsrpp.arch.basicvsr import BasicVSRConfig
from vsvsrpp.errors import VsvsrppError
from vsvsrpp.pipeline import encode, run, source
from vsvsrpp.pipeline import ffmpeg as pipeline_ffmpeg
from vsvsrpp.cli.options import run_kwargs
from vsvsrpp.plugin.colors import Colors, guess_matrix, source_chromaloc, source_range

core = vs.core
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Tiny input videos (6 frames, 96x64, 24 fps) generated with ffmpeg."""
    d = tmp_path_factory.mktemp("videos")
    src = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24"]
    v = {
        # untagged 4:2:0 H.264, no audio
        "plain": d / "plain.mp4",
        # tagged BT.709 limited range, with an AAC track
        "audio": d / "audio.mp4",
        # lossless RGB
        "rgb": d / "rgb.mkv",
    }
    _ffmpeg(*src, "-frames:v", "6", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "10", str(v["plain"]))
    _ffmpeg(
        *src, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-frames:v", "6", "-t", "0.25", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "10",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        "-c:a", "aac", str(v["audio"]),
    )  # fmt: skip
    _ffmpeg(*src, "-frames:v", "6", "-c:v", "ffv1", "-pix_fmt", "gbrp", str(v["rgb"]))
    return v


#: Arguments the CLI always passes (format handling), as opposed to the user's network options.
FORMAT_ARGS = ("output_format", "dither", "matrix")


def fake_basicvsrpp(clip, model="reds4", *, weights=None, device=None, window=None, overlap=None,
                    output_format=None, dither="none", matrix=None):
    """Stand-in for vsvsrpp.BasicVSRPP: any format in, 4x ``output_format`` out."""
    return core.resize.Bicubic(clip, clip.width * 4, clip.height * 4, format=output_format or clip.format.id,
                               dither_type=dither, matrix_in=matrix)


@pytest.fixture
def stand_in(monkeypatch):
    """Replace the network the CLI applies (pipeline.source.run_network); records the calls."""
    calls = []

    def fake(clip, *args, **kwargs):
        calls.append((args, {k: v for k, v in kwargs.items() if k not in FORMAT_ARGS}))
        return fake_basicvsrpp(clip, *args, **kwargs)

    monkeypatch.setattr(source, "run_network", fake)
    return calls


def probe_video(path: Path) -> dict:
    """ffprobe of ``path`` with frames counted."""
    return ffmpeg.probe(str(path), count_frames=None)


def video_stream(info: dict) -> dict:
    return next(s for s in info["streams"] if s["codec_type"] == "video")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial" in p.name)


# ---------------------------------------------------------------------------------------------
# argument parsing and validation
# ---------------------------------------------------------------------------------------------


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert vsvsrpp.__version__ in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--window", "0"], "--window: expected an integer >= 1, got 0"),
        (["--window", "x"], "--window: expected an integer >= 1, got 'x'"),
        (["--overlap", "-1"], "--overlap: expected an integer >= 0, got -1"),
        (["--precision", "fp64"], "--precision: expected one of auto, fp32, fp16, bf16, got 'fp64'"),
        (["--exact-tiles", "maybe"], "--exact-tiles: expected yes or no, got 'maybe'"),
        (["--tile", "8"], "--tile: expected an integer >= 16, got 8"),
        (["--model", "reds4", "--weights", "w.pth"], "not allowed with"),
        (["--weights", "/nonexistent/w.pth"], "weights file not found"),
    ],
)
def test_upscale_option_errors(videos, tmp_path, capsys, stand_in, extra, message):
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not stand_in


def test_missing_input(tmp_path, capsys):
    assert cli.main(["upscale", str(tmp_path / "nope.mp4"), str(tmp_path / "out.mkv")]) == 2
    assert "input file not found" in capsys.readouterr().err


def test_missing_output_directory(videos, tmp_path, capsys):
    assert cli.main(["upscale", str(videos["plain"]), str(tmp_path / "no" / "such" / "out.mkv")]) == 2
    assert "output directory does not exist" in capsys.readouterr().err


def test_output_without_extension_needs_format(videos, tmp_path, capsys):
    assert cli.main(["upscale", str(videos["plain"]), str(tmp_path / "out")]) == 2
    assert "--format" in capsys.readouterr().err


def test_output_must_not_be_the_input(tmp_path, capsys):
    inp = tmp_path / "same.mkv"
    inp.write_bytes(b"x")
    assert cli.main(["upscale", str(inp), str(inp)]) == 2
    assert "overwrite the input" in capsys.readouterr().err
    assert inp.read_bytes() == b"x"


def test_run_kwargs_only_passes_given_options():
    parser = cli.build_parser()
    args = parser.parse_args(["upscale", "in.mp4", "out.mkv"])
    assert run_kwargs(args) == {}
    args = parser.parse_args(["upscale", "in.mp4", "out.mkv", "--weights", "w.pth", "--device", "cpu", "--window", "8", "--overlap", "2"])
    assert run_kwargs(args) == {"weights": Path("w.pth"), "device": "cpu", "window": 8, "overlap": 2}
    args = parser.parse_args(["upscale", "in.mp4", "out.mkv", "--model", "realbasicvsr", "--refine-threshold", "3", "--cleaning-passes", "2"])
    assert run_kwargs(args) == {"model": "realbasicvsr", "refine_threshold": 3.0, "cleaning_passes": 2}


@pytest.mark.parametrize(("extra", "message"), [(["--refine-threshold", "-1"], "refine_threshold must be a number >= 0"),
                                                (["--cleaning-passes", "4"], "cleaning_passes must be from 1 to 3")])
def test_family_option_errors(videos, tmp_path, capsys, stand_in, extra, message):
    assert cli.main(["upscale", str(videos["plain"]), str(tmp_path / "out.mkv"), *extra]) == 2
    assert message in capsys.readouterr().err and not stand_in


# ---------------------------------------------------------------------------------------------
# colour helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "size", "expected"),
    [
        ({"_Matrix": 1}, (96, 64), (1, False)),
        ({"_Matrix": 9}, (96, 64), (9, False)),
        ({"_Matrix": 6}, (1920, 1080), (6, False)),
        ({}, (96, 64), (6, True)),
        ({"_Matrix": 2}, (720, 576), (6, True)),
        ({"_Matrix": 2}, (1024, 576), (6, True)),
        ({"_Matrix": 2}, (1025, 576), (1, True)),  # the CLI's fallback for in-between sizes
        ({}, (720, 577), (1, True)),
        ({}, (1920, 1080), (1, True)),
    ],
)
def test_cli_matrix(props, size, expected):
    colors = Colors.from_props(props, vs.YUV, *size, fallback_matrix=1)
    assert (colors.matrix, colors.matrix_guessed) == expected


def test_filter_matrix_refuses_in_between_sizes_without_fallback():
    with pytest.raises(ValueError, match="1025x576 is not a standard SD or HD size; pass matrix=1"):
        Colors.from_props({}, vs.YUV, 1025, 576)
    assert Colors.from_props({}, vs.YUV, 1025, 576, matrix=9).matrix == 9


def test_rgb_and_gray_have_no_matrix():
    assert Colors.from_props({"_Matrix": 0}, vs.RGB, 96, 64).matrix is None
    assert Colors.from_props({}, vs.RGB, 4000, 3000).range == 1
    assert Colors.from_props({"_Matrix": 5}, vs.GRAY, 4000, 3000).matrix is None


@given(st.integers(1, 8192), st.integers(1, 8192))
def test_guess_matrix_by_size(w, h):
    expected = 6 if w <= 1024 and h <= 576 else (1 if w >= 1280 or h >= 720 else None)
    assert guess_matrix(w, h) == expected


@pytest.mark.parametrize(
    ("props", "is_rgb", "expected"),
    [
        ({"_Range": 0}, False, 0),
        ({"_Range": 1}, False, 1),
        ({"_Range": vs.RANGE_FULL}, False, 1),
        ({"_ColorRange": 0}, False, 1),  # legacy property: 0 = full
        ({"_ColorRange": 1}, False, 0),  # legacy property: 1 = limited
        ({"_Range": 0, "_ColorRange": 0}, False, 0),  # _Range wins
        ({}, False, 0),
        ({}, True, 1),
        ({"_Range": 0}, True, 0),
    ],
)
def test_source_range(props, is_rgb, expected):
    assert source_range(props, is_rgb) == expected


@pytest.mark.parametrize(("props", "expected"), [({"_ChromaLocation": 2}, 2), ({"_ChromaLocation": 1}, 1), ({}, 0), ({"_ChromaLocation": 99}, 0)])
def test_source_chromaloc(props, expected):
    assert source_chromaloc(props) == expected


def test_colors_and_ffmpeg_color_args():
    yuv = Colors.from_props({"_Matrix": 1, "_Range": 1, "_ChromaLocation": 2, "_Primaries": 1, "_Transfer": 2}, vs.YUV, 96, 64)
    assert (yuv.matrix, yuv.range, yuv.chromaloc, yuv.matrix_guessed) == (1, 1, 2, False)
    assert pipeline_ffmpeg.color_args(yuv) == {"colorspace": "bt709", "color_range": "pc", "chroma_sample_location": "topleft", "color_primaries": "bt709"}
    untagged = Colors.from_props({}, vs.YUV, 96, 64)
    assert untagged.matrix_guessed and (untagged.matrix, untagged.range, untagged.chromaloc) == (6, 0, 0)
    assert pipeline_ffmpeg.color_args(untagged, subsampled=False) == {"colorspace": "smpte170m", "color_range": "tv"}
    rgb = Colors.from_props({"_Matrix": 0, "_Transfer": 13}, vs.RGB, 96, 64)
    assert (rgb.matrix, rgb.range) == (None, 1)
    assert pipeline_ffmpeg.color_args(rgb) == {"color_trc": "iec61966-2-1"}


def test_rgb_pix_fmt():
    assert pipeline_ffmpeg.rgb_pix_fmt(8) == "gbrp"
    assert pipeline_ffmpeg.rgb_pix_fmt(10) == "gbrp10le"
    assert pipeline_ffmpeg.rgb_pix_fmt(16) == "gbrp16le"
    with pytest.raises(VsvsrppError):
        pipeline_ffmpeg.rgb_pix_fmt(11)


def test_partial_path_is_hidden_sibling_with_same_suffix(tmp_path):
    p = encode.partial_path(tmp_path / "movie.mkv")
    assert p.parent == tmp_path and p.name.startswith(".movie.partial-") and p.suffix == ".mkv"
    assert p != encode.partial_path(tmp_path / "movie.mkv")


# ---------------------------------------------------------------------------------------------
# upscale end to end with the stand-in network
# ---------------------------------------------------------------------------------------------


def test_upscale_plain(videos, tmp_path, stand_in, capsys):
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--crf", "30", "--preset", "ultrafast"]) == 0
    err = capsys.readouterr().err
    assert "assuming BT.601" in err  # untagged SD source
    assert stand_in == [((), {})]  # no options given -> none passed on
    info = probe_video(out)
    v = video_stream(info)
    assert (int(v["width"]), int(v["height"])) == (384, 256)
    assert int(v["nb_read_frames"]) == 6
    assert v["pix_fmt"] == "yuv420p" and v["codec_name"] == "h264"
    assert v["color_space"] == "smpte170m" and v["color_range"] == "tv"
    assert v["r_frame_rate"] == "24/1"
    assert not any(s["codec_type"] == "audio" for s in info["streams"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]


def test_upscale_copies_audio_and_colour_tags(videos, tmp_path, stand_in):
    out = tmp_path / "out.mp4"
    args = ["upscale", str(videos["audio"]), str(out), "--preset", "ultrafast", "--device", "cpu", "--window", "3", "--overlap", "1"]
    assert cli.main(args) == 0
    assert stand_in == [((), {"device": "cpu", "window": 3, "overlap": 1})]
    info = probe_video(out)
    v = video_stream(info)
    assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (384, 256, 6)
    assert (v["color_space"], v["color_primaries"], v["color_transfer"], v["color_range"]) == ("bt709", "bt709", "bt709", "tv")
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert len(audio) == 1 and audio[0]["codec_name"] == "aac"
    src_audio = next(s for s in ffmpeg.probe(str(videos["audio"]))["streams"] if s["codec_type"] == "audio")
    assert audio[0]["sample_rate"] == src_audio["sample_rate"]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_upscale_keeps_the_start_offset_and_the_sample_aspect_ratio(tmp_path, stand_in, suffix):
    """Issue 26, items 2-3: a source whose video starts 1.023 s after its audio, with SAR 4:3."""
    src = media.late_anamorphic_source(tmp_path)
    assert media.video_delay(src) == pytest.approx(media.VIDEO_DELAY, abs=0.001)
    out = tmp_path / f"out{suffix}"
    assert cli.main(["upscale", str(src), str(out), "--preset", "ultrafast", "--no-progress"]) == 0
    got = media.streams(out)
    assert int(got["video"]["nb_read_frames"]) == 6 and int(got["video"]["width"]) == 384
    assert media.video_delay(out) == pytest.approx(media.VIDEO_DELAY, abs=0.5 / 24)  # to the nearest frame
    assert got["video"]["sample_aspect_ratio"] == "4:3"


def test_upscale_rgb_stays_rgb(videos, tmp_path, stand_in):
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["rgb"]), str(out), "--codec", "ffv1", "--no-progress"]) == 0
    v = video_stream(probe_video(out))
    assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (384, 256, 6)
    assert v["pix_fmt"] in ("gbrp", "bgr0", "rgb24", "bgra")
    # Channel order and values survive: compare with the stand-in applied directly.
    expect = fake_basicvsrpp(core.bs.VideoSource(str(videos["rgb"])), output_format=vs.RGB24)
    got = core.bs.VideoSource(str(out))
    got = core.resize.Point(got, format=vs.RGB24)
    fe, fg = expect.get_frame(2), got.get_frame(2)
    for p in range(3):
        diff = sum(abs(int(fe[p][y, x]) - int(fg[p][y, x])) for y in range(0, 256, 17) for x in range(0, 384, 23))
        assert diff / (16 * 17) <= 1.0


def test_rgb_into_a_yuv_encoder_is_tagged_with_the_matrix_it_was_converted_with(videos, tmp_path, stand_in):
    """Issue 26, item 6: libx264 takes no RGB; the output is YUV tagged with the matrix that
    made it, so that reading it back by its tags gives the network's RGB."""
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["rgb"]), str(out), "--crf", "0", "--preset", "ultrafast", "--no-progress"]) == 0
    v = video_stream(probe_video(out))
    assert v["pix_fmt"] == "yuv444p" and (v.get("color_space"), v.get("color_range")) == ("bt709", "tv")
    expect = fake_basicvsrpp(core.bs.VideoSource(str(videos["rgb"])), output_format=vs.RGB24)
    got = core.resize.Point(core.bs.VideoSource(str(out)), format=vs.RGB24)  # by the file's tags
    fe, fg = expect.get_frame(2), got.get_frame(2)
    for p in range(3):
        diff = sum(abs(int(fe[p][y, x]) - int(fg[p][y, x])) for y in range(0, 256, 17) for x in range(0, 384, 23))
        assert diff / (16 * 17) <= 1.5


@pytest.mark.parametrize("pix_fmt", ["yuv410p", "yuv440p"])
def test_subsamplings_y4m_cannot_carry_are_fed_raw(tmp_path, stand_in, pix_fmt):
    """Issue 26, item 10: ffmpeg's Y4M reader takes no 4:1:0 or 4:4:0, and the run failed only
    once the first pass was done; these go to ffmpeg as raw video in their own format."""
    src = tmp_path / f"{pix_fmt}.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-frames:v", "6", "-c:v", "ffv1", "-pix_fmt", pix_fmt, str(src))
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(src), str(out), "--codec", "ffv1", "--no-progress"]) == 0
    v = video_stream(probe_video(out))
    assert (v["pix_fmt"], int(v["width"]), int(v["nb_read_frames"])) == (pix_fmt, 384, 6)


def test_a_format_ffmpeg_cannot_take_is_refused_before_the_pass(videos, tmp_path, monkeypatch, capsys):
    """A format neither Y4M nor ffmpeg's raw formats carry (4:1:0 at 10 bits) is refused before
    any frame is asked for."""
    asked = []

    def to_410p10(clip, **kwargs):
        fmt = core.query_video_format(vs.YUV, vs.INTEGER, 10, 2, 2)
        out = core.resize.Bicubic(clip, clip.width * 4, clip.height * 4, format=fmt.id)
        return core.std.ModifyFrame(out, out, lambda n, f: asked.append(n) or f)

    monkeypatch.setattr(source, "run_network", to_410p10)
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vsvsrpp: error: ffmpeg cannot take YUV410P10 frames; convert the source to another format first")
    assert asked == [] and list(tmp_path.iterdir()) == []


def test_upscale_odd_file_names(videos, tmp_path, stand_in):
    # ':' would make ffmpeg look for a protocol, spaces must survive, '-' must not become an option.
    inp = tmp_path / "in put:1.mp4"
    inp.write_bytes(videos["audio"].read_bytes())
    out = tmp_path / "-out file:2.mp4"
    assert cli.main(["upscale", str(inp), str(out), "--preset", "ultrafast", "--no-progress"]) == 0
    info = probe_video(out)
    assert int(video_stream(info)["nb_read_frames"]) == 6
    assert any(s["codec_type"] == "audio" for s in info["streams"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([inp.name, out.name])


def test_upscale_pix_fmt_option(videos, tmp_path, stand_in):
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--pix-fmt", "yuv444p", "--preset", "ultrafast", "--no-progress"]) == 0
    assert video_stream(probe_video(out))["pix_fmt"] == "yuv444p"


def test_upscale_refuses_to_replace_a_file_without_overwrite(videos, tmp_path, stand_in, capsys):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"old")
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--no-progress"]) == 2
    assert "already exists; give --overwrite (-y)" in capsys.readouterr().err
    assert out.read_bytes() == b"old" and stand_in == []


@pytest.mark.parametrize("flag", ["--overwrite", "-y"])
def test_upscale_overwrites_existing_output_atomically(videos, tmp_path, stand_in, flag):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"old")
    assert cli.main(["upscale", str(videos["plain"]), str(out), flag, "--preset", "ultrafast", "--no-progress"]) == 0
    assert int(video_stream(probe_video(out))["nb_read_frames"]) == 6
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# failure paths: no output, no leftovers, exit code 1
# ---------------------------------------------------------------------------------------------


def test_bogus_codec_fails_cleanly(videos, tmp_path, stand_in, capsys):
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--codec", "no_such_codec", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "ffmpeg failed" in err and "no_such_codec" in err  # ffmpeg's own message is included
    assert list(tmp_path.iterdir()) == []


def test_network_setup_error_fails_cleanly(videos, tmp_path, monkeypatch, capsys):
    def broken(clip, **kwargs):
        raise ValueError("unknown model 'nope'")

    monkeypatch.setattr(source, "run_network", broken)
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--model", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_error_mid_stream_removes_partial_file(videos, tmp_path, monkeypatch, capsys):
    def fails_on_frame_3(clip, **kwargs):
        up = fake_basicvsrpp(clip, output_format=kwargs["output_format"])

        def frame(n, f):
            if n == 3:
                raise RuntimeError("simulated network failure")
            return f

        return core.std.ModifyFrame(up, up, frame)

    monkeypatch.setattr(source, "run_network", fails_on_frame_3)
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--preset", "ultrafast"]) == 1
    assert "simulated network failure" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_removes_partial_file(videos, tmp_path, stand_in, monkeypatch, capsys, sig, code):
    real_prepare = run.prepare_clip

    class Interrupting:
        """Delegates to the real clip, but the signal arrives after some frames were written."""

        def __init__(self, clip):
            self._clip = clip

        def __getattr__(self, name):
            return getattr(self._clip, name)

        def output(self, fileobj, **kwargs):
            core.std.Trim(self._clip, 0, 2).output(fileobj, **kwargs)
            fileobj.flush()
            os.kill(os.getpid(), sig)
            time.sleep(0.5)
            self._clip.output(fileobj, **kwargs)  # ffmpeg is gone by now: a broken pipe

    def prepare(spec, path):
        clip, tags = real_prepare(spec, path)
        return Interrupting(clip), tags

    monkeypatch.setattr(run, "prepare_clip", prepare)
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--preset", "ultrafast"]) == code
    assert f"vsvsrpp: error: interrupted by {signal.Signals(sig).name}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # main() put the defaults back


def test_undecodable_input(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    assert cli.main(["upscale", str(bad), str(tmp_path / "out.mkv")]) == 1
    assert "cannot decode" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


# ---------------------------------------------------------------------------------------------
# subprocesses: python -m vsvsrpp, stdout output
# ---------------------------------------------------------------------------------------------


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], capture_output=True, env=env, timeout=300, **kwargs)


def test_python_m_help():
    r = _run(["-m", "vsvsrpp", "--help"])
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "upscale" in out and "download" in out
    r = _run(["-m", "vsvsrpp", "upscale", "--help"])
    assert r.returncode == 0 and b"--weights" in r.stdout and b"--format" in r.stdout


def test_console_script_version():
    script = Path(sys.executable).with_name("vsvsrpp")
    if not script.exists():
        pytest.skip("package not installed with its console script (pip install -e .)")
    r = subprocess.run([str(script), "--version"], capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout.decode().strip() == f"vsvsrpp {vsvsrpp.__version__}"


def _assert_only_matroska(data: bytes, path: Path, frames: int, size: tuple[int, int]) -> dict:
    assert data[:4] == b"\x1a\x45\xdf\xa3", "stdout does not start with an EBML (Matroska) header"
    path.write_bytes(data)
    info = probe_video(path)
    assert info["format"]["format_name"].startswith("matroska")
    v = video_stream(info)
    assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (*size, frames)
    # Demuxing every packet reports nothing: no junk interleaved with or appended to the container
    # (a stray line of text after the last cluster makes the demuxer complain).
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0", "-c", "copy", "-f", "null", "-"], capture_output=True)
    assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
    return info


def test_stdout_output_with_stand_in(videos, tmp_path):
    script = tmp_path / "run_cli.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import vapoursynth as vs
            from vsvsrpp import cli
            from vsvsrpp.pipeline import source

            def fake(clip, output_format=None, dither="none", matrix=None, **kwargs):
                return vs.core.resize.Bicubic(clip, clip.width * 4, clip.height * 4, format=output_format)

            source.run_network = fake
            sys.exit(cli.main(sys.argv[1:]))
            """
        )
    )
    r = _run([str(script), "upscale", str(videos["audio"]), "-", "--format", "matroska", "--preset", "ultrafast"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    info = _assert_only_matroska(r.stdout, tmp_path / "piped.mkv", 6, (384, 256))
    assert any(s["codec_type"] == "audio" for s in info["streams"])
    assert b"frame" in r.stderr  # the progress bar went to stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["piped.mkv", "run_cli.py"]


# ---------------------------------------------------------------------------------------------
# with the real filter
# ---------------------------------------------------------------------------------------------


def test_real_filter_stdout_matroska(videos, tmp_path, tiny_checkpoint):
    r = _run(
        ["-m", "vsvsrpp", "upscale", str(videos["plain"]), "-", "--format", "matroska", "--weights", str(tiny_checkpoint), "--device", "cpu", "--preset", "ultrafast"],
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr.decode()
    _assert_only_matroska(r.stdout, tmp_path / "piped.mkv", 6, (384, 256))


def test_real_filter_to_file(videos, tmp_path, tiny_checkpoint):
    out = tmp_path / "out.mp4"
    args = ["upscale", str(videos["audio"]), str(out), "--weights", str(tiny_checkpoint), "--device", "cpu", "--window", "2", "--overlap", "3", "--preset", "ultrafast"]
    assert cli.main(args) == 0
    info = probe_video(out)
    v = video_stream(info)
    assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (384, 256, 6)
    assert any(s["codec_type"] == "audio" for s in info["streams"])
    assert leftovers(tmp_path) == []


def test_real_filter_bad_checkpoint(videos, tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--weights", str(bad), "--device", "cpu"]) == 1
    assert "bad.pth" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth"]


@pytest.fixture(scope="module")
def tiny_basicvsr_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_basicvsr.pth", BasicVSRConfig(8, 1))


@pytest.mark.parametrize("family", ["basicvsrpp", "basicvsr", "realbasicvsr"])
def test_upscale_serves_every_family(videos, tmp_path, family, tiny_checkpoint, tiny_basicvsr_checkpoint, tiny_realbasicvsr_checkpoint):
    weights = {"basicvsrpp": tiny_checkpoint, "basicvsr": tiny_basicvsr_checkpoint, "realbasicvsr": tiny_realbasicvsr_checkpoint}[family]
    out = tmp_path / "out.mkv"
    extra = ["--cleaning-passes", "2"] if family == "realbasicvsr" else []
    args = ["upscale", str(videos["plain"]), str(out), "--weights", str(weights), "--device", "cpu", "--window", "3", "--overlap", "1",
            "--preset", "ultrafast", "--no-progress", *extra]  # fmt: skip
    assert cli.main(args) == 0
    v = video_stream(probe_video(out))
    assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (384, 256, 6)
    assert leftovers(tmp_path) == []


def test_upscale_family_option_on_another_family_is_refused(videos, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out.mkv"
    args = ["upscale", str(videos["plain"]), str(out), "--weights", str(tiny_checkpoint), "--refine-threshold", "3", "--device", "cpu"]
    assert cli.main(args) == 1
    assert "refine_threshold does not apply to BasicVSR++ networks" in capsys.readouterr().err
    assert not out.exists()


def test_upscale_named_realbasicvsr_attempts_its_download(videos, tmp_path, monkeypatch, capsys):
    """--model realbasicvsr is accepted and goes for the RealBasicVSR file (here: refused port)."""
    monkeypatch.setenv("VSVSRPP_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VSVSRPP_URL_BASE", "http://127.0.0.1:9/")  # discard port: connection refused
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(videos["plain"]), str(out), "--model", "realbasicvsr", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "could not download the 'realbasicvsr' checkpoint from http://127.0.0.1:9/realbasicvsr_c64b20" in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# download (catalogue and weights replaced by fakes; no network)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_registry(monkeypatch, tmp_path):
    """Three registry entries and a download function that writes files (no network)."""
    from vsvsrpp.hub import download as download_module
    from vsvsrpp.hub import registry

    fetched = []

    def download(info, force=False):
        fetched.append((info.file, force))
        if info.url == "broken":
            raise download_module.DownloadError(f"checksum mismatch for {info.file}")
        path = tmp_path / info.file
        path.write_bytes(b"weights")
        return path

    def model(file, url="https://example.invalid/"):
        return types.SimpleNamespace(file=file, url=url + file if url != "broken" else url, sha256="0" * 64, shipped=False, carried_by=None)

    monkeypatch.setattr(registry, "MODELS", {"reds4": model("reds4.pth"), "vimeo": model("vimeo.pth"), "bad": model("bad.pth", "broken")})
    monkeypatch.setattr(download_module, "download", download)
    return fetched


def test_download_default(fake_registry, tmp_path, capsys):
    assert cli.main(["download"]) == 0
    assert fake_registry == [("reds4.pth", False)]
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "reds4.pth")]


def test_download_names_and_force(fake_registry, tmp_path, capsys):
    assert cli.main(["download", "vimeo", "reds4", "--force"]) == 0
    assert fake_registry == [("vimeo.pth", True), ("reds4.pth", True)]
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "vimeo.pth"), str(tmp_path / "reds4.pth")]


def test_download_all_reports_failures(fake_registry, capsys):
    assert cli.main(["download", "--all"]) == 1
    assert [f for f, _ in fake_registry] == ["reds4.pth", "vimeo.pth", "bad.pth"]
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "checksum mismatch for bad.pth" in captured.err


def test_download_unknown_name(fake_registry, capsys):
    assert cli.main(["download", "nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown model" in err and "nope" in err and "reds4" in err
    assert fake_registry == []


def test_download_unknown_name_real_registry(capsys):
    assert cli.main(["download", "definitely-not-a-model"]) == 1
    assert "definitely-not-a-model" in capsys.readouterr().err



def test_batch_to_an_output_directory(videos, tmp_path, stand_in):
    outdir = tmp_path / "new"  # created
    assert cli.main(["upscale", str(videos["plain"]), str(videos["audio"]), "-o", str(outdir), "--preset", "ultrafast", "--no-progress"]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["audio.mkv", "plain.mkv"]
    for name in ("audio", "plain"):
        stream = video_stream(probe_video(outdir / f"{name}.mkv"))
        assert (stream["width"], stream["height"], stream["nb_read_frames"]) == (384, 256, "6")
    assert len(stand_in) == 2
    # an existing output is refused before anything runs
    assert cli.main(["upscale", str(videos["plain"]), "-o", str(outdir)]) == 2
    assert len(stand_in) == 2
