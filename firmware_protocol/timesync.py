"""NTP-style clock offset estimation between host and band.

One exchange gives four times: host send ``t1``, band receive ``t2``, band
send ``t3``, host receive ``t4``. Its offset (band - host) is
``((t2 - t1) + (t3 - t4)) / 2`` and its round-trip delay ``(t4 - t1) - (t3 - t2)``.
The error of one sample is at most half its delay, so the estimate keeps the
lowest-delay samples: a slow, asymmetric exchange cannot drag it off.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import LocalProtocolError

__all__ = ["ClockEstimate", "TimeSyncSample", "estimate_offset"]


@dataclass(frozen=True, slots=True)
class TimeSyncSample:
    """The four timestamps of one exchange, in microseconds."""

    t1: int
    t2: int
    t3: int
    t4: int

    @property
    def offset_us(self) -> float:
        """Band clock minus host clock, by this exchange."""
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2

    @property
    def delay_us(self) -> int:
        """Round-trip time on the link, excluding the band's processing."""
        return (self.t4 - self.t1) - (self.t3 - self.t2)


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """Band clock minus host clock, and a bound on the error of that figure."""

    offset_us: int
    uncertainty_us: int
    samples: int


def estimate_offset(samples: Sequence[TimeSyncSample], keep: int = 3) -> ClockEstimate:
    """Combine exchanges: the median offset of the ``keep`` lowest-delay samples.

    The uncertainty is half the largest delay among them plus their spread.
    """
    valid = [s for s in samples if s.delay_us >= 0]
    if not valid:
        raise LocalProtocolError("no usable time sync sample (every delay was negative)")
    best = sorted(valid, key=lambda s: s.delay_us)[: max(1, keep)]
    offsets = [s.offset_us for s in best]
    spread = max(offsets) - min(offsets)
    uncertainty = max(s.delay_us for s in best) / 2 + spread
    return ClockEstimate(round(statistics.median(offsets)), round(uncertainty), len(valid))
