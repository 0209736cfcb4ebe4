"""A rotated band's clock as a straight line through its turns' syncs (pure).

A band the class rotates is synced afresh on each turn, and each sync is a few
hundred microseconds off under link jitter. Taken on its own, each would move
the band's timeline by that noise at every turn. A crystal's drift is a straight
line, so a line fitted through the recent turns has a fraction of that noise and
follows the drift between turns.

How much to trust a sync comes from its own bound. The intersection of a
sync's exchanges is the link's round-trip floor wide, plus each direction's
smallest excess delay over that floor; its middle errs by at most half the
difference of those excesses. So a sync whose bound is wider than the band's
narrowest by ``x`` errs by up to about ``x``, and one at the narrowest errs by
little: the fit weighs each sync by that excess (plus :data:`SYNC_NOISE_US`).
The slope has a prior of no drift (:data:`DRIFT_PRIOR_PPM`), so that two noisy
turns close together do not read as a steep rate (1 ms over 10 s reads as
100 ppm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["DRIFT_PRIOR_PPM", "SYNC_NOISE_US", "ClockLine", "ClockPoint", "fit_clock_line"]

DRIFT_PRIOR_PPM: Final = 30.0  # a crystal's drift, as a prior: most are well within 50 ppm
SYNC_NOISE_US: Final = 150.0  # a sync at its band's narrowest bound still errs about this much
_MAX_DRIFT_PPM: Final = 100.0  # crystals are within 50 ppm: a steeper fit is noise


@dataclass(frozen=True, slots=True)
class ClockPoint:
    """One sync: band minus host clock ``offset_us`` at host second ``at_s``, within
    ``± uncertainty_us`` (the sync's hard bound)."""

    at_s: float
    offset_us: float
    uncertainty_us: float


@dataclass(frozen=True, slots=True)
class ClockLine:
    """Band minus host clock along the fitted line: ``offset_us`` at ``at_s``,
    changing by ``drift_ppm`` microseconds a second."""

    at_s: float
    offset_us: float
    drift_ppm: float

    def offset_at(self, at_s: float) -> float:
        """The offset at host second ``at_s``, in microseconds."""
        return self.offset_us + self.drift_ppm * (at_s - self.at_s)


def fit_clock_line(
    points: Sequence[ClockPoint],
    *,
    drift_prior_ppm: float = DRIFT_PRIOR_PPM,
    sync_noise_us: float = SYNC_NOISE_US,
) -> ClockLine:
    """The weighted least-squares line through ``points``, its slope drawn toward zero
    by a prior of ``drift_prior_ppm`` (each point weighed as the module says)."""
    if not points:
        raise ValueError("a clock line needs at least one sync")
    narrowest = min(p.uncertainty_us for p in points)
    weights = [1.0 / (p.uncertainty_us - narrowest + sync_noise_us) ** 2 for p in points]
    total = sum(weights)
    t_mean = sum(w * p.at_s for w, p in zip(weights, points, strict=True)) / total
    o_mean = sum(w * p.offset_us for w, p in zip(weights, points, strict=True)) / total
    sxx = sum(w * (p.at_s - t_mean) ** 2 for w, p in zip(weights, points, strict=True))
    sxy = sum(
        w * (p.at_s - t_mean) * (p.offset_us - o_mean) for w, p in zip(weights, points, strict=True)
    )
    # The prior is a slope's precision in the points' units: (1 / ppm)^2, ppm being us per s.
    slope = sxy / (sxx + 1.0 / drift_prior_ppm**2)
    slope = min(max(slope, -_MAX_DRIFT_PPM), _MAX_DRIFT_PPM)
    return ClockLine(t_mean, o_mean, slope)
