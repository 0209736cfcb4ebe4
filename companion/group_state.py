"""Snapshots of a group class: what the studio's screen and dashboards show.

Frozen values, like :mod:`companion.state`: a class screen is a pure function
of a :class:`ClassSnapshot`, so it is tested without bands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .state import BandKind, CueMode, SessionPhase

__all__ = ["ClassSnapshot", "HeartZone", "ParticipantSnapshot", "heart_zone"]


class HeartZone(enum.IntEnum):
    """The five heart-rate zones class screens colour by (share of the participant's max)."""

    NONE = 0  # below 50 % of max, or no reading
    VERY_LIGHT = 1  # 50-60 %
    LIGHT = 2  # 60-70 %
    MODERATE = 3  # 70-80 %
    HARD = 4  # 80-90 %
    MAXIMUM = 5  # 90 % and more


def heart_zone(bpm: int | None, max_hr: int) -> HeartZone:
    """The zone of ``bpm`` for someone whose maximum heart rate is ``max_hr``."""
    if bpm is None or max_hr <= 0:
        return HeartZone.NONE
    percent = bpm * 100 // max_hr  # whole percent: 60 % of max is zone 2, not 1.99...
    if percent < 50:
        return HeartZone.NONE
    return HeartZone(min(5, (percent - 50) // 10 + 1))


@dataclass(frozen=True, slots=True)
class ParticipantSnapshot:
    """One participant's tile: who, their heart, their band and its last cue."""

    band_id: str
    name: str
    kind: BandKind
    cue_mode: CueMode
    phase: SessionPhase
    # None: no reading recent enough. A band on a live link shows only a live one; a band
    # that takes turns is heard on its turns, so it shows its last turn's, with its age.
    heart_rate: int | None
    max_hr: int
    zone: HeartZone
    battery: int | None
    link_up: bool
    seen_s_ago: float | None  # seconds since anything was heard from the band (None: never)
    last_cue_error_ms: float | None  # real milliseconds, signed
    cues_fired: int
    cues_missed: int
    heart_rate_age_s: float | None = None  # how old ``heart_rate`` is, in real seconds

    @property
    def heart_rate_share(self) -> float | None:
        """Heart rate as a share of the participant's max (0.82 for 82 %)."""
        if self.heart_rate is None or self.max_hr <= 0:
            return None
        return self.heart_rate / self.max_hr


@dataclass(frozen=True, slots=True)
class ClassSnapshot:
    """The whole class at one instant: the shared timeline and every participant."""

    class_id: str
    plan: str
    phase: SessionPhase
    round: int
    rounds: int
    exercise: str
    next_exercise: str
    step_remaining_s: float
    elapsed_s: float
    total_s: float
    participants: tuple[ParticipantSnapshot, ...]
