"""Progress and cancellation of passes (vsvsrpp.runtime.control), in the engine and the filters."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsvsrpp
from clips import clip_from_array, moving_frames
from vsvsrpp.arch import ARCHITECTURES
from vsvsrpp.runtime import control
from vsvsrpp.runtime.engine import Engine


@pytest.fixture(autouse=True)
def clean_flag():
    control.reset()
    yield
    control.reset()


@pytest.mark.parametrize("family", ARCHITECTURES, ids=lambda a: a.id)
def test_every_step_is_reported_once_per_frame(family):
    engine = Engine(family.describe(family.random(8, 1)), "cpu")
    t = 5
    fractions: list[float] = []
    engine(torch.rand(t, 3, 16, 16), progress=fractions.append)
    assert len(fractions) == t * len(engine.descriptor.step_modules)
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("exact", [True, False])  # step-wise and independent tiles
def test_tiled_pass_reports_every_tile(exact):
    family = ARCHITECTURES[0]
    engine = Engine(family.describe(family.random(8, 1)), "cpu", tile=64, tile_margin=4, exact_tiles=exact)
    fractions: list[float] = []
    engine(torch.rand(3, 3, 64, 160), progress=fractions.append)  # 3 tiles along the width
    assert len(fractions) == 3 * 3 * len(engine.descriptor.step_modules)
    assert fractions[-1] == pytest.approx(1.0)


def test_cancel_stops_a_pass_at_its_next_step():
    family = ARCHITECTURES[0]
    engine = Engine(family.describe(family.random(8, 1)), "cpu")
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if len(seen) == 2:
            control.cancel()  # as a signal handler would, from another thread

    with pytest.raises(control.Cancelled):
        engine(torch.rand(6, 3, 16, 16), progress=progress)
    assert len(seen) == 2  # no step ran after the cancellation
    with pytest.raises(control.Cancelled):  # and none starts until reset
        engine(torch.rand(2, 3, 16, 16))
    control.reset()
    assert engine(torch.rand(2, 3, 16, 16)).shape == (2, 3, 64, 64)


def test_filter_reports_every_output_frame_during_the_passes(tiny_checkpoint):
    reports: list[float] = []
    lock = threading.Lock()

    def listen(frames: float) -> None:
        with lock:
            reports.append(frames)

    clip = vsvsrpp.BasicVSRPP(clip_from_array(moving_frames(10, 16, 16)), weights=tiny_checkpoint, device="cpu", window=4, overlap=1)
    control.add_listener(listen)
    try:
        for n in range(clip.num_frames):
            clip.get_frame(n)
    finally:
        control.remove_listener(listen)
    assert sum(reports) == pytest.approx(10)  # every output frame, once
    assert len(reports) > 3 * 2  # in steps, not one report per window
    assert all(r > 0 for r in reports)


def test_cancelled_filter_says_so(tiny_checkpoint):
    clip = vsvsrpp.BasicVSRPP(clip_from_array(moving_frames(4, 16, 16)), weights=tiny_checkpoint, device="cpu", window=4, overlap=0)
    control.cancel()
    with pytest.raises(vs.Error, match="BasicVSRPP: cancelled while computing frames 0-3"):
        clip.get_frame(0)
    control.reset()
    assert np.asarray(clip.get_frame(0)[0]).shape == (64, 64)


def test_listeners():
    got: list[float] = []
    control.add_listener(got.append)
    control.report(0.5)
    control.report(0)  # nothing to report
    control.remove_listener(got.append)
    control.remove_listener(got.append)  # unknown: ignored
    control.report(1.0)
    assert got == [0.5]


@pytest.mark.parametrize("family", ARCHITECTURES, ids=lambda a: a.id)
def test_a_pass_that_keeps_some_frames_reports_exactly_its_steps(family):
    """The overlap frames' reconstruction is skipped: progress still ends at 1 with one report per step run."""
    engine = Engine(family.describe(family.random(8, 1)), "cpu")
    t, kept = 5, slice(1, 3)
    fractions: list[float] = []
    engine(torch.rand(t, 3, 16, 16), emit=kept, progress=fractions.append)
    d = engine.descriptor
    assert len(fractions) == t * len(d.step_modules) - 3 * len(d.output_step_modules)
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
