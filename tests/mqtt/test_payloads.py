"""Broker URLs, commands, payloads and Home Assistant discovery, checked without a broker."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.errors import BrokerError
from companion.mqtt import BrokerConfig, Outbox, Topics, discovery_payload, parse_command
from companion.mqtt.discovery import discovery_topic
from companion.mqtt.relay import next_backoff
from companion.mqtt.topics import COMMANDS, snapshot_from_state, state_payload
from companion.state import BandKind, CueMode, DeviceInfo
from tests.session.test_view import SNAPSHOT

DEVICE = DeviceInfo(
    band_id="SIM0001",
    name="Companion",
    address="F0:47:60:F3:9B:72",
    manufacturer="Companion Project",
    model="Virtual Band",
    firmware="1.0.0",
    serial="SIM0001",
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1", BrokerConfig("127.0.0.1", 1883)),
        ("mqtts://broker.lan", BrokerConfig("broker.lan", 8883, tls=True)),
        (
            "mqtt://me:p%40ss@10.0.0.2:1999",
            BrokerConfig("10.0.0.2", 1999, username="me", password="p@ss"),
        ),
    ],
)
def test_broker_urls(url: str, expected: BrokerConfig) -> None:
    assert BrokerConfig.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://broker", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "names no host"),
        ("mqtt://host:port", "port that is not a number"),
    ],
)
def test_bad_broker_urls_say_how_to_write_one(url: str, complaint: str) -> None:
    with pytest.raises(BrokerError, match=complaint):
        BrokerConfig.from_url(url)


def test_the_url_shown_never_contains_the_password() -> None:
    assert BrokerConfig.from_url("mqtt://me:secret@h:1").url == "mqtt://me@h:1"


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://u:pw-s3cret@host:notaport",
        "mqtt://u:pw-s3cret@host:99999",
        "http://u:pw-s3cret@host",
        "mqtt://u:pw-s3cret@:1883",
        "mqtt://u:pw-s3cret@[::1",
    ],
)
def test_a_bad_broker_url_never_shows_its_password(url: str) -> None:
    with pytest.raises(BrokerError) as raised:
        BrokerConfig.from_url(url)
    assert "pw-s3cret" not in str(raised.value)


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="does not exist"):
        BrokerConfig.from_url("mqtts://h", ca_file=tmp_path / "nope.pem")


@pytest.mark.parametrize(
    ("payload", "command"),
    [(b"pause", "pause"), (b" STOP\n", "stop"), (b'{"command": "resume"}', "resume")],
)
def test_commands_as_words_or_json(payload: bytes, command: str) -> None:
    assert parse_command(payload) == command


@given(st.binary(max_size=200))
def test_any_garbage_command_is_a_value_error_with_a_reason(payload: bytes) -> None:
    command: str | None = None
    reason = ""
    try:
        command = parse_command(payload)
    except ValueError as exc:
        reason = str(exc)
    if command is None:
        assert reason.strip()
    else:
        assert command in COMMANDS


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"command": ' + b"[" * 1000 + b"]" * 1000 + b"}", "at most 512"),
        (b'{"command": ' + b"[" * 200 + b"]" * 200 + b"}", "nested more than 4"),
        (b"[" * 200 + b"]" * 200, "nested more than 4"),
        (b'{"command": "' + b"[" * 300 + b'"}', "unknown command"),  # brackets in a string
        (b'{"command": "pause", "pad": "' + b"x" * 1_000_000 + b'"}', "at most 512"),
        (b'{"command": 1' + b"0" * 400 + b"}", '"command" string'),
    ],
)
def test_a_hostile_command_is_a_bounded_value_error(payload: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_command(payload)


@given(
    st.recursive(
        st.none() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=3), c),
    )
)
def test_any_json_command_is_a_command_or_a_value_error(value: object) -> None:
    payload = json.dumps({"command": value}).encode()
    command: str | None = None
    reason = ""
    try:
        command = parse_command(payload)
    except ValueError as exc:
        reason = str(exc)
    assert reason.strip() if command is None else command in COMMANDS


def test_the_backoff_doubles_while_attempts_fail_and_starts_over_after_a_connection_held() -> None:
    delays = [0.05]
    for _ in range(8):  # a broker that accepts and drops at once: no reset
        delays.append(next_backoff(delays[-1], held_s=0.5))
    assert delays[1:] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert next_backoff(5.0, held_s=60.0) == 0.1  # one drop after a minute of service


def _discovery() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(discovery_payload(DEVICE, Topics.for_band("SIM0001")))
    return data


def test_discovery_has_the_keys_home_assistant_requires() -> None:
    data = _discovery()
    assert data["dev"]["ids"] == ["companion_SIM0001"]
    assert data["dev"]["mf"] == "Companion Project"
    assert data["dev"]["sw"] == "1.0.0"
    assert data["dev"]["cns"] == [["bluetooth", "f0:47:60:f3:9b:72"]]
    assert data["o"]["name"] == "companion"
    unique_ids = [component["unique_id"] for component in data["cmps"].values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for component in data["cmps"].values():
        assert component["p"] in {"sensor", "binary_sensor", "button"}
        assert component["qos"] == 1  # not inherited from the device level


def test_discovery_entities_cover_the_session() -> None:
    components = _discovery()["cmps"]
    assert components["heart_rate"]["unit_of_measurement"] == "bpm"
    assert components["heart_rate"]["state_class"] == "measurement"
    assert components["battery"]["device_class"] == "battery"
    assert components["link"]["device_class"] == "connectivity"
    assert components["time_left"]["unit_of_measurement"] == "s"
    enum = components["session_state"]
    assert enum["device_class"] == "enum"
    assert "unit_of_measurement" not in enum  # HA rejects options with a unit
    assert {"exercise", "round"} <= components.keys()
    buttons = {k for k, c in components.items() if c["p"] == "button"}
    assert buttons == {"start", "pause", "resume", "stop"}


def test_every_topic_in_discovery_is_one_the_relay_publishes_or_obeys() -> None:
    topics = Topics.for_band("SIM0001")
    data = _discovery()
    assert data["availability_topic"] == topics.availability
    for component in data["cmps"].values():
        if component["p"] == "button":
            assert component["command_topic"] == topics.cmd
            assert parse_command(component["payload_press"].encode()) == component["payload_press"]
        else:
            assert component["state_topic"] == topics.state
    assert discovery_topic("SIM0001") == "homeassistant/device/companion_SIM0001/config"


def test_outbox_keeps_order_and_replays_recently_acknowledged(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", owner="a") as outbox:
        ids = [outbox.put("t", str(n).encode()) for n in range(5)]
        outbox.ack(ids[0])
        outbox.ack(ids[1])
        assert [m.id for m in outbox.pending()] == ids[2:]
        assert outbox.replay_recent(60) == 2
        assert [m.payload for m in outbox.pending()] == [str(n).encode() for n in range(5)]
    with Outbox(tmp_path / "o.sqlite3", owner="b") as other:
        assert other.pending() == []  # each relay reads only its own rows


def test_a_checkpointed_outbox_does_not_ask_for_another_checkpoint(tmp_path: Path) -> None:
    # Every relay on the file checks this once a second: a WAL left at its old size after a
    # checkpoint would have each of them checkpoint again and again.
    with (
        Outbox(tmp_path / "o.sqlite3", owner="a") as outbox,
        Outbox(tmp_path / "o.sqlite3", owner="b") as other,
    ):
        for _ in range(300):
            outbox.put("t", bytes(4096))
        assert outbox.needs_checkpoint()
        assert other.needs_checkpoint()
        outbox.checkpoint()
        assert not other.needs_checkpoint()  # nothing written since: not again
        other.put("t", b"one more")
        assert not outbox.needs_checkpoint()  # that write truncated the WAL
        assert outbox.pending_count() == 300


@pytest.mark.parametrize(
    ("kind", "mode", "model"),
    [
        (BandKind.COMPANION, CueMode.BAND, "companion band"),
        (BandKind.INFINITIME, CueMode.HOST, "InfiniTime watch"),
        (BandKind.BANGLE, CueMode.HOST, "Bangle.js"),
        (BandKind.HR_STRAP, CueMode.SCREEN, "heart-rate sensor"),
    ],
)
def test_state_and_discovery_say_the_kind_and_where_the_cues_are(
    kind: BandKind, mode: CueMode, model: str
) -> None:
    snapshot = dataclasses.replace(SNAPSHOT, kind=kind, cue_mode=mode)
    data = json.loads(state_payload(snapshot))
    assert (data["kind"], data["cue_mode"]) == (kind.value, mode.value)
    assert snapshot_from_state(state_payload(snapshot)) == snapshot
    device = dataclasses.replace(DEVICE, model="", kind=kind)
    discovery = json.loads(discovery_payload(device, Topics.for_band("SIM0001")))
    assert discovery["dev"]["mdl"] == model
    entity = discovery["cmps"]["cue_mode"]
    assert entity["value_template"] == "{{ value_json.cue_mode }}"
    assert mode.value in entity["options"]


def test_a_state_from_before_kinds_reads_as_a_companion_band() -> None:
    data = json.loads(state_payload(SNAPSHOT))
    del data["kind"], data["cue_mode"]
    old = snapshot_from_state(json.dumps(data).encode())
    assert (old.kind, old.cue_mode) == (BandKind.COMPANION, CueMode.BAND)


def test_a_state_with_an_unknown_kind_is_refused_not_crashed_on() -> None:
    data = json.loads(state_payload(SNAPSHOT))
    data["kind"] = "toaster"
    with pytest.raises(ValueError, match="not a companion state message"):
        snapshot_from_state(json.dumps(data).encode())
