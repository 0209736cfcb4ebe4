"""Typed events of a band and of a workout session.

:class:`Band.events() <companion.band.Band.events>` yields the band-level events
(cue fired, heart rate, link down...). A :class:`~companion.session.Session`
adds the session-level ones (step started, round done, warnings) and wraps each
in a numbered :class:`SessionEvent`, which is what the store records and the
MQTT relay publishes: the number lets any subscriber drop duplicates.

Times named ``t`` / ``planned`` / ``fired`` are seconds on the host's
:class:`~companion.clock.Clock`; ``SessionEvent.at`` is wall-clock UTC.

Cue kinds, step kinds, buttons, band states and stop causes are the protocol's
own enums (:mod:`firmware_protocol`) from the band to the JSON edge; what the
protocol has no code for is a host enum here (:class:`CueProblem`,
:class:`InferredStopCause`).

:func:`event_to_dict` and :func:`event_from_dict` are the one place where an
event becomes JSON-ready data and back (store and MQTT both use them).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeAlias

import firmware_protocol as fp

__all__ = [
    "BandStateChanged",
    "Battery",
    "ButtonPressed",
    "CommandRejected",
    "CueFired",
    "CueProblem",
    "CueTiming",
    "CueWarning",
    "Event",
    "HeartRate",
    "InferredStopCause",
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
    "StopSource",
    "TimeSynced",
    "event_from_dict",
    "event_to_dict",
]


class StopReason(enum.StrEnum):
    """Why a session ended before its last cue: who ended it (where: :class:`StopSource`)."""

    USER = "user"  # a person: the band's stop gesture, Ctrl-C / SIGTERM / `companion stop`
    PAIN = "pain"  # the pain gesture: "stop immediately if in pain"
    MQTT = "mqtt"  # a `stop` command from the broker (a dashboard, an automation)
    HOST = "host"  # the program itself: code calling Session.stop(), another host's STOP
    LINK = "link"  # the band vanished and did not come back
    REBOOT = "reboot"  # the band restarted and lost the workout (battery, crash, reset)
    STORAGE = "storage"  # the history could not be written (disk full): the host stopped it


class CueTiming(enum.StrEnum):
    """Who fired a cue: the band on its own clock, or this host."""

    BAND = "band"  # ``fired`` is the band's own timestamp of the motor starting
    HOST = "host"  # ``fired`` is when the band confirmed the host's write: delivered, not felt


class CueProblem(enum.StrEnum):
    """What went wrong with a cue (the protocol has no code for it: the host judges it)."""

    LATE = "late"  # acknowledged, but further from its plan than the session's late_cue_ms
    MISSING = "missing"  # the band timed it and never acknowledged it by the workout's end
    MISSED = "missed"  # host-timed: its moment passed while it could not be delivered


class InferredStopCause(enum.StrEnum):
    """A stop cause the band cannot send, so the host infers it (beside ``fp.StopCause``)."""

    REBOOT = "reboot"  # the band answered HELLO with a new boot id: the workout died with it


class StopSource(enum.StrEnum):
    """Where a stop came from: the band itself, or this host (its terminal, code or broker)."""

    BAND = "band"  # a gesture on the band, or the band's own report (reboot, another host)
    HOST = "host"  # this host: its terminal (Ctrl-C, a signal), its code, its MQTT relay


@dataclass(frozen=True, slots=True)
class CueFired:
    """A cue was played; what ``fired`` measures depends on ``timing``, and only on it.

    ``CueTiming.BAND``: the band timed the cue; ``fired`` is the band's own timestamp
    of the motor starting, converted to the host clock: what the wrist felt.
    ``CueTiming.HOST``: this host timed it; ``fired`` is when the band confirmed the
    host's write: delivered, not felt (the motor may start a little later).
    """

    cue_id: int
    kind: fp.CueKind
    round: int
    step_index: int
    planned: float  # host clock, from the host's mirror of the timeline
    fired: float  # host clock: see the class docstring for what it measures per timing
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
    """A gesture on the band: stop, pain or skip."""

    button: fp.Button
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
    subtract); ``cause`` is ``fp.StopCause.NONE`` unless ``state`` is STOPPED, and then
    the band's cause, or :attr:`InferredStopCause.REBOOT` when the band lost the workout.
    """

    state: fp.SessionStateCode
    round: int
    step_index: int
    shift_s: float
    cause: fp.StopCause | InferredStopCause
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
    kind: fp.StepKind
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
    """The session ended early; ``reason`` says who ended it, ``source`` from where."""

    reason: StopReason
    t: float
    source: StopSource = StopSource.HOST


