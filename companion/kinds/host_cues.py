"""Host-timed cues: the host fires each cue at its absolute offset from the start.

:class:`HostCueSchedule` is pure (no I/O, time is a parameter, like
:class:`firmware_protocol.HostProtocol`): it says when the next cue is due and,
given the time and whether the link is up, which cues to fire now and which
were missed. A cue whose moment passed while the link was down (or while the
host could not act) is reported missed, never fired late as if on time.

:class:`~companion.kinds.session_band.HostTimedBand` is its one async edge: what
a session, the CLI, the tests and the benchmarks drive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

import firmware_protocol as fp

from ..clock import reached

__all__ = ["CueVerdict", "HostCueSchedule"]

_LATE_TOLERANCE_S: Final = 0.25


class CueVerdict(enum.Enum):
    """What the schedule decided about one cue."""

    FIRE = "fire"  # its moment is now: play it
    MISSED = "missed"  # its moment passed while it could not be played


@dataclass(slots=True)
class HostCueSchedule:
    """Which cues are due, on the host clock; ``start`` is the timeline's origin.

    ``late_tolerance_s`` is how late a cue may still be played (a busy event
    loop); beyond it, or with the link down at its moment, it is missed.
    """

    timeline: fp.Timeline
    start: float
    late_tolerance_s: float = _LATE_TOLERANCE_S
    shift_s: float = 0.0  # pauses add to it
    paused_at: float | None = None
    _next: int = field(default=0)

    def planned(self, cue: fp.PlannedCue) -> float:
        """When ``cue`` is due, in host-clock seconds."""
        return self.start + self.shift_s + cue.offset_us / 1_000_000

    def next_deadline(self) -> float | None:
        """When the next cue is due (None when paused or when every cue is done)."""
        if self.paused_at is not None or self._next >= len(self.timeline.cues):
            return None
        return self.planned(self.timeline.cues[self._next])

    @property
    def done(self) -> bool:
        """Every cue was fired or missed."""
        return self._next >= len(self.timeline.cues)

    def due(self, now: float, *, link_up: bool) -> list[tuple[fp.PlannedCue, CueVerdict]]:
        """The cues whose moment has come by ``now``, each with its verdict, in order."""
        if self.paused_at is not None:
            return []
        out: list[tuple[fp.PlannedCue, CueVerdict]] = []
        while self._next < len(self.timeline.cues):
            cue = self.timeline.cues[self._next]
            at = self.planned(cue)
            if not reached(now, at):
                break
            on_time = now - at <= self.late_tolerance_s
            out.append((cue, CueVerdict.FIRE if link_up and on_time else CueVerdict.MISSED))
            self._next += 1
        return out

    def skip_to(self, offset_s: float, now: float) -> list[fp.PlannedCue]:
        """Jump the timeline so that ``offset_s`` into the plan is ``now``; returns the cues
        passed over (skipped, not missed)."""
        elapsed = self.elapsed(now)
        self.shift_s -= offset_s - elapsed
        passed = []
        while self._next < len(self.timeline.cues):
            cue = self.timeline.cues[self._next]
            if cue.offset_us / 1_000_000 >= offset_s:
                break
            passed.append(cue)
            self._next += 1
        return passed

    def elapsed(self, now: float) -> float:
        """Seconds into the plan at host time ``now`` (pauses excluded)."""
        at = self.paused_at if self.paused_at is not None else now
        return at - self.start - self.shift_s

    def link_lost(self, now: float) -> list[fp.PlannedCue]:
        """Nothing is fired while the link is down: what is due meanwhile will be missed."""
        return [cue for cue, _ in self.due(now, link_up=False)]

    def pause(self, now: float) -> None:
        """Hold the remaining cues."""
        if self.paused_at is None:
            self.paused_at = now

    def resume(self, now: float) -> None:
        """Shift the remaining cues by the time spent paused."""
        if self.paused_at is not None:
            self.shift_s += now - self.paused_at
            self.paused_at = None
