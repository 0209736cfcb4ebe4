"""`companion monitor` against a real broker: it waits for it, and shows what `run` shows."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pyte
import pytest
from rich.console import Console

from companion.errors import BrokerError
from companion.monitor import _Broker, _Follower, monitor
from companion.mqtt import BrokerConfig, Relay
from companion.mqtt.subscriber import parse
from companion.mqtt.topics import state_payload
from companion.view import LiveView
from tests.session.test_view import SNAPSHOT

from .conftest import MOSQUITTO, USER, Mosquitto, sim_session


def _screen(output: str) -> list[str]:
    screen = pyte.Screen(80, 24)
    screen.set_mode(pyte.modes.LNM)  # a tty turns "\n" into "\r\n"
    pyte.Stream(screen).feed(output)
    return [line.rstrip() for line in screen.display]


def _cue_rows(screen: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(screen) if line.startswith("│ CUES"))
    end = next(i for i, line in enumerate(screen) if line.startswith("│ LINK"))
    return [line[8:].strip(" │") for line in screen[start:end]]


async def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for what another task prints or shows (no event to wait on: poll it)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.fixture
def stopped_mosquitto(tmp_path: Path) -> Mosquitto:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    return Mosquitto(tmp_path)


async def test_monitor_waits_for_a_broker_that_is_not_up_yet_then_follows_the_session(
    stopped_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    out = io.StringIO()
    config = stopped_mosquitto.config
    watcher = asyncio.create_task(
        monitor(config, Console(file=out, width=80), exit_when_done=True, retry_every_s=0.1)
    )
    try:
        await asyncio.sleep(1.0)
        assert not watcher.done()  # still waiting, not failed
        waiting = out.getvalue()
        assert f"waiting for the MQTT broker at {config.url}" in waiting
        assert waiting.count("waiting for") == 1  # one line per outage, not one per attempt
        assert "Ctrl-C quits" in waiting
        stopped_mosquitto.start()
        await _until(lambda: "following" in out.getvalue())
        async with (
            sim_session(tmp_path) as session,
            Relay(session, config, outbox=tmp_path / "outbox.sqlite3"),
        ):
            await session.run()
        await asyncio.wait_for(watcher, 20)
    finally:
        watcher.cancel()
        stopped_mosquitto.stop()
    assert "workout done: 2 round(s)" in out.getvalue()


async def test_monitor_joining_late_shows_each_cue_at_the_time_run_shows_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ran, watched = io.StringIO(), io.StringIO()
    run_console = Console(file=ran, width=80, height=24, force_terminal=True)
    monitor_console = Console(file=watched, width=80, height=24, force_terminal=True)
    async with (
        sim_session(tmp_path, speed=5) as session,
        Relay(session, mosquitto.config, outbox=tmp_path / "outbox.sqlite3"),
        LiveView(session, run_console),
    ):
        runner = asyncio.create_task(session.run())
        await _until(lambda: session.snapshot().step_index >= 1)  # after session_started
        watcher = asyncio.create_task(
            monitor(mosquitto.config, monitor_console, exit_when_done=True)
        )
        await runner
        await asyncio.wait_for(watcher, 20)
    run_screen, monitor_screen = _screen(ran.getvalue()), _screen(watched.getvalue())
    assert _cue_rows(monitor_screen) == _cue_rows(run_screen)
    assert len(_cue_rows(run_screen)) == 4
    monitor_text = "\n".join(monitor_screen)
    assert "Ctrl-C quits the monitor; the workout goes on on the band." in monitor_text
    assert "stops the workout" not in monitor_text


async def test_monitor_gives_up_at_once_on_a_refused_login(mosquitto: Mosquitto) -> None:
    wrong = BrokerConfig.from_url(
        f"mqtts://{USER}:wrong@127.0.0.1:{mosquitto.tls_port}", ca_file=mosquitto.ca_file
    )
    with pytest.raises(BrokerError, match="refused the username or password"):
        await asyncio.wait_for(monitor(wrong, Console(file=io.StringIO())), 10)


def test_a_broker_lost_mid_session_is_said_under_the_panel() -> None:
    broker = _Broker("mqtt://127.0.0.1:1883", connected=True)
    follower = _Follower(None, broker)
    heard = parse("companion/sim0001/state", state_payload(SNAPSHOT))
    assert heard is not None
    follower.take(heard)
    console = Console(file=io.StringIO(), width=80, height=24, record=True)
    console.print(follower.frame())
    assert "waiting for the MQTT broker" not in console.export_text()
    broker.connected, broker.problem = False, "Connection refused"
    console.print(follower.frame())
    shown = " ".join(console.export_text().split())
    assert "waiting for the MQTT broker at mqtt://127.0.0.1:1883 (Connection refused)" in shown
    assert "Ctrl-C quits" in shown
