"""The workout's timeline, computed the same way by the band (to fire cues) and
the host (to mirror and check them), so the two can never disagree.

All times are microsecond offsets from the start: cues are placed at absolute
offsets, never by adding up sleeps, so nothing accumulates error.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .enums import CueKind
from .plan import WirePlan

__all__ = ["REST_STEP", "STOPPED_CUE_ID", "PlannedCue", "Segment", "Timeline", "build_timeline"]

# The "stopped" cue is not on the timeline: it fires whenever a stop happens.
STOPPED_CUE_ID = 0xFFFF
REST_STEP = -1  # step_index of the rest between rounds
_SECOND_US = 1_000_000


@dataclass(frozen=True, slots=True)
class PlannedCue:
    """A cue the band must fire ``offset_us`` after the start."""

    cue_id: int
    kind: CueKind
    round: int
    step_index: int
    offset_us: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the timeline: one step of one round, or the rest between rounds."""

    round: int
    step_index: int
    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every cue and segment of a plan, in time order."""

    cues: tuple[PlannedCue, ...]
    segments: tuple[Segment, ...]
    total_us: int

    def segment_at(self, elapsed_us: int) -> Segment | None:
        """The segment running ``elapsed_us`` after the start (None before it or after the end)."""
        if elapsed_us < 0 or elapsed_us >= self.total_us:
            return None
        starts = [s.start_us for s in self.segments]
        return self.segments[bisect.bisect_right(starts, elapsed_us) - 1]

    def next_segment_start_after(self, elapsed_us: int) -> int | None:
        """Start of the first segment that begins after ``elapsed_us`` (None in the last one)."""
        for segment in self.segments:
            if segment.start_us > elapsed_us:
                return segment.start_us
        return None


def _countdown(
    count: int, start_us: int, end_us: int, taken: set[int]
) -> list[tuple[int, CueKind]]:
    """``count`` one-second countdown cues before ``end_us``, where they fit after the start."""
    cues = []
    for k in range(count, 0, -1):
        at = end_us - k * _SECOND_US
        if at > start_us and at not in taken:
            cues.append((at, CueKind.COUNTDOWN))
    return cues


def build_timeline(plan: WirePlan) -> Timeline:
    """Lay out the plan: the rules are in ``vectors/PROTOCOL.md`` ("Timeline")."""
    cues: list[tuple[int, CueKind, int, int]] = []
    segments: list[Segment] = []
    t = 0
    last_step = len(plan.steps) - 1
    for round_number in range(1, plan.rounds + 1):
        for index, step in enumerate(plan.steps):
            start, duration = t, step.duration_ms * 1000
            end = start + duration
            segments.append(Segment(round_number, index, start, end))
            cues.append((start, CueKind.NEXT_EXERCISE, round_number, index))
            taken = {start}
            if step.switch_side:
                half = start + duration // 2
                cues.append((half, CueKind.SWITCH_SIDE, round_number, index))
                taken.add(half)
            for at, kind in _countdown(plan.countdown, start, end, taken):
                cues.append((at, kind, round_number, index))
            t = end
        if round_number < plan.rounds:
            cues.append((t, CueKind.ROUND_DONE, round_number, last_step))
            if plan.round_rest_ms:
                start, end = t, t + plan.round_rest_ms * 1000
                segments.append(Segment(round_number, REST_STEP, start, end))
                for at, kind in _countdown(plan.countdown, start, end, {start}):
                    cues.append((at, kind, round_number, REST_STEP))
                t = end
        else:
            cues.append((t, CueKind.WORKOUT_DONE, round_number, last_step))
    # Stable sort: at equal times "round done" stays before the next round's first cue.
    ordered = sorted(cues, key=lambda cue: cue[0])
    planned = tuple(
        PlannedCue(cue_id, kind, round_number, step, at)
        for cue_id, (at, kind, round_number, step) in enumerate(ordered)
    )
    return Timeline(planned, tuple(segments), t)