@dataclass(frozen=True, slots=True)
class CueWarning:
    """A cue was acknowledged late, or never, or could not be delivered: see ``problem``."""

    cue_id: int
    kind: fp.CueKind
    problem: CueProblem
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


@functools.cache  # a handful of names, asked for several times per heart-rate sample
def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


_TYPES_BY_SNAKE = {_snake(name): cls for name, cls in _EVENT_TYPES.items()}


# An open protocol enum names a code it does not know "UNKNOWN_0x07" (firmware_protocol.enums).
_UNKNOWN_CODE: Final = re.compile(r"unknown_0x([0-9a-f]{2})")


def _enums_in(hint: Any) -> tuple[type[enum.Enum], ...]:
    """The enum classes a field's resolved type names (``A``, ``A | B``, ``A | None``)."""
    if isinstance(hint, type):
        return (hint,) if issubclass(hint, enum.Enum) else ()
    return tuple(cls for arg in typing.get_args(hint) for cls in _enums_in(arg))


# Resolved once: the field annotations are strings (``from __future__ import annotations``).
_FIELD_ENUMS: Final = {
    cls: {name: _enums_in(hint) for name, hint in typing.get_type_hints(cls).items()}
    for cls in _EVENT_TYPES.values()
}


def _enum_to_json(member: enum.Enum) -> Any:
    # A wire code is stored by its lower-case name, not its number: records stay readable and
    # keep the meaning they were written with. NONE ("no cause") is "", as it always was.
    if isinstance(member, enum.IntEnum):
        return "" if member.name == "NONE" else member.name.lower()
    return member.value


@functools.cache
def _json_names(cls: type[enum.IntEnum]) -> dict[str, enum.IntEnum]:
    return {_enum_to_json(member): member for member in cls}


def _enum_from_json(classes: tuple[type[enum.Enum], ...], text: object) -> enum.Enum:
    """The member of one of ``classes`` that ``text`` names; ``ValueError`` if none does."""
    if not isinstance(text, str):
        raise ValueError(_not_a_name(classes, text))
    for cls in classes:
        if issubclass(cls, enum.IntEnum):
            named = _json_names(cls).get(text)
            if named is not None:
                return named
            unknown = _UNKNOWN_CODE.fullmatch(text)
            if unknown is not None:
                try:
                    member = cls(int(unknown.group(1), 16))  # an open enum keeps the code
                except ValueError:
                    continue
                if _enum_to_json(member) == text:
                    return member
        else:
            try:
                return cls(text)
            except ValueError:
                continue
    raise ValueError(_not_a_name(classes, text))


def _not_a_name(classes: tuple[type[enum.Enum], ...], text: object) -> str:
    shown = repr(text)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."  # a payload may be hostile
    return f"{shown} is not a name of {' or '.join(cls.__name__ for cls in classes)}"


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as JSON-ready data: ``{"type": "cue_fired", ...fields}``.

    Tuples become lists; a wire-code enum (an ``IntEnum``) its lower-case name
    (``"next_exercise"``; ``""`` for ``NONE``), any other enum its value, so
    ``json.dumps`` takes it as is and records read the same in every version.
    """
    data: dict[str, Any] = {"type": event_type_name(event)}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, enum.Enum):
            value = _enum_to_json(value)
        data[field.name] = value
    return data


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :func:`event_to_dict`'s output; ``ValueError`` if it is not one.

    Each enum field is read back by the type its dataclass declares, so an
    unknown name (a hostile or newer payload) is a ``ValueError`` naming the field.
    """
    try:
        cls = _TYPES_BY_SNAKE[data["type"]]
    except (KeyError, TypeError):
        raise ValueError(f"not an event: unknown type {data.get('type')!r}") from None
    enums = _FIELD_ENUMS[cls]
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            if field.default is dataclasses.MISSING:
                raise ValueError(f"{data['type']} event lacks the field {field.name!r}")
            continue
        value = data[field.name]
        if isinstance(value, list):
            value = tuple(value)
        if enums[field.name]:
            try:
                value = _enum_from_json(enums[field.name], value)
            except ValueError as exc:
                raise ValueError(f"{data['type']} event, field {field.name!r}: {exc}") from None
        kwargs[field.name] = value
    event: Event = cls(**kwargs)
    return event
