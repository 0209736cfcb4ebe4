"""A class's topic tree across hosts and the JSON on each topic: pure, no I/O.

Under ``<root>/class/<class id>`` (default root ``companion``)::

    announce              retained  the plan (TOML) and the coordinator's name
    start                 retained  the start instant (UTC seconds), or why it was refused;
                                    after each control, where that left the timeline
    control               QoS 1     pause / resume / skip / stop at a UTC instant, numbered
    cmd                   inbound   a dashboard's command for the whole class
    state                 retained  the whole class (the class screen's JSON), about 1/s
    event                 QoS 1     class events: started, joined, stopped, ended
    hosts/<host>          retained  a host's state, bands, links, clock offset; will: offline
    hosts/<host>/participants  retained  the participants that host runs, about 1/s
    time/<host>/ask       QoS 0     a host's clock exchange with the coordinator ...
    time/<host>/answer    QoS 0     ... and the coordinator's answer
    band/<band id>/event  QoS 1     each participant's session events (as a lone band's ``event``)

Everything here is read from a broker that anyone with its password can
publish on: every parser bounds the payload, checks every field's type and
range, and raises :class:`ClassMessageError` (a ``ValueError``) with the reason
for anything else. The plan in ``announce`` goes through the plan file's own
validator.
"""

from __future__ import annotations

import enum
import json
import math
import re
import tomllib
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

from ..errors import PlanError
from ..group_state import ClassSnapshot, ParticipantSnapshot, heart_zone
from ..plan import Plan, parse_plan, plan_to_toml
from ..state import BandKind, CueMode, SessionCommand, SessionPhase

__all__ = [
    "CLASS_SCHEMA_VERSION",
    "ClassAnnouncement",
    "ClassControl",
    "ClassMessageError",
    "ClassStart",
    "ClassTopics",
    "HostState",
    "HostStatus",
    "TimeAnswer",
    "TimeAsk",
    "as_name",
    "check_name",
    "participants_from_payload",
    "participants_payload",
]

CLASS_SCHEMA_VERSION: Final = 1
_MAX_PAYLOAD: Final = 64 * 1024  # a 20-step plan is ~2 KB; 30 participants ~10 KB
_MAX_PARTICIPANTS: Final = 500
_E = TypeVar("_E", bound=enum.Enum)
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_NOT_IN_NAME: Final = re.compile(r"[^A-Za-z0-9_.:-]")


class ClassMessageError(ValueError):
    """A class message that is not what its topic carries (the reason is the message)."""


