"""The relay's topic tree and the JSON on each topic.

Under a prefix (default ``companion/<band id>``)::

    state         retained  the live session (see :func:`state_payload`)
    event         QoS 1     every session event (see :func:`event_payload`)
    hr            QoS 0     one heart-rate sample per message (optional)
    availability  retained  "online" / "offline" (the last will)
    cmd           inbound   start, pause, resume, stop, skip
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ..events import HeartRate, SessionEvent, event_from_dict, event_to_dict
from ..state import BandKind, CueMode, SessionCommand, SessionPhase, SessionSnapshot

__all__ = [
    "COMMANDS",
    "MAX_COMMAND_BYTES",
    "MAX_COMMAND_DEPTH",
    "OFFLINE",
    "ONLINE",
    "SCHEMA_VERSION",
    "Topics",
    "event_from_payload",
    "event_payload",
    "heart_rate_payload",
    "parse_command",
    "snapshot_from_state",
    "state_payload",
]

SCHEMA_VERSION: Final = 1
ONLINE: Final = "online"
OFFLINE: Final = "offline"
COMMANDS: Final = tuple(SessionCommand)
MAX_COMMAND_BYTES: Final = 512  # {"command": "resume"} is 21: room for a few more fields
MAX_COMMAND_DEPTH: Final = 4


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one band under ``prefix``."""

    prefix: str

    @classmethod
    def for_band(cls, band_id: str, root: str = "companion") -> Topics:
        """The default tree: ``<root>/<band id>/...``."""
        return cls(f"{root.rstrip('/')}/{band_id}")

    @property
    def state(self) -> str:
        return f"{self.prefix}/state"

    @property
    def event(self) -> str:
        return f"{self.prefix}/event"

    @property
    def hr(self) -> str:
        return f"{self.prefix}/hr"

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def cmd(self) -> str:
        return f"{self.prefix}/cmd"


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def event_payload(event: SessionEvent) -> bytes:
    """``{"schema": 1, "band_id", "session_id", "number", "time", "type", ...fields}``.

    ``number`` grows by one per event within a session: subscribers drop a
    message whose ``(band_id, session_id, number)`` they have already seen,
    because delivery is at least once.
    """
    fields = event_to_dict(event.event)
    return _dumps(
        {
            "schema": SCHEMA_VERSION,
            "band_id": event.band_id,
            "session_id": event.session_id,
            "number": event.number,
            "time": event.at.isoformat(),
            **fields,
        }
    )


def state_payload(snapshot: SessionSnapshot, *, include_heart_rate: bool = True) -> bytes:
    """The retained state: what a dashboard shows, readable without any history.

    ``heart_rate`` is ``null`` when there is no fresh sample (never a stale
    value shown as live) or when heart rate publishing is turned off.
    """
    return _dumps(
        {
            "schema": SCHEMA_VERSION,
            "band_id": snapshot.band_id,
            "session_id": snapshot.session_id,
            "plan": snapshot.plan,
            "state": snapshot.phase.value,
            "exercise": snapshot.exercise,
            "tip": snapshot.tip,
            "next": snapshot.next_exercise,
            "round": snapshot.round,
            "rounds": snapshot.rounds,
            "step": snapshot.step_index + 1,
            "steps": snapshot.step_count,
            "time_left_s": round(snapshot.step_remaining_s, 1),
            "step_s": round(snapshot.step_duration_s, 1),
            "elapsed_s": round(snapshot.elapsed_s, 1),
            "total_s": round(snapshot.total_s, 1),
            "heart_rate": snapshot.heart_rate if include_heart_rate else None,
            "battery": snapshot.battery,
            "link": "up" if snapshot.link_up else "down",
            "notes": list(snapshot.notes),
            "kind": snapshot.kind.value,
            "cue_mode": snapshot.cue_mode.value,
        }
    )


def snapshot_from_state(payload: bytes) -> SessionSnapshot:
    """Rebuild a snapshot from a ``state`` message; ``ValueError`` if it is not one."""
    try:
        data = json.loads(payload)
        return SessionSnapshot(
            band_id=data["band_id"],
            session_id=data["session_id"],
            plan=data["plan"],
            phase=SessionPhase(data["state"]),
            round=data["round"],
            rounds=data["rounds"],
            step_index=data["step"] - 1,
            step_count=data["steps"],
            exercise=data["exercise"],
            tip=data["tip"],
            step_remaining_s=data["time_left_s"],
            step_duration_s=data.get("step_s", 0.0),
            next_exercise=data["next"],
            elapsed_s=data["elapsed_s"],
            total_s=data["total_s"],
            heart_rate=data["heart_rate"],
            battery=data["battery"],
            link_up=data["link"] == "up",
            notes=tuple(data.get("notes", ())),
            # Absent from a state written before kinds existed: a companion band's.
            kind=BandKind(data.get("kind", BandKind.COMPANION)),
            cue_mode=CueMode(data.get("cue_mode", CueMode.BAND)),
        )
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a companion state message: {exc}") from None


def event_from_payload(payload: bytes) -> SessionEvent:
    """Rebuild a session event from an ``event`` message; ``ValueError`` if it is not one."""
    try:
        data = json.loads(payload)
        return SessionEvent(
            band_id=data.pop("band_id"),
            session_id=data.pop("session_id"),
            number=data.pop("number"),
            at=datetime.fromisoformat(data.pop("time")),
            event=event_from_dict(data),
        )
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a companion event message: {exc}") from None


def heart_rate_payload(event: SessionEvent, sample: HeartRate) -> bytes:
    """One sample on ``hr``: ``{"bpm", "rr_ms", "contact", "time"}``."""
    return _dumps(
        {
            "bpm": sample.bpm,
            "rr_ms": list(sample.rr_ms),
            "contact": sample.contact,
            "time": event.at.isoformat(),
        }
    )


def parse_command(payload: bytes) -> SessionCommand:
    """The command in a ``cmd`` message: ``pause`` or ``{"command": "pause"}``.

    Raises ``ValueError`` with the reason for anything else. Anyone who can
    publish on the broker can send anything here, so the payload is bounded
    (:data:`MAX_COMMAND_BYTES`, :data:`MAX_COMMAND_DEPTH`) before it is parsed:
    no payload can cost more than a bounded parse or raise anything else.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        raise ValueError(
            f"the payload is {len(payload)} bytes; a command is at most {MAX_COMMAND_BYTES}"
        )
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError("the payload is not UTF-8 text") from None
    if text.startswith(("{", "[")):
        if _nesting(text) > MAX_COMMAND_DEPTH:
            raise ValueError(
                f"the JSON is nested more than {MAX_COMMAND_DEPTH} levels; "
                'send {"command": "pause"}'
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ValueError(f"the payload is not valid JSON: {reason}") from None
        command = data.get("command") if isinstance(data, dict) else None
        if not isinstance(command, str):
            raise ValueError('a JSON command needs a "command" string, e.g. {"command": "pause"}')
        text = command
    try:
        return SessionCommand(text.lower())
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"unknown command {shown!r}; send one of {', '.join(COMMANDS)}") from None


def _nesting(text: str) -> int:
    """How deep ``[`` and ``{`` nest in JSON text, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
