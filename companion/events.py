"""Typed events of a band and of a workout session.

:class:`Band.events() <companion.band.Band.events>` yields the band-level events
(cue fired, heart rate, link down...). A :class:`~companion.session.Session`
adds the session-level ones (step started, round done, warnings) and wraps each
in a numbered :class:`SessionEvent`, which is what the store records and the
MQTT relay publishes: the number lets any subscriber drop duplicates.

Times named ``t`` / ``planned`` / ``fired`` are seconds on the host's
:class:`~companion.clock.Clock`; ``SessionEvent.at`` is wall-clock UTC.

:func:`event_to_dict` and :func:`event_from_dict` are the one place where an
event becomes JSON-ready data and back (store and MQTT both use them).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

__all__ = [
    "BandStateChanged",
    "Battery",
    "ButtonPressed",
    "CommandRejected",
    "CueFired",
    "CueTiming",
    "CueWarning",
    "Event",
    "HeartRate",
    "LinkDown",
    "LinkUp",
    "RoundDone",
    "SessionDone",
    "SessionEvent",
    "SessionPaused",
    "SessionResumed",
    "SessionStarted",
    "SessionStopped",
    "StepStarted",
    "StopReason",
    "TimeSynced",
    "event_from_dict",
    "event_to_dict",
]


class StopReason(enum.StrEnum):
    """Why a session ended before its last cue."""

    USER = "user"  # the stop gesture on the band
    PAIN = "pain"  # the pain gesture: "stop immediately if in pain"
    HOST = "host"  # the host asked (CLI, Ctrl-C, MQTT command)
    LINK = "link"  # the band vanished and did not come back
    REBOOT = "reboot"  # the band restarted and lost the workout (battery, crash, reset)
    STORAGE = "storage"  # the history could not be written (disk full): the host stopped it


class CueTiming(enum.StrEnum):
    """Who fired a cue: the band on its own clock, or this host."""

    BAND = "band"  # ``fired`` is the band's own timestamp of the motor starting
    HOST = "host"  # ``fired`` is when the band confirmed the host's write: delivered, not felt


@dataclass(frozen=True, slots=True)
class CueFired:
    """A cue was played: acknowledged with the band's timestamp, or confirmed to the host."""

    cue_id: int
    kind: str  # firmware_protocol CueKind name, lower case: "next_exercise", ...
    round: int
    step_index: int
    planned: float  # host clock, from the host's mirror of the timeline
    fired: float  # host clock, converted from the band's timestamp (or the write's confirmation)
    # Host-clock seconds per real second (``Clock.rate``): 10 in a `--speed 10` demo.
    speed: float = 1.0
    # Where the cue is in the plan: seconds from the timeline's 0, pauses left out
    # (None for the "stopped" cue, which is not on the plan, and in older records).
    offset_s: float | None = None
    timing: CueTiming = CueTiming.BAND

    @property
    def error_ms(self) -> float:
        """How late (positive) or early the cue fired, in real milliseconds.

        Real, not workout, time: at ``--speed 10`` a cue 2 ms late on the wrist
        is 20 ms late on the sped-up host clock, and 2 ms is what happened.
        """
        return (self.fired - self.planned) * 1000.0 / self.speed


@dataclass(frozen=True, slots=True)
class HeartRate:
    """One heart-rate measurement; ``contact`` is None when the sensor cannot tell."""

    bpm: int
    t: float
    rr_ms: tuple[float, ...] = ()
    contact: bool | None = None


@dataclass(frozen=True, slots=True)
class Battery:
    """Battery level of the band in percent."""

    percent: int


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """A gesture on the band: "stop", "pain" or "skip"."""

    button: str
    t: float


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The BLE link dropped; the band keeps running the workout on its own."""

    t: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The BLE link is (back) up; replayed band events follow."""

    t: float


@dataclass(frozen=True, slots=True)
class BandStateChanged:
    """The band's own session state changed (it runs the timeline; this is its report).

    ``shift_s`` is how far the timeline has moved from the plan (pauses add, skips
    subtract); ``cause`` is "", "button", "pain", "host" or "reboot" when ``state`` is "stopped".
    """

    state: str  # firmware_protocol SessionStateCode name, lower case
    round: int
    step_index: int
    shift_s: float
    cause: str
    t: float


