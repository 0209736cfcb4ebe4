"""The relay end to end: a virtual band's session, a real broker, a dashboard subscriber."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiomqtt
import pytest

from companion.clock import LoopClock
from companion.errors import BrokerError
from companion.kinds import connect_for_session
from companion.mqtt import BrokerConfig, Outbox, Relay, Topics, discovery_topic, remove_discovery
from companion.session import Session
from companion.sim import InfiniTimeConfig, VirtualWorld
from companion.store import Store

from .conftest import SHORT_PLAN, Mosquitto, Subscriber, sim_session, subscribed


def _types(events: list[dict[str, object]]) -> list[object]:
    return [event["type"] for event in events]


async def test_subscriber_sees_every_event_once_in_order_and_the_final_state(
    broker: BrokerConfig, tmp_path: Path
) -> None:
    async with sim_session(tmp_path) as session:
        prefix = Topics.for_band(session.band_id).prefix
        async with subscribed(broker, prefix) as dashboard:
            async with Relay(session, broker, outbox=tmp_path / "outbox.sqlite3"):
                await session.run()
            await dashboard.wait_for("availability", b"offline")
        recorded = session.store.events(session.session_id) if session.store else []

    events = dashboard.events()
    assert [e["number"] for e in events] == list(range(1, len(recorded) + 1))
    assert _types(events) == [r.type for r in recorded]
    assert {e["session_id"] for e in events} == {session.session_id}
    assert all(e["schema"] == 1 and e["band_id"] == session.band_id for e in events)
    assert _types(events)[-1] == "session_done"
    assert _types(events).count("round_done") == 2
    assert "heart_rate" in _types(events)

    final = dashboard.payloads("state")[-1]
    assert isinstance(final, dict)
    assert final["state"] == "done"
    assert final["round"] == 2
    assert final["rounds"] == 2
    assert final["plan"] == "short"
    assert dashboard.payloads("availability")[0] == b"online"
    hr = dashboard.payloads("hr")
    assert hr
    assert all(isinstance(s, dict) and 30 <= s["bpm"] <= 220 for s in hr)


async def test_heart_rate_can_be_kept_off_the_broker(broker: BrokerConfig, tmp_path: Path) -> None:
    async with sim_session(tmp_path) as session:
        prefix = Topics.for_band(session.band_id).prefix
        async with subscribed(broker, prefix) as dashboard:
            async with Relay(session, broker, heart_rate=False, outbox=tmp_path / "outbox.sqlite3"):
                await session.run()
            await dashboard.wait_for("availability", b"offline")

    assert dashboard.payloads("hr") == []
    assert "heart_rate" not in _types(dashboard.events())
    states = dashboard.payloads("state")
    assert states
    assert all(isinstance(s, dict) and s["heart_rate"] is None for s in states)


async def test_mqtt_commands_pause_resume_and_stop_the_band_and_garbage_is_reported(
    broker: BrokerConfig, tmp_path: Path
) -> None:
    async with sim_session(tmp_path, speed=4) as session:
        topics = Topics.for_band(session.band_id)
        async with subscribed(broker, topics.prefix) as dashboard:
            async with Relay(session, broker, outbox=tmp_path / "outbox.sqlite3"):
                run = asyncio.create_task(session.run())
                await _wait_for_type(dashboard, "step_started")  # a pause before START is refused
                async with aiomqtt.Client(broker.host, broker.port) as controller:
                    await controller.publish(topics.cmd, b"pause", qos=1)
                    await _wait_for_type(dashboard, "session_paused")
                    await controller.publish(topics.cmd, b"dance", qos=1)
                    await controller.publish(topics.cmd, b"\xff\xfe\x00", qos=1)
                    await controller.publish(topics.cmd, b'{"command": 5}', qos=1)
                    await controller.publish(topics.cmd, b"RESUME", qos=1)
                    await _wait_for_type(dashboard, "session_resumed")
                    await controller.publish(topics.cmd, b'{"command": "stop"}', qos=1)
                    await asyncio.wait_for(run, 10)
            await dashboard.wait_for("availability", b"offline")

    events = dashboard.events()
    rejected = [e for e in events if e["type"] == "command_rejected"]
    assert [e["source"] for e in rejected] == ["mqtt"] * 3
    assert "unknown command 'dance'" in str(rejected[0]["reason"])
    assert "UTF-8" in str(rejected[1]["reason"])
    assert '"command" string' in str(rejected[2]["reason"])
    stopped = [e for e in events if e["type"] == "session_stopped"]
    assert len(stopped) == 1
    assert (stopped[0]["reason"], stopped[0]["source"]) == ("mqtt", "host")
    order = _types(events)
    assert order.index("session_paused") < order.index("session_resumed")


async def _wait_for_type(dashboard: Subscriber, event_type: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while event_type not in _types(dashboard.events()):
            dashboard.arrived.clear()
            await dashboard.arrived.wait()


async def test_broker_killed_and_restarted_mid_session_loses_nothing_and_keeps_order(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with sim_session(tmp_path, speed=5) as session:
        prefix = Topics.for_band(session.band_id).prefix
        async with subscribed(mosquitto.config, prefix, identifier="dashboard") as dashboard:
            async with Relay(
                session, mosquitto.config, outbox=tmp_path / "outbox.sqlite3"
            ) as relay:
                run = asyncio.create_task(session.run())
                await _wait_for_type(dashboard, "step_started")
                mosquitto.kill()
                await asyncio.sleep(0.5)  # events keep coming into the outbox meanwhile
                mosquitto.start()
                await asyncio.wait_for(run, 30)
            await dashboard.wait_for("availability", b"offline")
            recorded = Store(tmp_path / "sessions.sqlite3").events(session.session_id)

    assert relay.reconnects >= 1
    events = dashboard.events()
    assert [e["number"] for e in events] == list(range(1, len(recorded) + 1))
    assert _types(events)[-1] == "session_done"


async def test_a_broker_outage_is_warned_of_once_however_many_retries_it_takes(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="companion.mqtt.relay")
    async with (
        sim_session(tmp_path, speed=5) as session,
        Relay(session, mosquitto.config, outbox=tmp_path / "outbox.sqlite3"),
    ):
        run = asyncio.create_task(session.run())
        await asyncio.sleep(0.5)
        mosquitto.kill()
        await asyncio.sleep(1.6)  # retries after 0.2, 0.4 and 0.8 s fail meanwhile
        mosquitto.start()
        await asyncio.wait_for(run, 30)
    relayed = [r for r in caplog.records if r.name == "companion.mqtt.relay"]
    lost = [r for r in relayed if "lost" in r.getMessage()]
    retried = [r for r in relayed if "still unreachable" in r.getMessage()]
    assert [r.levelno for r in lost] == [logging.WARNING]
    assert retried
    assert {r.levelno for r in retried} == {logging.INFO}


async def test_messages_left_by_a_crashed_host_are_published_first_on_the_next_run(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with sim_session(tmp_path) as session:
        topics = Topics.for_band(session.band_id)
        with Outbox(tmp_path / "outbox.sqlite3", owner=session.band_id) as outbox:
            outbox.put(topics.event, b'{"left": 1}')
            outbox.put(topics.event, b'{"left": 2}')
        async with subscribed(mosquitto.config, topics.prefix) as dashboard:
            async with Relay(session, mosquitto.config, outbox=tmp_path / "outbox.sqlite3"):
                await session.run()
            await dashboard.wait_for("availability", b"offline")

    events = dashboard.payloads("event")
    assert events[:2] == [{"left": 1}, {"left": 2}]
    assert isinstance(events[2], dict)
    assert events[2]["type"] == "session_started"


async def test_mosquitto_sub_shows_the_events_a_shell_user_expects(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with sim_session(tmp_path) as session:
        topic = Topics.for_band(session.band_id).event
        shell = await asyncio.create_subprocess_exec(
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
            "-t", topic, "-q", "1", "-C", "3", "-v", "-W", "20",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(0.3)  # mosquitto_sub subscribes before the first event
        async with Relay(session, mosquitto.config, outbox=tmp_path / "outbox.sqlite3"):
            await session.run()
        output, _ = await asyncio.wait_for(shell.communicate(), 20)

    lines = output.decode().splitlines()
    assert len(lines) == 3
    assert shell.returncode == 0
    shown_topic, payload = lines[0].split(" ", 1)
    assert shown_topic == topic
    first = json.loads(payload)
    assert first["type"] == "session_started"
    assert first["number"] == 1
    assert first["plan"] == "short"
    assert first["rounds"] == 2
    assert first["time"].endswith("+00:00")  # ISO 8601 with its zone


async def test_tls_with_username_and_password(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = BrokerConfig.from_url(mosquitto.tls_url, ca_file=mosquitto.ca_file)
    async with sim_session(tmp_path) as session:
        prefix = Topics.for_band(session.band_id).prefix
        async with subscribed(config, prefix) as dashboard:
            async with Relay(session, config, outbox=tmp_path / "outbox.sqlite3"):
                await session.run()
            await dashboard.wait_for("availability", b"offline")
    assert _types(dashboard.events())[-1] == "session_done"


async def test_wrong_password_is_a_clear_error(mosquitto: Mosquitto, tmp_path: Path) -> None:
    url = mosquitto.tls_url.replace("s3cret-pass", "wrong")
    config = BrokerConfig.from_url(url, ca_file=mosquitto.ca_file)
    async with sim_session(tmp_path) as session:
        with pytest.raises(BrokerError, match="refused the username or password"):
            async with Relay(session, config, outbox=tmp_path / "outbox.sqlite3"):
                pass


async def test_unreachable_broker_fails_fast_with_the_fix(tmp_path: Path) -> None:
    from companion.mqtt import free_loopback_port

    url = f"mqtt://127.0.0.1:{free_loopback_port()}"
    async with sim_session(tmp_path) as session:
        with pytest.raises(BrokerError, match=r"cannot reach the MQTT broker .*--no-mqtt"):
            async with Relay(session, url, outbox=tmp_path / "outbox.sqlite3"):
                pass


async def test_discovery_is_retained_repeated_when_home_assistant_restarts_and_removable(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = mosquitto.config
    async with sim_session(tmp_path) as session:
        topic = discovery_topic(session.band_id)
        async with (
            subscribed(config, "homeassistant") as home_assistant,
            Relay(session, config, outbox=tmp_path / "outbox.sqlite3"),
        ):
            await _wait_for_count(home_assistant, 1)
            async with aiomqtt.Client(config.host, config.port) as client:
                await client.publish("homeassistant/status", b"online", qos=1)
            await _wait_for_count(home_assistant, 2)
        announced = [m for m in home_assistant.messages if str(m.topic) == topic]
        assert len(announced) == 2
        assert json.loads(announced[0].payload)["dev"]["ids"] == [f"companion_{session.band_id}"]

        await remove_discovery(config, session.band_id)
        async with subscribed(config, "homeassistant") as late_subscriber:
            await asyncio.sleep(0.3)  # a retained config would arrive at once
        assert [m for m in late_subscriber.messages if str(m.topic) == topic] == []


async def _wait_for_count(subscriber: Subscriber, count: int) -> None:
    async with asyncio.timeout(10):
        while sum(str(m.topic).endswith("/config") for m in subscriber.messages) < count:
            subscriber.arrived.clear()
            await subscriber.arrived.wait()


_NESTED = b'{"command": ' + b"[" * 1000 + b"]" * 1000 + b"}"  # ~2 KB, 1000 levels
_HUGE = b'{"command": "pause", "pad": "' + b"x" * 1_000_000 + b'"}'  # a valid command, 1 MB


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(_NESTED, "a command is at most 512", id="nested-1000"),
        pytest.param(_HUGE, "a command is at most", id="1MB"),
        pytest.param(b'{"command": "pa\xffuse"}', "not UTF-8", id="invalid-utf8"),
        pytest.param(b"1e999", "unknown command '1e999'", id="json-number"),
    ],
)
async def test_a_hostile_command_is_rejected_and_every_event_still_arrives(
    broker: BrokerConfig, tmp_path: Path, payload: bytes, reason: str
) -> None:
    async with sim_session(tmp_path, speed=10) as session:
        topics = Topics.for_band(session.band_id)
        async with subscribed(broker, topics.prefix) as dashboard:
            async with Relay(session, broker, outbox=tmp_path / "outbox.sqlite3") as relay:
                run = asyncio.create_task(session.run())
                await _wait_for_type(dashboard, "step_started")
                async with aiomqtt.Client(broker.host, broker.port) as stranger:
                    await stranger.publish(topics.cmd, payload, qos=1)
                await _wait_for_type(dashboard, "command_rejected")
                await asyncio.wait_for(run, 30)
            await dashboard.wait_for("availability", b"offline")
        recorded = session.store.events(session.session_id) if session.store else []

    assert relay.failure is None
    events = dashboard.events()
    assert [e["number"] for e in events] == list(range(1, len(recorded) + 1))
    assert _types(events)[-1] == "session_done"
    rejected = [e for e in events if e["type"] == "command_rejected"]
    assert len(rejected) == 1
    assert reason in str(rejected[0]["reason"])
    assert len(str(rejected[0]["command"])) <= 40
    assert "session_paused" not in _types(events)  # the padded "pause" was not obeyed


async def test_a_host_timed_watch_is_relayed_with_its_kind_and_cue_mode(
    broker: BrokerConfig, tmp_path: Path
) -> None:
    clock = LoopClock(20.0)
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
        band = await connect_for_session(watch.address, backend=world.backend, clock=clock)
        async with band:
            session = Session(band, SHORT_PLAN)
            prefix = Topics.for_band(session.band_id).prefix
            async with subscribed(broker, prefix) as dashboard:
                async with Relay(session, broker, outbox=tmp_path / "outbox.sqlite3"):
                    await session.run()
                await dashboard.wait_for("availability", b"offline")
    states = dashboard.payloads("state")
    assert states
    assert all(isinstance(s, dict) and s["kind"] == "infinitime" for s in states)
    assert all(isinstance(s, dict) and s["cue_mode"] == "host" for s in states)
    cues = [e for e in dashboard.events() if e["type"] == "cue_fired"]
    assert cues
    assert {e["timing"] for e in cues} == {"host"}
    final = states[-1]
    assert isinstance(final, dict)
    assert final["state"] == "done"
