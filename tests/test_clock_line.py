"""A rotated band's clock line (companion.clock_line): pure, so tested on numbers alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.clock_line import ClockLine, ClockPoint, fit_clock_line


@given(
    drift=st.floats(-50.0, 50.0),
    offset=st.floats(-60e9, 60e9),
    span_s=st.floats(300.0, 1800.0),
)
def test_syncs_on_a_drifting_line_give_back_its_drift_and_offset(
    drift: float, offset: float, span_s: float
) -> None:
    points = [
        ClockPoint(k * span_s / 9, offset + drift * k * span_s / 9, 10_000.0) for k in range(10)
    ]
    line = fit_clock_line(points)
    # Over minutes, ten syncs outweigh the prior of no drift by far.
    assert line.drift_ppm == pytest.approx(drift, rel=1e-3, abs=1e-3)
    assert line.offset_at(span_s) == pytest.approx(offset + drift * span_s, abs=5.0)


def test_a_sync_with_a_wider_bound_than_the_others_barely_moves_the_line() -> None:
    # Three syncs at their narrowest agree on 0; one whose bound is 5 ms wider is 5 ms off,
    # as far off as its excess allows.
    points = [
        ClockPoint(0.0, 0.0, 10_000.0),
        ClockPoint(20.0, 5_000.0, 15_000.0),
        ClockPoint(40.0, 0.0, 10_000.0),
        ClockPoint(60.0, 0.0, 10_000.0),
    ]
    line = fit_clock_line(points)
    # Weighed alike, it would have moved the line by a quarter of its error (1,250 us).
    assert abs(line.offset_at(20.0)) < 10.0


def test_two_noisy_syncs_close_together_do_not_read_as_a_steep_drift() -> None:
    # 0.5 ms apart over 10 s reads as 50 ppm, but two syncs of about SYNC_NOISE_US each
    # tell a slope only to ~21 ppm: against a 30 ppm prior, a third of it is noise.
    points = [ClockPoint(0.0, 0.0, 10_000.0), ClockPoint(10.0, 500.0, 10_000.0)]
    line = fit_clock_line(points)
    assert line.drift_ppm == pytest.approx(50.0 * 2 / 3, rel=0.01)
    # With no prior, the line would go through both points.
    unbounded = fit_clock_line(points, drift_prior_ppm=1e9)
    assert unbounded.drift_ppm == pytest.approx(50.0)


def test_a_slope_steeper_than_any_crystal_is_held_at_100_ppm() -> None:
    points = [ClockPoint(0.0, 0.0, 10_000.0), ClockPoint(1000.0, 1e6, 10_000.0)]
    assert fit_clock_line(points).drift_ppm == 100.0
    points = [ClockPoint(0.0, 0.0, 10_000.0), ClockPoint(1000.0, -1e6, 10_000.0)]
    assert fit_clock_line(points).drift_ppm == -100.0


def test_one_sync_is_a_flat_line_through_it() -> None:
    line = fit_clock_line([ClockPoint(5.0, 1234.0, 12_000.0)])
    assert line == ClockLine(5.0, 1234.0, 0.0)
    assert line.offset_at(100.0) == 1234.0


def test_no_sync_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one sync"):
        fit_clock_line([])