def check_name(what: str, name: str) -> str:
    """``name`` if it is safe as one topic level (letters, digits, ``_ . : -``; ≤ 64)."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} cannot be a topic level: use 1-64 letters, digits, '_', '.', ':' "
            "or '-', starting with a letter or digit"
        )
    return name


def as_name(text: str, fallback: str) -> str:
    """``text`` made a name :func:`check_name` takes (other characters become ``-``), or
    ``fallback`` when nothing of it is left."""
    name = _NOT_IN_NAME.sub("-", text).lstrip("_.:-")[:64].rstrip("-")
    return name or fallback


@dataclass(frozen=True, slots=True)
class ClassTopics:
    """Every topic of one class."""

    class_id: str
    root: str = "companion"

    @property
    def base(self) -> str:
        return f"{self.root.rstrip('/')}/class/{self.class_id}"

    @property
    def announce(self) -> str:
        return f"{self.base}/announce"

    @property
    def start(self) -> str:
        return f"{self.base}/start"

    @property
    def control(self) -> str:
        return f"{self.base}/control"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    def host(self, host: str) -> str:
        return f"{self.base}/hosts/{host}"

    def participants(self, host: str) -> str:
        return f"{self.base}/hosts/{host}/participants"

    def time_ask(self, host: str) -> str:
        return f"{self.base}/time/{host}/ask"

    def time_answer(self, host: str) -> str:
        return f"{self.base}/time/{host}/answer"

    def band_event(self, band_id: str) -> str:
        return f"{self.base}/band/{band_id}/event"

    def host_of(self, topic: str) -> str | None:
        """The host a ``hosts/<host>``, ``hosts/<host>/participants`` or ``time/<host>/ask``
        topic is about, or ``None``."""
        rest = topic.removeprefix(self.base + "/").split("/")
        if len(rest) in (2, 3) and rest[0] in ("hosts", "time") and _NAME.fullmatch(rest[1]):
            return rest[1]
        return None


class HostState(enum.StrEnum):
    """Where a host is in the class."""

    PREPARING = "preparing"  # connecting its bands, pushing the plan
    READY = "ready"  # prepared and its clock measured: waiting for the start
    RUNNING = "running"
    DONE = "done"
    REFUSED = "refused"  # it could not take part (the reason is in ``note``)
    OFFLINE = "offline"  # its will: the broker lost it


@dataclass(frozen=True, slots=True)
class ClassAnnouncement:
    """The class as the coordinator publishes it: the plan and who coordinates."""

    class_id: str
    coordinator: str
    plan: Plan


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One host's part: its state, its bands and links, and its clock against the coordinator's.

    ``offset_us``: the coordinator's UTC minus this host's, ± ``uncertainty_us`` (a bound
    measured over the broker); ``None`` for the coordinator and before measuring.
    """

    host: str
    state: HostState
    bands: int = 0
    links: int = 0
    prepared_s: float = 0.0
    offset_us: int | None = None
    uncertainty_us: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ClassStart:
    """The start instant (UTC seconds), or, with ``refused``, why the class will not start.

    The coordinator publishes it again after each control (``seq``), with where that left
    the class timeline: ``elapsed_s`` (class seconds, pauses left out) at ``at_utc``, and
    standing still there while ``paused``. Controls are not retained, so this is how a host
    that arrives after some knows where the class is.
    """

    start_utc: float | None
    refused: str = ""
    seq: int = 0
    at_utc: float | None = None  # None: no control yet, the timeline runs from start_utc
    elapsed_s: float = 0.0
    paused: bool = False


@dataclass(frozen=True, slots=True)
class ClassControl:
    """A command for every host, effective at the UTC instant ``at_utc``."""

    seq: int
    command: SessionCommand
    at_utc: float


@dataclass(frozen=True, slots=True)
class TimeAsk:
    """A host's clock exchange: its UTC when it sent this, in microseconds."""

    n: int
    t1_us: int


@dataclass(frozen=True, slots=True)
class TimeAnswer:
    """The coordinator's answer: the ask's stamp, and the coordinator's UTC on receipt."""

    n: int
    t1_us: int
    t2_us: int


# -- encoding --------------------------------------------------------------------------------


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def encode(
    message: ClassAnnouncement | HostStatus | ClassStart | ClassControl | TimeAsk | TimeAnswer,
) -> bytes:
    """The JSON a message travels as."""
    match message:
        case ClassAnnouncement():
            return _dumps(
                {
                    "v": CLASS_SCHEMA_VERSION,
                    "class_id": message.class_id,
                    "coordinator": message.coordinator,
                    "plan": plan_to_toml(message.plan),
                }
            )
        case HostStatus():
            return _dumps(
                {
                    "v": CLASS_SCHEMA_VERSION,
                    "host": message.host,
                    "state": message.state.value,
                    "bands": message.bands,
                    "links": message.links,
                    "prepared_s": round(message.prepared_s, 3),
                    "offset_us": message.offset_us,
                    "uncertainty_us": message.uncertainty_us,
                    "note": message.note,
                }
            )
        case ClassStart():
            return _dumps(
                {
                    "v": CLASS_SCHEMA_VERSION,
                    "start_utc": message.start_utc,
                    "refused": message.refused,
                    "seq": message.seq,
                    "at_utc": message.at_utc,
                    "elapsed_s": message.elapsed_s,
                    "paused": message.paused,
                }
            )
        case ClassControl():
            return _dumps(
                {
                    "v": CLASS_SCHEMA_VERSION,
                    "seq": message.seq,
                    "command": message.command.value,
                    "at_utc": message.at_utc,
                }
            )
        case TimeAsk():
            return _dumps({"n": message.n, "t1": message.t1_us})
        case TimeAnswer():
            return _dumps({"n": message.n, "t1": message.t1_us, "t2": message.t2_us})


