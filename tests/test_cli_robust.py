"""The command line as people really use it: outputs that are not files, signals, broken pipes,
variable frame rate, stalled downloads, light start-up, ``compare`` and the example script.

Signal and pipe tests run ``python -m vsvsrpp`` in a subprocess with a real (random-weight)
network big enough that one pass takes many seconds, and act while that pass runs.
"""

from __future__ import annotations

import http.server
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_checkpoint
from test_cli import _ffmpeg, probe_video, stand_in, video_stream, videos  # noqa: F401 (fixtures)
from vsvsrpp import cli
from vsvsrpp.arch.basicvsrpp import BasicVSRPPConfig
from vsvsrpp.cli import compare
from vsvsrpp.pipeline.timing import fastest_rate, read_timecodes, retiming_problem

REPO = Path(__file__).resolve().parents[1]
#: Window of the subprocess runs: the run is stopped before its first window is done.
WINDOW = 8


# ---------------------------------------------------------------------------------------------
# start-up
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_vapoursynth(flag):
    code = (
        "import sys\n"
        "from vsvsrpp.cli import main\n"
        f"code = main([{flag!r}])\n"
        "heavy = [m for m in ('torch', 'torchvision', 'vapoursynth', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy, code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "HEAVY [] 0" in out


# ---------------------------------------------------------------------------------------------
# outputs that are not regular files
# ---------------------------------------------------------------------------------------------


def test_fifo_output_is_written_in_place(videos, tmp_path, stand_in):  # noqa: F811
    fifo = tmp_path / "pipe.mkv"
    os.mkfifo(fifo)
    received = bytearray()

    def read() -> None:
        with open(fifo, "rb") as f:
            while chunk := f.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert cli.main(["upscale", str(videos["plain"]), str(fifo), "--preset", "ultrafast", "--no-progress"]) == 0
    reader.join(30)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, not replaced by a file
    copy = tmp_path / "received.mkv"
    copy.write_bytes(bytes(received))
    assert int(video_stream(probe_video(copy))["nb_read_frames"]) == 6  # a playable stream
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


def test_full_disk_is_a_failure(videos, stand_in, capsys):  # noqa: F811
    # /dev/full fails every write with ENOSPC; without -xerror ffmpeg reported success
    assert cli.main(["upscale", str(videos["plain"]), "/dev/full", "--format", "matroska", "--no-progress"]) == 1
    assert "No space left on device" in capsys.readouterr().err


def test_fifo_whose_reader_goes_away_is_a_broken_pipe(tmp_path, stand_in, capsys):  # noqa: F811
    clip = tmp_path / "long.mp4"  # its output is far larger than a pipe's buffer
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-frames:v", "72", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(clip))
    fifo = tmp_path / "pipe.mkv"
    os.mkfifo(fifo)

    def read_a_little() -> None:
        with open(fifo, "rb") as f:
            f.read(1000)

    reader = threading.Thread(target=read_a_little, daemon=True)
    reader.start()
    assert cli.main(["upscale", str(clip), str(fifo), "--preset", "ultrafast", "--crf", "0", "--no-progress"]) == 141
    assert "the reader of the output went away (broken pipe); stopped" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_character_device_output_stays_a_device(videos, tmp_path, stand_in):  # noqa: F811
    null = tmp_path / "null.mkv"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    except PermissionError:
        pytest.skip("mknod needs privileges")
    assert cli.main(["upscale", str(videos["plain"]), str(null), "--preset", "ultrafast", "--no-progress"]) == 0
    st = null.stat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null.mkv"]


# ---------------------------------------------------------------------------------------------
# signals and broken pipes, in a subprocess, during a network pass
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_job(tmp_path_factory) -> dict:
    """A clip and a checkpoint whose first pass (window 8 + 2x2 context) takes many seconds."""
    d = tmp_path_factory.mktemp("slow")
    clip = d / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24", "-frames:v", "24", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(clip))
    weights = make_checkpoint(d / "c32n2.pth", BasicVSRPPConfig(32, 2, True))
    return {"clip": clip, "weights": weights}


def _start(args: list[str], tmp_path: Path, **kwargs) -> subprocess.Popen:
    env = os.environ | {"VSVSRPP_HOME": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-m", "vsvsrpp", *args], stderr=subprocess.PIPE, env=env, cwd=tmp_path, **kwargs)


def _wait_for_progress(proc: subprocess.Popen, timeout: float = 240) -> tuple[float, bytes]:
    """Read stderr until the bar shows frames done; returns (frames shown, stderr so far)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        shown = [float(x) for x in re.findall(rb"\| (\d+\.\d)/24", seen)]
        if shown and shown[-1] > 0:
            return shown[-1], seen
    proc.kill()
    pytest.fail(f"no progress shown; stderr: {seen.decode(errors='replace')[-2000:]}")


def _upscale_args(job: dict, output: str) -> list[str]:
    return ["upscale", str(job["clip"]), output, "--weights", str(job["weights"]), "--device", "cpu",
            "--window", str(WINDOW), "--overlap", "2", "--preset", "ultrafast"]  # fmt: skip


@pytest.mark.parametrize(
    ("sig", "code"),
    [pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow),
     pytest.param(signal.SIGHUP, 129, marks=pytest.mark.slow)],
)
def test_signal_mid_pass_ends_promptly_and_leaves_nothing(slow_job, tmp_path, sig, code):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _start(_upscale_args(slow_job, str(out_dir / "result.mkv")), tmp_path)
    shown, _ = _wait_for_progress(proc)
    assert 0 < shown < WINDOW  # the bar moved before the first window was done
    sent = time.monotonic()
    proc.send_signal(sig)
    rest = proc.stderr.read().decode()
    assert proc.wait(30) == code
    assert time.monotonic() - sent < 5
    assert rest.rstrip().splitlines()[-1] == f"vsvsrpp: error: interrupted by {signal.Signals(sig).name}"
    assert "Traceback" not in rest
    assert list(out_dir.iterdir()) == []


@pytest.mark.slow
def test_compare_ends_promptly_on_a_signal_mid_pass(slow_job, tmp_path):
    """Issue 26, item 8: compare asked for its frames on the main thread, so a signal waited
    for the whole pass (46.6 s against 1.9 s for upscale)."""
    out = tmp_path / "c.png"
    # the filter plans the window (the whole clip: one long pass) and logs its plan just before the pass
    args = ["compare", str(slow_job["clip"]), "-o", str(out), "--weights", str(slow_job["weights"]), "--device", "cpu", "--frames", "0"]
    proc = _start(args, tmp_path)
    seen = b""
    while b" on cpu: " not in seen:
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, seen.decode(errors="replace")
        seen += chunk
    time.sleep(1)  # inside the pass (tens of seconds)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read().decode()
    assert proc.wait(120) == 143
    assert time.monotonic() - sent < 5
    assert rest.rstrip().splitlines()[-1] == "vsvsrpp: error: interrupted by SIGTERM"
    assert "Traceback" not in rest
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _catches(pid: int, sig: int) -> bool:
    """True once process ``pid`` has a handler for ``sig`` (SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(mask >> (sig - 1) & 1)


def test_sigterm_during_start_up_imports(slow_job, tmp_path):
    proc = _start(_upscale_args(slow_job, str(tmp_path / "result.mkv")), tmp_path)
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)  # main() has just started: torch is still being imported
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 143
    assert err.strip().splitlines() == ["vsvsrpp: error: interrupted by SIGTERM"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_reader_of_stdout_going_away_stops_the_run(slow_job, tmp_path):
    proc = _start(_upscale_args(slow_job, "-"), tmp_path, stdout=subprocess.PIPE)
    _wait_for_progress(proc)
    closed = time.monotonic()
    proc.stdout.close()  # the reader goes away mid-pass
    rest = proc.stderr.read().decode()
    assert proc.wait(30) == 141
    assert time.monotonic() - closed < 5
    assert rest.rstrip().splitlines()[-1] == "vsvsrpp: error: the reader of the output pipe went away; stopped"


class _Drip(http.server.BaseHTTPRequestHandler):
    """Announces 1 MB and sends one byte every 0.1 s."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        try:
            while not self.server.stop.wait(0.1):
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            pass


@pytest.fixture
def drip_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    srv.stop = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


def test_sigterm_during_download_leaves_no_part_file(tmp_path, drip_server):
    cache = tmp_path / "cache"
    env = os.environ | {"VSVSRPP_HOME": str(cache), "VSVSRPP_URL_BASE": drip_server}
    proc = subprocess.Popen([sys.executable, "-m", "vsvsrpp", "download", "reds4"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not (cache.is_dir() and any(p.suffix == ".part" for p in cache.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(p.suffix == ".part" for p in cache.iterdir())  # the download is under way
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err.decode().strip().splitlines()[-1] == "vsvsrpp: error: interrupted by SIGTERM"
    assert list(cache.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# variable frame rate
# ---------------------------------------------------------------------------------------------


def test_timecodes_and_retiming():
    assert retiming_problem([], 24, 1) is None
    ms_rounded = [round(i * 1001 / 24) for i in range(500)]  # 23.976 fps stored in whole ms
    assert retiming_problem(ms_rounded, 24000, 1001) is None
    assert fastest_rate(ms_rounded) == "24000/1001"
    assert fastest_rate([0, 40, 80, 200]) == "25" and fastest_rate([0, 37, 74]) == "27.027"
    vfr = [i * 1000 / 24 for i in range(24)] + [1000 + i * 125 for i in range(8)]
    problem = retiming_problem(vfr, 248, 15)  # BestSource's average rate of that clip
    assert problem is not None and "frame 24 is at 1.000 s in the source but would be at 1.452 s" in problem and "about 24 fps" in problem


def test_read_timecodes(tmp_path):
    good = tmp_path / "tc.txt"
    good.write_text("# timecode format v2\n0.00\n41.71\n# comment\n83.42\n")
    assert read_timecodes(good) == [0.0, 41.71, 83.42]
    bad = tmp_path / "bad.txt"
    bad.write_text("# timecode format v1\nAssume 24\n")
    with pytest.raises(ValueError, match="not a timecode format v2 file"):
        read_timecodes(bad)
    bad.write_text("# timecode format v2\n0\nsoon\n")
    with pytest.raises(ValueError, match="bad time 'soon'"):
        read_timecodes(bad)


def test_variable_frame_rate_input_is_refused(tmp_path, stand_in, capsys):  # noqa: F811
    vfr = tmp_path / "vfr.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24:duration=1", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=8:duration=1",
        "-filter_complex", "[0][1]concat=n=2[v]", "-map", "[v]", "-fps_mode", "vfr", "-c:v", "libx264", str(vfr),
    )  # fmt: skip
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(vfr), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "variable frame rate: frame 24 is at 1.000 s" in err
    assert "-fps_mode cfr -r 24 " in err and "about 24 fps" in err
    assert not out.exists() and stand_in == []


def _flash_and_beep(path: Path) -> tuple[float, float]:
    """Times (s) at which the white flash starts in the video and the beep in the audio, as
    ffmpeg presents them (edit lists and codec delays applied)."""

    def first(args: list[str], pattern: str) -> float:
        err = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(path), *args, "-f", "null", "-"], capture_output=True, text=True).stderr
        return float(re.search(pattern, err).group(1))

    flash = first(["-map", "0:v", "-vf", "blackdetect=d=0.01:pix_th=0.5"], r"black_end:\s*([0-9.]+)")
    beep = first(["-map", "0:a", "-af", "silencedetect=n=-30dB:d=0.1"], r"silence_end:\s*([0-9.]+)")
    return flash, beep


def test_constant_rate_output_keeps_audio_in_sync(tmp_path, stand_in):  # noqa: F811
    src = tmp_path / "sync.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=black:size=96x64:rate=24:duration=3,drawbox=enable='between(n,24,26)':color=white:t=fill",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=3,volume=enable='lt(t,1)':volume=0",
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-c:a", "aac", "-shortest", str(src),
    )  # fmt: skip
    out = tmp_path / "out.mkv"
    assert cli.main(["upscale", str(src), str(out), "--preset", "ultrafast", "--no-progress"]) == 0
    flash_in, beep_in = _flash_and_beep(src)
    flash_out, beep_out = _flash_and_beep(out)
    assert abs(flash_in - 1.0) < 0.01  # the measurement sees the flash at frame 24
    assert abs((beep_out - flash_out) - (beep_in - flash_in)) < 0.005  # the offset moved by under 5 ms


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------


def test_compare_writes_labelled_panels(videos, tmp_path, stand_in, capsys):  # noqa: F811
    out = tmp_path / "cmp.png"
    args = ["compare", str(videos["plain"]), "-o", str(out), "--frames", "1,4", "--crop", "8,8,32,16"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    image = Image.open(out)
    panel_w, panel_h = 32 * 4, 16 * 4
    assert image.size == (2 * panel_w + compare.GAP, 2 * (panel_h + compare.LABEL_HEIGHT) + compare.GAP)
    strip = image.crop((0, 0, panel_w, compare.LABEL_HEIGHT)).convert("L")
    assert strip.getextrema()[1] > 128  # the label is drawn
    assert cli.main(args) == 2  # exists: refused without --overwrite
    assert cli.main([*args, "-y", "--method", "nearest"]) == 0


def test_compare_to_a_device_or_stdout_writes_in_place(videos, tmp_path, stand_in, capfdbinary, monkeypatch):  # noqa: F811
    null = tmp_path / "null.png"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        null = None
    if null is not None:
        assert cli.main(["compare", str(videos["plain"]), "-o", str(null), "-y"]) == 0
        assert stat.S_ISCHR(null.stat().st_mode)  # not replaced by a PNG file
    monkeypatch.chdir(tmp_path)
    capfdbinary.readouterr()
    assert cli.main(["compare", str(videos["plain"]), "-o", "-", "--crop", "0,0,8,8"]) == 0
    png = capfdbinary.readouterr().out
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert not (tmp_path / "-").exists()  # no file named '-'


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--frames", "6"], "has frames 0-5"), (["--crop", "90,0,16,16"], "reaches outside the 96x64 source"),
     (["--crop", "1,2,3"], "expected X,Y,W,H")],
)  # fmt: skip
def test_compare_bad_arguments(videos, tmp_path, stand_in, capsys, extra, message):  # noqa: F811
    assert cli.main(["compare", str(videos["plain"]), "-o", str(tmp_path / "c.png"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


# ---------------------------------------------------------------------------------------------
# errors where a file is written: one line, the right exit code, nothing left (issue 26, item 9)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory on a read-only file system (a tmpfs mounted read-only: root can write to a
    0o555 directory, not there); a 0o555 directory for other users; else the test is skipped."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True).returncode == 0
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("as root, only a read-only mount denies writes, and mount failed")
        ro.chmod(0o555)
    yield ro
    if mounted:
        subprocess.run(["umount", str(ro)], check=True)
    else:
        ro.chmod(0o755)


def _one_line_error(err: str) -> str:
    """The error line of ``err`` (stderr), checked to be its last line, the only one, and no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("vsvsrpp: error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and "Traceback" not in err, err
    return errors[0]


def test_upscale_into_a_read_only_directory(videos, read_only_dir, stand_in, capsys):  # noqa: F811
    for args in (["-o", str(read_only_dir / "newdir")], [str(read_only_dir / "out.mkv")]):
        code = cli.main(["upscale", str(videos["plain"]), *args, "--no-progress"])
        assert code == 2
        assert f"cannot create files in {read_only_dir}" in _one_line_error(capsys.readouterr().err)
    assert list(read_only_dir.iterdir()) == [] and stand_in == []


def test_upscale_output_dir_that_is_a_file(videos, tmp_path, stand_in, capsys):  # noqa: F811
    existing = tmp_path / "existing"
    existing.write_bytes(b"keep")
    code = cli.main(["upscale", str(videos["plain"]), "-o", str(existing), "--no-progress"])
    assert code == 2
    assert f"-o {existing} is a file; give a directory" in _one_line_error(capsys.readouterr().err)
    assert existing.read_bytes() == b"keep" and stand_in == []


def test_a_failed_run_removes_the_output_directory_it_created(videos, tmp_path, monkeypatch, capsys):  # noqa: F811
    """Issue 26, item 10: a failed run with -o NEWDIR left NEWDIR behind, empty."""
    from vsvsrpp.pipeline import source

    def broken(clip, **kwargs):
        raise ValueError("no network today")

    monkeypatch.setattr(source, "run_network", broken)
    assert cli.main(["upscale", str(videos["plain"]), "-o", str(tmp_path / "newdir"), "--no-progress"]) == 1
    assert "no network today" in _one_line_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_compare_into_a_read_only_directory_is_refused_before_the_pass(videos, read_only_dir, stand_in, capsys):  # noqa: F811
    code = cli.main(["compare", str(videos["plain"]), "-o", str(read_only_dir / "c.png")])
    assert code == 2
    assert f"cannot create files in {read_only_dir}" in _one_line_error(capsys.readouterr().err)
    assert stand_in == []


def test_compare_to_a_full_disk(videos, stand_in, capsys):  # noqa: F811
    code = cli.main(["compare", str(videos["plain"]), "-o", "/dev/full", "-y"])
    assert code == 1
    assert "cannot write /dev/full: No space left on device" in _one_line_error(capsys.readouterr().err)


def test_compare_to_stdout_whose_reader_went_away(videos, tmp_path, tiny_checkpoint):  # noqa: F811
    proc = _start(["compare", str(videos["plain"]), "-o", "-", "--weights", str(tiny_checkpoint), "--device", "cpu"], tmp_path,
                  stdout=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # as `| head -c0`: the PNG meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141
    assert err.strip().splitlines()[-1] == "vsvsrpp: error: the reader of the output pipe went away; stopped", err
    assert "Traceback" not in err and "Exception ignored" not in err


# ---------------------------------------------------------------------------------------------
# the example script
# ---------------------------------------------------------------------------------------------


def test_example_script_takes_input_relative_to_where_vspipe_started(videos, tmp_path, tiny_checkpoint):  # noqa: F811
    work = tmp_path / "work"
    work.mkdir()
    (work / "in.mp4").write_bytes(videos["plain"].read_bytes())
    (work / "w.pth").write_bytes(tiny_checkpoint.read_bytes())
    vspipe = Path(sys.executable).with_name("vspipe")
    env = os.environ | {"PWD": str(work)}
    script = str(REPO / "examples" / "upscale.vpy")
    args = [str(vspipe), "--info", "-a", "input=in.mp4", "-a", "weights=w.pth", "-a", "device=cpu", script]
    result = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Width: 384" in result.stdout and "Frames: 6" in result.stdout
    bad = subprocess.run([*args[:-1], "-a", "window=abc", script], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "upscale.vpy: window must be an integer, got 'abc'" in bad.stderr


def test_compare_panels_share_black_and_white_levels_on_a_limited_range_source(tmp_path, identity_checkpoint):
    """Issue 26, item 4: the network panel spanned 16..235 next to a bicubic panel spanning 0..255."""
    src = tmp_path / "levels.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "nullsrc=s=64x48,format=yuv420p,geq=lum='if(lt(X,W/2),16,235)':cb=128:cr=128",
                    "-frames:v", "2", "-c:v", "ffv1", "-color_range", "tv", "-colorspace", "bt470bg", str(src)], check=True)  # fmt: skip
    out = tmp_path / "cmp.png"
    assert cli.main(["compare", str(src), "-o", str(out), "--weights", str(identity_checkpoint), "--device", "cpu", "--frames", "0"]) == 0
    image = Image.open(out).convert("L")
    top = compare.LABEL_HEIGHT
    panels = [image.crop((left, top, left + 64, top + 48)) for left in (0, 64 + compare.GAP)]
    for panel in panels:
        black, white = panel.crop((4, 4, 28, 44)).getextrema(), panel.crop((36, 4, 60, 44)).getextrema()
        assert black[1] <= 2 and white[0] >= 253, (black, white)
