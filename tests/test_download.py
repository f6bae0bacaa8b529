"""Download, verification and caching of checkpoints, against a loopback HTTP server."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from vsvsrpp.hub import download as weights
from vsvsrpp.hub.download import DownloadError
from vsvsrpp.hub.registry import PretrainedModel


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` by name; ``server.mode`` selects a misbehaviour."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.path)
        body = srv.files.get(self.path.lstrip("/"))
        if body is None or srv.mode == "404":
            self.send_error(404, "Not Found")
            return
        if srv.mode == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if srv.mode == "drip":  # one byte every 0.1 s: never silent for long, never done
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                if srv.release.wait(0.1):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        if srv.mode == "stall":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:100])
            self.wfile.flush()
            srv.release.wait(5)
            return
        self.send_response(200)
        if srv.mode != "no-length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files = {}
    srv.requests = []
    srv.mode = "ok"
    srv.release = threading.Event()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("VSVSRPP_HOME", str(d))
    monkeypatch.delenv("VSVSRPP_URL_BASE", raising=False)
    return d


def _info(file: str, data: bytes, **kw) -> PretrainedModel:
    fields = dict(
        name="tiny",
        family="basicvsrpp",
        file=file,
        url="https://example.invalid/models/" + file,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        task="test",
        paper_result=None,
    )
    fields.update(kw)
    return PretrainedModel(**fields)


@pytest.fixture
def ckpt(tmp_path, server, home, monkeypatch):
    """A generated checkpoint served by ``server``, and a PretrainedModel describing it."""
    src = tmp_path / "src.pth"
    torch.manual_seed(0)
    torch.save({"state_dict": {"generator.x": torch.randn(64)}}, src)
    data = src.read_bytes()
    file = f"tiny_test-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    monkeypatch.setenv("VSVSRPP_URL_BASE", server.base + "/models/")
    server.files["models/" + file] = data
    return data, _info(file, data)


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# --- paths and environment -------------------------------------------------------------


def test_cache_dir_honours_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VSVSRPP_HOME", str(tmp_path / "x"))
    assert weights.cache_dir() == tmp_path / "x"
    assert not (tmp_path / "x").exists()  # not created by asking
    info = _info("a-12345678.pth", b"")
    assert weights.checkpoint_path(info) == tmp_path / "x" / "a-12345678.pth"


def test_cache_dir_default(monkeypatch):
    import platformdirs

    monkeypatch.delenv("VSVSRPP_HOME", raising=False)
    assert weights.cache_dir() == Path(platformdirs.user_cache_dir("vsvsrpp"))


@pytest.mark.parametrize("base", ["http://mirror.local/m", "http://mirror.local/m/"])
def test_url_for_honours_url_base(monkeypatch, base):
    info = _info("a-12345678.pth", b"")
    monkeypatch.delenv("VSVSRPP_URL_BASE", raising=False)
    assert weights.url_for(info) == info.url
    monkeypatch.setenv("VSVSRPP_URL_BASE", base)
    assert weights.url_for(info) == "http://mirror.local/m/a-12345678.pth"


def test_sha256_of(tmp_path):
    p = tmp_path / "f"
    data = bytes(range(256)) * 9000  # more than one chunk
    p.write_bytes(data)
    assert weights.sha256_of(p) == hashlib.sha256(data).hexdigest()


# --- downloads -------------------------------------------------------------------------


def test_download_success_and_cache(ckpt, server, home, capsys):
    data, info = ckpt
    path = weights.fetch(info, progress=True)
    assert path == home / info.file
    assert path.read_bytes() == data
    assert weights.sha256_of(path) == info.sha256
    assert _leftovers(home) == [info.file]  # no .part left behind
    assert server.requests == ["/models/" + info.file]
    loaded = torch.load(path, weights_only=True)
    assert loaded["state_dict"]["generator.x"].shape == (64,)

    assert weights.fetch(info) == path
    assert weights.download(info) == path
    assert len(server.requests) == 1  # served from the cache
    assert capsys.readouterr().out == ""  # stdout stays clean for vspipe


def test_download_force_redownloads(ckpt, server, home):
    data, info = ckpt
    home.mkdir()
    (home / info.file).write_bytes(b"stale")
    assert weights.download(info, force=True) == home / info.file
    assert (home / info.file).read_bytes() == data
    assert len(server.requests) == 1


def test_download_without_content_length(ckpt, server, home):
    data, info = ckpt
    server.mode = "no-length"
    assert weights.download(info, progress=False).read_bytes() == data


def test_wrong_sha256(ckpt, server, home):
    data, info = ckpt
    bad = "0" * 64
    info = dataclasses.replace(info, sha256=bad)
    with pytest.raises(DownloadError) as e:
        weights.download(info, progress=False)
    msg = str(e.value)
    assert bad in msg and hashlib.sha256(data).hexdigest() in msg
    assert weights.url_for(info) in msg
    assert _leftovers(home) == []


def test_prefix_only_verification(ckpt, server, home):
    data, info = ckpt
    info = dataclasses.replace(info, sha256=None, size=None)
    assert weights.download(info, progress=False).read_bytes() == data


def test_prefix_only_mismatch(ckpt, server, home):
    data, info = ckpt
    wrong = "tiny_test-00000000.pth"
    server.files["models/" + wrong] = data
    info = dataclasses.replace(info, file=wrong, sha256=None, size=None)
    with pytest.raises(DownloadError, match="00000000"):
        weights.download(info, progress=False)
    assert _leftovers(home) == []


def test_no_digest_known_is_refused(ckpt, server, home):
    data, info = ckpt
    server.files["models/nohash.pth"] = data
    info = dataclasses.replace(info, file="nohash.pth", sha256=None)
    with pytest.raises(DownloadError, match="cannot be verified"):
        weights.download(info, progress=False)
    assert server.requests == []
    assert _leftovers(home) == []


def test_truncated_body(ckpt, server, home):
    data, info = ckpt
    server.mode = "truncate"
    with pytest.raises(DownloadError) as e:
        weights.download(info, progress=False)
    msg = str(e.value)
    assert "truncated" in msg
    assert str(len(data) + 1000) in msg and str(len(data) // 2) in msg
    assert _leftovers(home) == []


def test_size_mismatch_with_catalogue(ckpt, server, home):
    data, info = ckpt
    info = dataclasses.replace(info, size=len(data) + 1)
    with pytest.raises(DownloadError, match="truncated: expected"):
        weights.download(info, progress=False)
    assert _leftovers(home) == []


def test_http_404(ckpt, server, home):
    _, info = ckpt
    server.mode = "404"
    with pytest.raises(DownloadError) as e:
        weights.download(info, progress=False)
    msg = str(e.value)
    assert weights.url_for(info) in msg and "404" in msg
    assert _leftovers(home) == []


def test_connection_refused(ckpt, home, monkeypatch):
    _, info = ckpt
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VSVSRPP_URL_BASE", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError) as e:
        weights.fetch(info, progress=False)
    msg = str(e.value)
    assert f"http://127.0.0.1:{port}/{info.file}" in msg
    assert str(home / info.file) in msg
    assert "VSVSRPP_HOME" in msg and "VSVSRPP_URL_BASE" in msg
    assert _leftovers(home) == []


def test_silent_server_fails_at_the_stall_deadline(ckpt, server, home, monkeypatch):
    _, info = ckpt
    server.mode = "stall"
    monkeypatch.setenv("VSVSRPP_STALL_TIMEOUT", "0.3")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"(?i)timed out \(no data for 0.3 s; VSVSRPP_STALL_TIMEOUT=0.3\)"):
        weights.download(info, progress=False)
    assert time.monotonic() - start < 3
    assert _leftovers(home) == []


def test_dripping_server_fails_within_the_stall_deadline(ckpt, server, home, monkeypatch):
    _, info = ckpt
    server.mode = "drip"  # a byte every 0.1 s: each read succeeds, the download never ends
    monkeypatch.setenv("VSVSRPP_STALL_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(DownloadError, match="stalled: .* bytes in the last 1 s .*VSVSRPP_STALL_TIMEOUT=1"):
        weights.download(info, progress=False)
    assert time.monotonic() - start < 3
    assert _leftovers(home) == []


def test_overall_deadline(ckpt, server, home, monkeypatch):
    _, info = ckpt
    server.mode = "drip"
    monkeypatch.setattr(weights, "STALL_BYTES", 1)  # the drip is not a stall here
    monkeypatch.setenv("VSVSRPP_DOWNLOAD_TIMEOUT", "0.8")
    start = time.monotonic()
    with pytest.raises(DownloadError, match="not finished after 1 s .*VSVSRPP_DOWNLOAD_TIMEOUT=0.8"):
        weights.download(info, progress=False)
    assert time.monotonic() - start < 3
    assert _leftovers(home) == []


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_bad_deadline_setting_is_quoted(ckpt, server, home, monkeypatch, value):
    _, info = ckpt
    monkeypatch.setenv("VSVSRPP_STALL_TIMEOUT", value)
    with pytest.raises(DownloadError, match=f"VSVSRPP_STALL_TIMEOUT must be a positive number of seconds, got '{value}'"):
        weights.download(info, progress=False)
    assert _leftovers(home) == []


def test_cached_problem(ckpt, server, home):
    body, info = ckpt
    assert weights.cached_problem(info) is None  # absent
    weights.download(info, progress=False)
    assert weights.cached_problem(info) is None
    path = weights.checkpoint_path(info)
    path.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # same size, one bit flipped
    problem = weights.cached_problem(info)
    assert problem is not None and "sha256 mismatch" in problem and f"vsvsrpp download {info.name} --force" in problem
    path.write_bytes(body[:10])
    assert "expected" in weights.cached_problem(dataclasses.replace(info, size=len(body)))


def test_interrupt_removes_partial_file(ckpt, server, home, monkeypatch):
    _, info = ckpt

    class _Bar:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(weights, "tqdm", _Bar)
    with pytest.raises((KeyboardInterrupt, DownloadError)):
        weights.download(info, progress=False)
    assert _leftovers(home) == []


def test_fetch_trusts_file_placed_by_hand(ckpt, server, home):
    _, info = ckpt
    home.mkdir()
    (home / info.file).write_bytes(b"placed by hand")
    assert weights.fetch(info) == home / info.file
    assert (home / info.file).read_bytes() == b"placed by hand"
    assert server.requests == []


# --- the download command -----------------------------------------------------------------


def test_download_command_checks_the_cache_and_force_repairs(ckpt, server, home, monkeypatch, capsys):
    from vsvsrpp import cli
    from vsvsrpp.hub import registry

    body, info = ckpt
    monkeypatch.setitem(registry.MODELS, info.name, info)
    assert cli.main(["download", info.name]) == 0
    path = weights.checkpoint_path(info)
    assert capsys.readouterr().out.strip() == str(path)
    path.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # damaged in the cache
    assert cli.main(["download", info.name]) == 1
    err = capsys.readouterr().err
    assert "sha256 mismatch" in err and f"vsvsrpp download {info.name} --force" in err
    assert cli.main(["download", info.name, "--force"]) == 0
    assert path.read_bytes() == body
    assert cli.main(["download", info.name]) == 0  # verified, not fetched again
    assert len(server.requests) == 2
