"""A relay that breaks is never silent, and a long connection keeps the outbox flat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
from pathlib import Path

import aiomqtt
import pytest
from click.testing import CliRunner

from companion import mqtt
from companion.cli import main
from companion.errors import BrokerError
from companion.mqtt import BrokerConfig, Outbox, Relay, Topics
from companion.plan import Plan, Step

from .conftest import Mosquitto, sim_session, subscribed


class _RelayThatBreaks(Relay):
    """A relay whose state publisher hits a bug once the workout is under way.

    The one fault no real peer can provoke on demand (the hostile inputs that
    used to provoke it are rejected now), so it is injected in the relay itself;
    the broker, the band and the session are real.
    """

    async def _keep_state(self, client: aiomqtt.Client) -> None:
        await asyncio.sleep(0.3)
        raise RuntimeError("injected: a bug in the state publisher")


async def test_a_relay_task_that_fails_logs_goes_offline_and_keeps_every_event_in_the_outbox(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox_path = tmp_path / "outbox.sqlite3"
    async with sim_session(tmp_path, speed=10) as session:
        topics = Topics.for_band(session.band_id)
        async with subscribed(mosquitto.config, topics.prefix) as dashboard:
            relay = _RelayThatBreaks(session, mosquitto.config, outbox=outbox_path)
            await relay.__aenter__()
            run = asyncio.create_task(session.run())
            await dashboard.wait_for("availability", b"offline")
            assert not run.done()  # offline while the workout goes on
            assert not relay.connected
            await asyncio.wait_for(run, 30)
            with pytest.raises(BrokerError, match=r"stopped publishing \(RuntimeError: injected"):
                await relay.__aexit__(None, None, None)
            recorded = session.store.events(session.session_id) if session.store else []

    assert any(
        r.levelno == logging.ERROR and "stopped publishing" in r.getMessage()
        for r in caplog.records
    )
    published = {e["number"] for e in dashboard.events()}
    with Outbox(outbox_path, owner=session.band_id) as outbox:
        waiting = [json.loads(m.payload) for m in outbox.pending(limit=10_000)]
    kept = {e["number"] for e in waiting if "number" in e}
    assert "session_done" in {e.get("type") for e in waiting}  # followed to the end
    assert published | kept == set(range(1, len(recorded) + 1))  # nothing lost for MQTT


def test_the_cli_exits_non_zero_with_the_reason_when_the_relay_fails(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(mqtt, "Relay", _RelayThatBreaks)
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    db = tmp_path / "sessions.sqlite3"
    result = CliRunner().invoke(
        main, ["run", "--sim", "--speed", "60", "--mqtt", url, "--db", str(db)]
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "the MQTT relay stopped publishing (RuntimeError: injected" in output
    assert "the next `companion run` with this band publishes them first" in output
    assert re.search(r"outcome\W+done", output)  # the workout itself finished


class _FastWallClock:
    """Wall-clock time running ``rate`` times faster: a long run in a few seconds."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._began = time.time()

    def __call__(self) -> float:
        return self._began + (time.time() - self._began) * self.rate


async def test_the_outbox_stays_flat_over_a_long_connection(
    broker: BrokerConfig, tmp_path: Path
) -> None:
    # An hour-long hold at 50x: ~50 heart-rate samples a second, a row each (the live `hr`
    # copy is not stored).
    plan = Plan(name="hold", title="Hold", steps=(Step("Hold", 3600.0),))
    outbox_path = tmp_path / "outbox.sqlite3"
    wall = _FastWallClock(rate=10.0)  # the 2 s replay window passes in 0.2 s
    kept: list[int] = []  # acknowledged rows still in the outbox
    stale: list[int] = []  # of those, acknowledged before the window and 3 prune periods
    async with (
        sim_session(tmp_path, speed=50, plan=plan) as session,
        Relay(session, broker, outbox=outbox_path, wall_clock=wall),
    ):
        run = asyncio.create_task(session.run())
        with Outbox(outbox_path, owner=session.band_id) as outbox:
            for _ in range(12):
                await asyncio.sleep(0.5)
                kept.append(outbox.count() - outbox.pending_count())
                with contextlib.closing(sqlite3.connect(outbox_path)) as db:
                    (old,) = db.execute(
                        "SELECT COUNT(*) FROM outbox WHERE acked_at < ?",
                        (wall() - 2.0 - 3 * wall.rate,),  # 3 real seconds, in wall time
                    ).fetchone()
                stale.append(int(old))
        with contextlib.closing(sqlite3.connect(outbox_path)) as db:
            written = int(db.execute("SELECT MAX(id) FROM outbox").fetchone()[0])  # ids only grow
        numbered = session.snapshot()  # still running: nothing to wait for
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert numbered.phase.value == "running"
    assert written > 200
    # flat: what stays is the last second or two, never what the hour has written so far
    assert max(kept[-4:]) < written / 3, kept
    assert stale == [0] * len(stale), stale  # pruning keeps up (how much it holds varies)
