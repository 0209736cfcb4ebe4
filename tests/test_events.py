"""Events carry enums; their JSON stays what the store and MQTT have always held."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import firmware_protocol as fp
from companion.events import (
    BandStateChanged,
    ButtonPressed,
    CueFired,
    CueProblem,
    CueTiming,
    CueWarning,
    Event,
    InferredStopCause,
    SessionEvent,
    StepStarted,
    event_from_dict,
    event_to_dict,
)
from companion.mqtt.topics import event_from_payload, event_payload
from companion.plan import builtin_plan
from companion.store import Store

# Records exactly as the previous version (lower-case strings in the events) wrote them.
OLD_RECORDS: list[dict[str, Any]] = [
    {
        "type": "cue_fired",
        "cue_id": 3,
        "kind": "next_exercise",
        "round": 1,
        "step_index": 1,
        "planned": 60.5,
        "fired": 60.502,
        "speed": 1.0,
        "offset_s": 60.0,
        "timing": "band",
    },
    {
        "type": "cue_fired",
        "cue_id": 65535,
        "kind": "stopped",
        "round": 2,
        "step_index": -1,
        "planned": 90.0,
        "fired": 90.01,
        "speed": 10.0,
        "offset_s": None,
        "timing": "host",
    },
    {
        "type": "cue_warning",
        "cue_id": 4,
        "kind": "switch_side",
        "problem": "late",
        "error_ms": 81.5,
        "t": 75.0,
    },
    {
        "type": "cue_warning",
        "cue_id": 5,
        "kind": "round_done",
        "problem": "missing",
        "error_ms": None,
        "t": 80.0,
    },
    {
        "type": "cue_warning",
        "cue_id": 6,
        "kind": "countdown",
        "problem": "missed",
        "error_ms": None,
        "t": 81.0,
    },
    {"type": "button_pressed", "button": "pain", "t": 12.0},
    {
        "type": "step_started",
        "round": 1,
        "step_index": 0,
        "name": "Plank",
        "kind": "exercise",
        "duration_s": 30.0,
        "tip": "",
        "t": 0.5,
    },
    {
        "type": "step_started",
        "round": 1,
        "step_index": 1,
        "name": "Breathe",
        "kind": "rest",
        "duration_s": 10.0,
        "tip": "",
        "t": 30.5,
    },
    *(
        {
            "type": "band_state_changed",
            "state": state,
            "round": 2,
            "step_index": -1,
            "shift_s": 1.5,
            "cause": cause,
            "t": 99.0,
        }
        for state, cause in [
            ("running", ""),
            ("round_rest", ""),
            ("paused", ""),
            ("done", ""),
            ("stopped", "button"),
            ("stopped", "pain"),
            ("stopped", "host"),
            ("stopped", "reboot"),
        ]
    ),
]


@pytest.mark.parametrize("old", OLD_RECORDS, ids=lambda d: f"{d['type']}-{d.get('kind', '')}")
def test_an_event_written_as_strings_reads_back_as_enums_and_writes_the_identical_dict(
    old: dict[str, Any],
) -> None:
    event = event_from_dict(old)

    assert event_to_dict(event) == old
    assert json.dumps(event_to_dict(event)) == json.dumps(old)  # byte for byte, key order too


def test_old_records_carry_the_protocol_enums_and_the_host_ones() -> None:
    events = [event_from_dict(old) for old in OLD_RECORDS]

    cue = events[0]
    assert isinstance(cue, CueFired)
    assert cue.kind is fp.CueKind.NEXT_EXERCISE
    assert cue.timing is CueTiming.BAND
    warnings = [e for e in events if isinstance(e, CueWarning)]
    assert [w.problem for w in warnings] == [CueProblem.LATE, CueProblem.MISSING, CueProblem.MISSED]
    assert [w.kind for w in warnings] == [
        fp.CueKind.SWITCH_SIDE,
        fp.CueKind.ROUND_DONE,
        fp.CueKind.COUNTDOWN,
    ]
    assert [e.button for e in events if isinstance(e, ButtonPressed)] == [fp.Button.PAIN]
    assert [e.kind for e in events if isinstance(e, StepStarted)] == [
        fp.StepKind.EXERCISE,
        fp.StepKind.REST,
    ]
    states = [e for e in events if isinstance(e, BandStateChanged)]
    assert states[0].state is fp.SessionStateCode.RUNNING
    assert states[0].cause is fp.StopCause.NONE
    assert [s.cause for s in states if s.state is fp.SessionStateCode.STOPPED] == [
        fp.StopCause.BUTTON,
        fp.StopCause.PAIN,
        fp.StopCause.HOST,
        InferredStopCause.REBOOT,
    ]


def test_a_session_database_of_the_previous_version_loads(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with Store(path) as store:
        store.begin_session("old-session", "band1", builtin_plan("back-5"), datetime.now(UTC))
    at = datetime(2024, 5, 1, 7, 0, tzinfo=UTC).isoformat()
    with sqlite3.connect(path) as db:  # rows as the previous version wrote them
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            [
                ("old-session", number, at, old["type"], json.dumps(old))
                for number, old in enumerate(OLD_RECORDS, 1)
            ],
        )
    db.close()

    with Store(path) as store:
        loaded = [e.event for e in store.events("old-session")]

    assert [event_to_dict(e) for e in loaded] == OLD_RECORDS


def test_an_open_protocol_code_this_host_does_not_know_survives_the_round_trip() -> None:
    newer = CueFired(7, fp.CueKind(0x09), 1, 0, 1.0, 1.001)  # from newer firmware
    data = event_to_dict(newer)

    assert data["kind"] == "unknown_0x09"
    assert event_from_dict(data) == newer


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "next_exercize"),
        ("kind", "NEXT_EXERCISE"),  # the names are written in lower case, and read so
        ("kind", 1),  # by name, never by number
        ("kind", None),
        ("kind", "unknown_0x01"),  # a known code has its own name
        ("kind", "unknown_0x100"),
        ("timing", "wrist"),
    ],
)
def test_an_unknown_enum_name_is_a_value_error_naming_the_field(field: str, value: object) -> None:
    data = {**OLD_RECORDS[0], field: value}

    with pytest.raises(ValueError, match=f"field {field!r}"):
        event_from_dict(data)


def test_a_stop_cause_no_band_and_no_host_knows_is_a_value_error() -> None:
    data = {**OLD_RECORDS[-1], "cause": "meteor"}

    with pytest.raises(ValueError, match="StopCause or InferredStopCause"):
        event_from_dict(data)


def test_a_hostile_event_payload_on_mqtt_is_a_value_error() -> None:
    numbered = SessionEvent("band1", "s1", 1, datetime.now(UTC), event_from_dict(OLD_RECORDS[5]))
    payload = json.loads(event_payload(numbered))
    payload["button"] = "self_destruct" * 1000

    with pytest.raises(ValueError, match="not a companion event message") as raised:
        event_from_payload(json.dumps(payload).encode())
    assert len(str(raised.value)) < 200  # a log line, not the payload


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.builds(CueFired, planned=_FLOATS, fired=_FLOATS, speed=st.just(1.0)),
    st.builds(CueWarning, error_ms=st.none() | _FLOATS, t=_FLOATS),
    st.builds(ButtonPressed, t=_FLOATS),
    st.builds(BandStateChanged, shift_s=_FLOATS, t=_FLOATS),
    st.builds(StepStarted, duration_s=_FLOATS, t=_FLOATS),
)


@given(_EVENTS)
def test_every_enum_of_an_event_survives_json(event: Event) -> None:
    data = json.loads(json.dumps(event_to_dict(event)))

    assert event_from_dict(data) == event
