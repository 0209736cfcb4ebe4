"""Clock offset between host and band from NTP-style exchanges, as a hard bound.

One exchange gives four times: host send ``t1``, band receive ``t2``, band
send ``t3``, host receive ``t4``. Whatever the link did, each leg took zero
time or more, so the band's offset (band clock minus host clock) lies in
``[t3 - t4, t2 - t1]``. Every exchange bounds the offset; intersecting the
bounds of many gives an interval that only tightens as exchanges come in and
that holds the true offset whatever the delays were (asymmetric, queued
behind another write, jittered), as long as each leg's time is not negative.
The estimate is the interval's midpoint and its stated uncertainty the
half-width: a bound, not a spread. Averaging the exchanges instead (or taking
the median of the fastest, as NTP's clock filter does) throws that away.

A band's crystal may run tens of ppm off the host's, so the offset moves and
old bounds stop holding. :class:`ClockTracker` fits that rate from the
midpoints of successive bursts of exchanges and carries every exchange's
bound forward along it; it uses a rate only once the bursts show one, so a
band without drift keeps its ever-tightening interval and each new burst does
not move the estimate by its own noise. Exchanges that no longer agree with
the newer ones (the rate changed, the band's clock was reset) are left out,
oldest first.

A rate read into noise is worse than none: carried along it, old bounds no
longer hold the true offset, and the intersection moves by that error. So
the noise a rate must stand clear of is measured where it has many degrees of
freedom, in the scatter of each burst's own exchanges, and only raised by the
bursts' scatter about the fitted line when that is larger. Judged by that
line's scatter alone (one degree of freedom with three bursts), a "three
standard errors" rate showed at the end of some sync in more than one
drift-free five-minute session of four.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import LocalProtocolError

__all__ = ["ClockEstimate", "ClockTracker", "TimeSyncSample", "estimate_offset"]

_PPM: Final = 1e-6
_RESOLUTION_US: Final = 1  # clocks read whole microseconds: bounds may overlap by less


@dataclass(frozen=True, slots=True)
class TimeSyncSample:
    """The four timestamps of one exchange, in microseconds."""

    t1: int
    t2: int
    t3: int
    t4: int

    @property
    def offset_us(self) -> float:
        """Band clock minus host clock by this exchange alone (the NTP formula)."""
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2

    @property
    def delay_us(self) -> int:
        """Round-trip time on the link, excluding the band's processing."""
        return (self.t4 - self.t1) - (self.t3 - self.t2)

    @property
    def lower_us(self) -> int:
        """The offset is at least this: the band's answer took no negative time to arrive."""
        return self.t3 - self.t4

    @property
    def upper_us(self) -> int:
        """The offset is at most this: the request took no negative time to arrive."""
        return self.t2 - self.t1

    @property
    def at_us(self) -> float:
        """Host time in the middle of the exchange, where its bound applies."""
        return (self.t1 + self.t4) / 2


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """Band clock minus host clock at host time ``at_us``, and a bound on its error.

    The true offset lies within ``offset_us ± uncertainty_us`` if no leg of any
    exchange took negative time and the clocks' rate is ``drift_ppm``.
    """

    offset_us: int
    uncertainty_us: int
    samples: int
    drift_ppm: float = 0.0
    at_us: int = 0

    def offset_at(self, host_us: float) -> float:
        """The offset at another host time, along the estimated drift."""
        return self.offset_us + self.drift_ppm * _PPM * (host_us - self.at_us)


def _bounds(sample: TimeSyncSample, at_us: float, drift_ppm: float) -> tuple[float, float]:
    """The sample's bound carried to host time ``at_us`` along ``drift_ppm``.

    Widened by the drift over half the round trip: where inside the exchange the
    band stamped it is unknown.
    """
    rate = drift_ppm * _PPM
    shift = rate * (at_us - sample.at_us)
    slack = abs(rate) * max(sample.t4 - sample.t1, 0) / 2
    return sample.lower_us + shift - slack, sample.upper_us + shift + slack