def participants_payload(participants: tuple[ParticipantSnapshot, ...], sent_utc: float) -> bytes:
    """A host's participants now (``seen_s_ago`` is as of ``sent_utc``)."""
    return _dumps(
        {
            "v": CLASS_SCHEMA_VERSION,
            "sent_utc": sent_utc,
            "participants": [
                {
                    "band_id": p.band_id,
                    "name": p.name,
                    "kind": p.kind.value,
                    "cue_mode": p.cue_mode.value,
                    "phase": p.phase.value,
                    "heart_rate": p.heart_rate,
                    "heart_rate_age_s": p.heart_rate_age_s,
                    "max_hr": p.max_hr,
                    "battery": p.battery,
                    "link_up": p.link_up,
                    "seen_s_ago": p.seen_s_ago,
                    "last_cue_error_ms": p.last_cue_error_ms,
                    "cues_fired": p.cues_fired,
                    "cues_missed": p.cues_missed,
                }
                for p in participants
            ],
        }
    )


# -- parsing ---------------------------------------------------------------------------------


def _load(payload: bytes) -> dict[str, Any]:
    if len(payload) > _MAX_PAYLOAD:
        raise ClassMessageError(f"the payload is {len(payload)} bytes; at most {_MAX_PAYLOAD}")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise ClassMessageError("the payload is not JSON") from None
    if not isinstance(data, dict):
        raise ClassMessageError("the payload is not a JSON object")
    version = data.get("v", CLASS_SCHEMA_VERSION)
    if version != CLASS_SCHEMA_VERSION:
        raise ClassMessageError(
            f"schema version {version!r}; this host reads {CLASS_SCHEMA_VERSION}: run the same "
            "companion version on every host of a class"
        )
    return data


