"""Snapshots of a band and of a running session, for views, dashboards and MQTT state.

A snapshot is a frozen value computed from the host's mirror of the band's
timeline, so a view is a pure function of it and can be tested without a band.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DeviceInfo", "SessionPhase", "SessionSnapshot"]


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


class SessionPhase(enum.StrEnum):
    """Where a session is, as dashboards show it."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    ROUND_REST = "round_rest"
    DONE = "done"
    STOPPED = "stopped"


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