def estimate_offset(
    samples: Sequence[TimeSyncSample], *, at_us: float | None = None, drift_ppm: float = 0.0
) -> ClockEstimate:
    """The intersection of every exchange's bound: its midpoint, and half its width.

    ``at_us`` (default: the last exchange) is the host time the estimate is for;
    ``drift_ppm`` the band clock's rate against the host's. Exchanges whose own
    bound is empty (a negative round trip: broken timestamps) are ignored.
    Raises :class:`LocalProtocolError` when no exchange is usable or their bounds
    contradict each other (no offset agrees with all of them).
    """
    valid = [s for s in samples if s.lower_us <= s.upper_us]
    if not valid:
        raise LocalProtocolError("no usable time sync sample (every delay was negative)")
    at = valid[-1].at_us if at_us is None else at_us
    low, high = -math.inf, math.inf
    for sample in valid:
        lo, hi = _bounds(sample, at, drift_ppm)
        low, high = max(low, lo), min(high, hi)
    if low > high + _RESOLUTION_US:
        raise LocalProtocolError(
            f"time sync exchanges contradict each other by {low - high:.0f} us: the band's "
            "clock jumped or drifts faster than assumed"
        )
    return _estimate(low, high, len(valid), drift_ppm, at)


def _estimate(low: float, high: float, count: int, drift_ppm: float, at: float) -> ClockEstimate:
    # Rounded outwards, so the integer bound still holds the real interval.
    middle = round((low + high) / 2)
    half = max(0, math.ceil(max(middle - low, high - middle)))
    return ClockEstimate(middle, half, count, drift_ppm, round(at))


@dataclass(frozen=True, slots=True)
class _Burst:
    at_us: float
    mid_us: float
    count: int
    scatter: float  # squared deviations of its exchanges' offsets from their mean, summed