@dataclass(frozen=True, slots=True)
class TimeSynced:
    """A new estimate of band clock minus host clock."""

    offset_us: int
    uncertainty_us: int
    t: float


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """The band accepted START: the timeline runs from ``start`` (host clock)."""

    plan: str
    rounds: int
    start: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step of the plan began (on the band's timeline)."""

    round: int
    step_index: int
    name: str
    kind: str  # "exercise", "rest", "countdown"
    duration_s: float
    tip: str
    t: float


@dataclass(frozen=True, slots=True)
class RoundDone:
    """Every step of ``round`` is done."""

    round: int
    t: float


@dataclass(frozen=True, slots=True)
class SessionPaused:
    """The timeline is paused on the band and on the host."""

    t: float


@dataclass(frozen=True, slots=True)
class SessionResumed:
    """The timeline runs again, shifted by the pause."""

    t: float


@dataclass(frozen=True, slots=True)
class SessionDone:
    """The last cue fired: the workout is complete."""

    rounds_done: int
    t: float


@dataclass(frozen=True, slots=True)
class SessionStopped:
    """The session ended early; ``reason`` says who ended it."""

    reason: StopReason
    t: float


@dataclass(frozen=True, slots=True)
class CueWarning:
    """A cue was acknowledged late, or never: ``problem`` is "late" or "missing"."""

    cue_id: int
    kind: str
    problem: str
    error_ms: float | None
    t: float


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A command (e.g. from MQTT) could not be understood or applied; the session goes on."""

    source: str
    command: str
    reason: str
    t: float


Event: TypeAlias = (
    CueFired
    | HeartRate
    | Battery
    | ButtonPressed
    | LinkDown
    | LinkUp
    | TimeSynced
    | BandStateChanged
    | SessionStarted
    | StepStarted
    | RoundDone
    | SessionPaused
    | SessionResumed
    | SessionDone
    | SessionStopped
    | CueWarning
    | CommandRejected
)

_EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        CueFired,
        HeartRate,
        Battery,
        ButtonPressed,
        LinkDown,
        LinkUp,
        TimeSynced,
        BandStateChanged,
        SessionStarted,
        StepStarted,
        RoundDone,
        SessionPaused,
        SessionResumed,
        SessionDone,
        SessionStopped,
        CueWarning,
        CommandRejected,
    )
}


def event_type_name(event: Event) -> str:
    """The stable snake_case name of an event's type, as used in JSON ("cue_fired")."""
    return _snake(type(event).__name__)


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """An event of one session, numbered so that consumers can drop duplicates."""

    band_id: str
    session_id: str
    number: int  # 1, 2, 3... strictly increasing within a session
    at: datetime  # wall clock, UTC
    event: Event

    @property
    def type(self) -> str:
        """The event's type name, e.g. ``"cue_fired"``."""
        return event_type_name(self.event)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


_TYPES_BY_SNAKE = {_snake(name): cls for name, cls in _EVENT_TYPES.items()}


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as JSON-ready data: ``{"type": "cue_fired", ...fields}``.

    Tuples become lists and enums their values, so ``json.dumps`` takes it as is.
    """
    data: dict[str, Any] = {"type": event_type_name(event)}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        data[field.name] = value
    return data


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :func:`event_to_dict`'s output; ``ValueError`` if it is not one."""
    try:
        cls = _TYPES_BY_SNAKE[data["type"]]
    except (KeyError, TypeError):
        raise ValueError(f"not an event: unknown type {data.get('type')!r}") from None
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            if field.default is dataclasses.MISSING:
                raise ValueError(f"{data['type']} event lacks the field {field.name!r}")
            continue
        value = data[field.name]
        if isinstance(value, list):
            value = tuple(value)
        if field.name == "reason" and cls is SessionStopped:
            value = StopReason(value)
        if field.name == "timing" and cls is CueFired:
            value = CueTiming(value)
        kwargs[field.name] = value
    event: Event = cls(**kwargs)
    return event