def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ClassMessageError(f"{key!r} is missing or not a {getattr(kind, '__name__', kind)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ClassMessageError(f"{key!r} is not a finite number")
    return value


def _optional(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    return None if data.get(key) is None else _field(data, key, kind)


def _count(data: dict[str, Any], key: str, limit: int = 1 << 31) -> int:
    value: int = _field(data, key, int)
    if not 0 <= value <= limit:
        raise ClassMessageError(f"{key!r} is out of range: {value}")
    return value


def _enum(data: dict[str, Any], key: str, kind: type[_E]) -> _E:
    value = _field(data, key, str)
    try:
        return kind(value)
    except ValueError:
        raise ClassMessageError(
            f"{key!r} is not one of {', '.join(str(k.value) for k in kind)}"
        ) from None


def parse_announcement(payload: bytes) -> ClassAnnouncement:
    """The class's ``announce`` message; the plan is validated as a plan file is."""
    data = _load(payload)
    class_id = _field(data, "class_id", str)
    coordinator = _field(data, "coordinator", str)
    try:
        check_name("the class id", class_id)
        check_name("the coordinator's name", coordinator)
        plan = parse_plan(tomllib.loads(_field(data, "plan", str)), "the class's plan")
    except (ValueError, PlanError) as exc:  # TOMLDecodeError is a ValueError
        raise ClassMessageError(str(exc)) from None
    return ClassAnnouncement(class_id, coordinator, plan)


def parse_host_status(payload: bytes) -> HostStatus:
    """A ``hosts/<host>`` message (the will, ``offline``, is JSON too)."""
    data = _load(payload)
    host = _field(data, "host", str)
    try:
        check_name("the host's name", host)
    except ValueError as exc:
        raise ClassMessageError(str(exc)) from None
    prepared = float(_field(data, "prepared_s", (int, float)))
    if not 0 <= prepared <= 3600:
        raise ClassMessageError(f"'prepared_s' is out of range: {prepared}")
    offset = _optional(data, "offset_us", int)
    uncertainty = _optional(data, "uncertainty_us", int)
    if (offset is None) != (uncertainty is None) or (uncertainty is not None and uncertainty < 0):
        raise ClassMessageError("'offset_us' and 'uncertainty_us' come together, the latter ≥ 0")
    note = _field(data, "note", str)
    return HostStatus(
        host=host,
        state=_enum(data, "state", HostState),
        bands=_count(data, "bands", _MAX_PARTICIPANTS),
        links=_count(data, "links", 1000),
        prepared_s=prepared,
        offset_us=offset,
        uncertainty_us=uncertainty,
        note=note[:500],
    )


def parse_start(payload: bytes) -> ClassStart:
    """The ``start`` message: an instant (and where the timeline is), or a refusal."""
    data = _load(payload)
    start = _optional(data, "start_utc", (int, float))
    refused = _field(data, "refused", str)[:1000]
    if (start is None) == (not refused):
        raise ClassMessageError("a start has either 'start_utc' or a 'refused' reason")
    # The timeline fields came later: a start without them has had no control yet.
    at = _optional(data, "at_utc", (int, float))
    elapsed = float(_field(data, "elapsed_s", (int, float))) if "elapsed_s" in data else 0.0
    paused = _field(data, "paused", bool) if "paused" in data else False
    return ClassStart(
        None if start is None else float(start),
        refused,
        seq=_count(data, "seq") if "seq" in data else 0,
        at_utc=None if at is None else float(at),
        elapsed_s=elapsed,
        paused=paused,
    )


def parse_control(payload: bytes) -> ClassControl:
    """A ``control`` message."""
    data = _load(payload)
    return ClassControl(
        seq=_count(data, "seq"),
        command=_enum(data, "command", SessionCommand),
        at_utc=float(_field(data, "at_utc", (int, float))),
    )


def parse_time_ask(payload: bytes) -> TimeAsk:
    """A host's clock exchange."""
    data = _load(payload)
    return TimeAsk(_count(data, "n"), _field(data, "t1", int))


def parse_time_answer(payload: bytes) -> TimeAnswer:
    """The coordinator's answer to a clock exchange."""
    data = _load(payload)
    return TimeAnswer(_count(data, "n"), _field(data, "t1", int), _field(data, "t2", int))


def participants_from_payload(payload: bytes) -> tuple[tuple[ParticipantSnapshot, ...], float]:
    """A ``hosts/<host>/participants`` message: the participants and when it was sent (UTC)."""
    data = _load(payload)
    sent = float(_field(data, "sent_utc", (int, float)))
    rows = _field(data, "participants", list)
    if len(rows) > _MAX_PARTICIPANTS:
        raise ClassMessageError(f"{len(rows)} participants; at most {_MAX_PARTICIPANTS}")
    out = []
    for row in rows:
        if not isinstance(row, dict):
            raise ClassMessageError("a participant is not a JSON object")
        heart = _optional(row, "heart_rate", int)
        max_hr = _count(row, "max_hr", 300) or 1
        battery = _optional(row, "battery", int)
        seen = _optional(row, "seen_s_ago", (int, float))
        heart_age = _optional(row, "heart_rate_age_s", (int, float))
        error = _optional(row, "last_cue_error_ms", (int, float))
        out.append(
            ParticipantSnapshot(
                band_id=_field(row, "band_id", str)[:64],
                name=_field(row, "name", str)[:64],
                kind=_enum(row, "kind", BandKind),
                cue_mode=_enum(row, "cue_mode", CueMode),
                phase=_enum(row, "phase", SessionPhase),
                heart_rate=heart,
                max_hr=max_hr,
                zone=heart_zone(heart, max_hr),
                battery=battery,
                link_up=_field(row, "link_up", bool),
                seen_s_ago=None if seen is None else float(seen),
                last_cue_error_ms=None if error is None else float(error),
                cues_fired=_count(row, "cues_fired", 100_000),
                cues_missed=_count(row, "cues_missed", 100_000),
                heart_rate_age_s=None if heart_age is None else float(heart_age),
            )
        )
    return tuple(out), sent


def with_participants(
    snapshot: ClassSnapshot, participants: tuple[ParticipantSnapshot, ...]
) -> ClassSnapshot:
    """``snapshot`` with ``participants`` after its own (the other hosts' bands)."""
    return replace(snapshot, participants=snapshot.participants + participants)