class ClockTracker:
    """Every exchange so far, combined into one estimate that follows the band's drift.

    Exchanges less than ``burst_gap_us`` apart form one burst (one sync). The
    drift is the least-squares slope of the bursts' midpoints, each weighted by
    its number of exchanges; it is used once at least ``min_bursts`` bursts
    span ``min_drift_span_us`` and the slope stands ``significance`` standard
    errors clear of zero (otherwise it is zero: a rate read into noise would
    move the timeline by that noise). The standard error comes from the
    scatter of the exchanges within each burst, raised to the bursts' own
    scatter about the line when that is larger; without a burst of two
    exchanges or more there is no such measure, and no rate. The default 3.5
    rather than 3: a midpoint, halfway between a burst's fastest legs, errs
    with heavier tails than a normal spread.
    """

    def __init__(
        self,
        *,
        burst_gap_us: int = 5_000_000,
        min_bursts: int = 3,
        min_drift_span_us: int = 20_000_000,
        significance: float = 3.5,
        max_drift_ppm: float = 500.0,
        max_samples: int = 2048,
    ) -> None:
        if burst_gap_us <= 0 or min_bursts < 2 or max_samples < 1 or max_drift_ppm <= 0:
            raise LocalProtocolError(
                "burst_gap_us and max_drift_ppm must be positive, min_bursts at least 2, "
                "max_samples at least 1"
            )
        self._burst_gap_us = burst_gap_us
        self._min_bursts = min_bursts
        self._min_span_us = min_drift_span_us
        self._significance = significance
        self._max_drift_ppm = max_drift_ppm
        self._samples: deque[TimeSyncSample] = deque(maxlen=max_samples)
        # Fitted when read, not per exchange: a sync of 16 exchanges over 2,048 kept ones
        # cost 28 ms refitted each time, ~1 ms per band-second for a class of 300 bands.
        self._drift_ppm: float | None = 0.0

    @property
    def samples(self) -> int:
        """How many exchanges are kept."""
        return len(self._samples)

    @property
    def drift_ppm(self) -> float:
        """The band clock's rate against the host's from every exchange (0 until shown)."""
        if self._drift_ppm is None:
            self._drift_ppm = self._fit_drift()
        return self._drift_ppm

    def reset(self) -> None:
        """Forget every exchange (the band rebooted: its clock started afresh)."""
        self._samples.clear()
        self._drift_ppm = 0.0

    def add(self, sample: TimeSyncSample) -> None:
        """One more exchange; an exchange with an empty bound (broken timestamps) is ignored."""
        if sample.lower_us <= sample.upper_us:
            self._samples.append(sample)
            self._drift_ppm = None

    def estimate(self, at_us: float | None = None) -> ClockEstimate:
        """The offset at host time ``at_us`` (default: the last exchange) from every exchange
        that agrees with the newer ones, newest first."""
        if not self._samples:
            raise LocalProtocolError("no usable time sync sample yet")
        at = self._samples[-1].at_us if at_us is None else at_us
        drift = self.drift_ppm
        low, high = -math.inf, math.inf
        count = 0
        for sample in reversed(self._samples):
            lo, hi = _bounds(sample, at, drift)
            if max(low, lo) > min(high, hi) + _RESOLUTION_US:
                break  # this and older exchanges disagree with the newer ones
            low, high = max(low, lo), min(high, hi)
            count += 1
        return _estimate(low, high, count, drift, at)

    def _bursts(self) -> list[_Burst]:
        bursts: list[_Burst] = []
        group: list[TimeSyncSample] = []
        for sample in self._samples:
            if group and sample.at_us - group[-1].at_us > self._burst_gap_us:
                bursts.append(self._burst(group))
                group = []
            group.append(sample)
        if group:
            bursts.append(self._burst(group))
        return bursts

    @staticmethod
    def _burst(group: list[TimeSyncSample]) -> _Burst:
        low = max(s.lower_us for s in group)
        high = min(s.upper_us for s in group)
        # A burst that contradicts itself falls back on its exchanges' mean.
        mean = sum(s.offset_us for s in group) / len(group)
        middle = mean if low > high else (low + high) / 2
        scatter = sum((s.offset_us - mean) ** 2 for s in group)
        return _Burst(sum(s.at_us for s in group) / len(group), middle, len(group), scatter)

    def _fit_drift(self) -> float:
        bursts = self._bursts()
        n = len(bursts)
        if n < self._min_bursts or bursts[-1].at_us - bursts[0].at_us < self._min_span_us:
            return 0.0
        degrees = sum(b.count - 1 for b in bursts)
        if degrees < 1:
            return 0.0  # single exchanges: nothing tells their noise from a rate
        # One exchange's offset varies this much about its burst's; a burst's midpoint (the
        # middle of the intersection, which only gains on the mean) by at most this / count.
        variance = max(sum(b.scatter for b in bursts) / degrees, float(_RESOLUTION_US**2))
        weights = [b.count / variance for b in bursts]
        total = sum(weights)
        mean_t = sum(w * b.at_us for w, b in zip(weights, bursts, strict=True)) / total
        mean_y = sum(w * b.mid_us for w, b in zip(weights, bursts, strict=True)) / total
        sxx = sum(w * (b.at_us - mean_t) ** 2 for w, b in zip(weights, bursts, strict=True))
        slope = (
            sum(
                w * (b.at_us - mean_t) * (b.mid_us - mean_y)
                for w, b in zip(weights, bursts, strict=True)
            )
            / sxx
        )
        # The bursts may scatter about the line more than their exchanges say (a link whose
        # delays change from one sync to the next): then that scatter is the noise.
        chi2 = sum(
            w * (b.mid_us - mean_y - slope * (b.at_us - mean_t)) ** 2
            for w, b in zip(weights, bursts, strict=True)
        )
        standard_error = math.sqrt(max(1.0, chi2 / (n - 2)) / sxx)
        if abs(slope) <= self._significance * standard_error:
            return 0.0
        return max(-self._max_drift_ppm, min(self._max_drift_ppm, slope / _PPM))
