"""Snapshots of a band and of a running session, for views, dashboards and MQTT state.

A snapshot is a frozen value computed from the host's mirror of the band's
timeline, so a view is a pure function of it and can be tested without a band.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BandKind",
    "CueMode",
    "DeviceInfo",
    "SessionCommand",
    "SessionPhase",
    "SessionSnapshot",
]


class BandKind(enum.StrEnum):
    """What a device is, as far as this host is concerned."""

    COMPANION = "companion"  # speaks the companion protocol (our band, a companion app)
    INFINITIME = "infinitime"  # PineTime running InfiniTime
    BANGLE = "bangle"  # Bangle.js with the stock apps (Android Integration)
    HR_STRAP = "hr_strap"  # anything with only the standard Heart Rate service

    @property
    def label(self) -> str:
        """The kind in words, for people: "InfiniTime watch", "heart-rate sensor"."""
        return _KIND_LABELS[self]


_KIND_LABELS: Final = {
    BandKind.COMPANION: "companion band",
    BandKind.INFINITIME: "InfiniTime watch",
    BandKind.BANGLE: "Bangle.js",
    BandKind.HR_STRAP: "heart-rate sensor",
}


class CueMode(enum.StrEnum):
    """Where the wearer gets the cues, and who times them: what a dashboard shows."""

    BAND = "band"  # the band fires them on its own clock (acknowledged with its timestamp)
    HOST = "host"  # this host fires them at their offsets and writes them to the band's motor
    SCREEN = "screen"  # no motor: this host's bell and screen (a heart-rate strap)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Who the band is: read from its Device Information service when it has one."""

    band_id: str  # stable, topic-safe ([a-zA-Z0-9_-]): derived from the serial or address
    name: str
    address: str
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    kind: BandKind = BandKind.COMPANION


class SessionPhase(enum.StrEnum):
    """Where a session is, as dashboards show it."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    ROUND_REST = "round_rest"
    DONE = "done"
    STOPPED = "stopped"


class SessionCommand(enum.StrEnum):
    """What a person or a dashboard can ask of a running session (MQTT ``cmd`` payloads)."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Everything a live view or a dashboard shows at one instant."""

    band_id: str
    session_id: str
    plan: str
    phase: SessionPhase
    round: int  # 1-based; 0 before the start
    rounds: int
    step_index: int  # -1 during the rest between rounds or before the start
    step_count: int
    exercise: str  # current step name ("" when none)
    tip: str
    step_remaining_s: float
    step_duration_s: float
    next_exercise: str  # "" when the workout ends after this step
    elapsed_s: float
    total_s: float
    heart_rate: int | None  # None when no fresh sample: never a stale value shown as live
    battery: int | None
    link_up: bool
    notes: tuple[str, ...] = ()
    kind: BandKind = BandKind.COMPANION
    cue_mode: CueMode = CueMode.BAND
