"""The one error family: its exit codes, its built-in bases, and the two edges that turn it into
a filter's ``vs.Error`` and a command line's exit code."""

from __future__ import annotations

import pytest

from vsvsrpp import cli, errors
from vsvsrpp.arch import CheckpointError
from vsvsrpp.hub.download import DownloadError
from vsvsrpp.runtime.control import Cancelled


def test_the_package_errors_are_one_family_with_their_old_bases():
    assert CheckpointError is errors.CheckpointError and issubclass(CheckpointError, ValueError)
    assert DownloadError is errors.DownloadError and issubclass(DownloadError, RuntimeError)
    assert Cancelled is errors.Cancelled and issubclass(Cancelled, RuntimeError)
    for kind in (CheckpointError, DownloadError, Cancelled, errors.UsageError, errors.OutputError, errors.ReaderGone):
        assert issubclass(kind, errors.VsvsrppError)


@pytest.mark.parametrize(
    ("error", "code"),
    [(errors.UsageError("x"), 2), (errors.ReaderGone("x"), 141), (errors.OutputError("x"), 1), (CheckpointError("x"), 1),
     (errors.VsvsrppError("x"), 1)],
)
def test_exit_codes(error, code):
    assert errors.exit_code(error) == code


@pytest.mark.parametrize(("error", "code"), [(errors.UsageError("bad --thing"), 2), (errors.ReaderGone("gone"), 141),
                                             (DownloadError("no network"), 1)])  # fmt: skip
def test_the_command_line_turns_an_error_into_one_line_and_its_code(monkeypatch, capsys, error, code):
    from vsvsrpp.cli import download

    def fail(args):
        raise error

    monkeypatch.setattr(download, "run", fail)
    assert cli.main(["download", "reds4"]) == code
    assert capsys.readouterr().err == f"vsvsrpp: error: {error}\n"


def test_a_filter_argument_error_is_a_usage_error_and_a_vs_error_at_the_filter(tiny_checkpoint):
    import vapoursynth as vs

    import vsvsrpp
    from vsvsrpp.plugin import args

    with pytest.raises(errors.UsageError, match="scene_threshold"):
        args.validate({"scene_threshold": 2, "scene_detect": True, "dither": "none"}, ())
    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=64, length=2)
    with pytest.raises(vs.Error, match=r"^BasicVSRPP: scene_threshold must be a number in \(0, 1\], got 2$"):
        vsvsrpp.BasicVSRPP(clip, weights=tiny_checkpoint, scene_threshold=2)
