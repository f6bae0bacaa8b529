"""Window planner invariants (pure Python)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsvsrpp.windows import WindowPlan


@given(st.integers(0, 300), st.integers(1, 64), st.integers(0, 20))
def test_every_frame_emitted_exactly_once_by_its_window(num_frames, window, overlap):
    plan = WindowPlan(num_frames, window, overlap)
    emitted = [n for w in plan for n in range(w.emit_start, w.emit_end)]
    assert emitted == list(range(num_frames))
    for n in range(num_frames):
        w = plan[plan.index_of(n)]
        assert w.emit_start <= n < w.emit_end


@given(st.integers(1, 300), st.integers(1, 64), st.integers(0, 20))
def test_runs_cover_emitted_frames_with_overlap_context(num_frames, window, overlap):
    plan = WindowPlan(num_frames, window, overlap)
    for w in plan:
        assert 0 <= w.start <= w.emit_start < w.emit_end <= w.end <= num_frames
        assert w.emit_start - w.start == min(overlap, w.emit_start)
        assert w.end - w.emit_end == min(overlap, num_frames - w.emit_end)
        assert w.end - w.start <= window + 2 * overlap
        assert list(w.frames)[w.emitted] == list(range(w.emit_start, w.emit_end))
    assert plan.max_run_length() <= window + 2 * overlap


def test_grid_is_anchored_at_frame_zero_and_last_window_is_short():
    plan = WindowPlan(25, 10, 3)
    assert [(w.start, w.end, w.emit_start, w.emit_end) for w in plan] == [
        (0, 13, 0, 10),
        (7, 23, 10, 20),
        (17, 25, 20, 25),
    ]
    assert plan.index_of(0) == 0 and plan.index_of(19) == 1 and plan.index_of(24) == 2


def test_window_covering_clip_is_one_pass():
    plan = WindowPlan(7, 7, 5)
    assert len(plan) == 1
    assert (plan[0].start, plan[0].end) == (0, 7)


@pytest.mark.parametrize("args", [(-1, 4, 0), (10, 0, 0), (10, 4, -1)])
def test_bad_parameters_raise_with_value(args):
    with pytest.raises(ValueError, match=str(min(a for a in args if a <= 0))):
        WindowPlan(*args)


def test_out_of_range_frame():
    with pytest.raises(IndexError):
        WindowPlan(5, 2, 1).index_of(5)
