"""Window planner invariants (pure Python)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsvsrpp.runtime.windows import Window, WindowPlan

plans = st.integers(0, 200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(1, 40), st.integers(0, 12), st.sets(st.integers(0, max(n, 1)), max_size=8))
)


@given(plans)
def test_every_frame_emitted_exactly_once_by_its_window(args):
    num_frames, window, overlap, cuts = args
    plan = WindowPlan(num_frames, window, overlap, cuts)
    emitted = [n for w in plan for n in range(w.emit_start, w.emit_end)]
    assert emitted == list(range(num_frames))
    for n in range(num_frames):
        w = plan.window_of(n)
        assert w.emit_start <= n < w.emit_end


@given(plans)
def test_runs_stay_inside_shots_and_bounded(args):
    num_frames, window, overlap, cuts = args
    plan = WindowPlan(num_frames, window, overlap, cuts)
    for w in plan:
        assert 0 <= w.start <= w.emit_start < w.emit_end <= w.end <= num_frames
        assert w.emit_end - w.emit_start <= window
        assert w.end - w.start <= window + 2 * overlap
        assert not any(w.start < c < w.end for c in plan.cuts), "a pass crosses a scene cut"
        assert list(w.frames)[w.emitted] == list(range(w.emit_start, w.emit_end))
        # context on each side: as much overlap as the shot allows
        shot_start = max([0] + [c for c in plan.cuts if c <= w.emit_start])
        assert w.emit_start - w.start == min(overlap, w.emit_start - shot_start)


@given(plans)
def test_window_depends_only_on_cuts_within_reach(args):
    num_frames, window, overlap, cuts = args
    plan = WindowPlan(num_frames, window, overlap, cuts)
    before, after = plan.reach
    for n in range(num_frames):
        local = [c for c in cuts if n - before <= c <= n + after]
        assert WindowPlan(num_frames, window, overlap, local).window_of(n) == plan.window_of(n)


@given(st.integers(1, 80), st.integers(1, 80), st.integers(1, 30), st.integers(0, 10))
def test_shot_after_a_cut_starts_exactly_as_the_shot_alone(len_a, len_b, window, overlap):
    spliced = WindowPlan(len_a + len_b, window, overlap, [len_a])
    alone = WindowPlan(len_b, window, overlap)
    first = spliced.window_of(len_a)
    shifted = Window(*(x - len_a for x in (first.start, first.end, first.emit_start, first.emit_end)))
    ref = alone.window_of(0)
    assert (shifted.start, shifted.end, shifted.emit_start) == (ref.start, ref.end, ref.emit_start)
    assert shifted.emit_end <= ref.emit_end  # the same run; it may emit fewer frames


def test_grid_is_anchored_at_frame_zero_and_last_window_is_short():
    plan = WindowPlan(25, 10, 3)
    assert [(w.start, w.end, w.emit_start, w.emit_end) for w in plan] == [
        (0, 13, 0, 10),
        (7, 23, 10, 20),
        (17, 25, 20, 25),
    ]


def test_cut_splits_a_cell_and_the_new_shot_runs_a_full_window():
    plan = WindowPlan(40, 10, 2, cuts=[14])
    assert [(w.start, w.end, w.emit_start, w.emit_end) for w in plan] == [
        (0, 12, 0, 10),
        (8, 14, 10, 14),   # ends at the cut, no context across it
        (14, 26, 14, 20),  # starts the shot: runs window + overlap frames
        (18, 32, 20, 30),
        (28, 40, 30, 40),
    ]


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
        WindowPlan(5, 2, 1).window_of(5)
