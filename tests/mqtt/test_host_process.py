"""`companion run` and `companion monitor` as separate processes around a real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from companion.mqtt import free_loopback_port

from .conftest import Mosquitto, subscribed


async def _companion(*args: str, tmp_path: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "COMPANION_DATA_DIR": str(tmp_path)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def test_a_host_killed_with_sigkill_shows_offline_through_the_last_will(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    async with subscribed(mosquitto.config, "companion/+") as dashboard:
        host = await _companion("run", "--sim", "--speed", "2", "--mqtt", url, tmp_path=tmp_path)
        try:
            await dashboard.wait_for_topic_payload("availability", b"online", timeout=30)
            host.send_signal(signal.SIGKILL)
            await host.wait()
            await dashboard.wait_for_topic_payload("availability", b"offline", timeout=10)
        finally:
            if host.returncode is None:
                host.kill()
                await host.wait()
    assert host.returncode == -signal.SIGKILL


async def test_monitor_follows_a_session_from_mqtt_alone(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    watcher = await _companion("monitor", "--mqtt", url, "--exit-when-done", tmp_path=tmp_path)
    await asyncio.sleep(1.0)  # the monitor subscribes before the session starts
    host = await _companion(
        "run", "--sim", "--speed", "60", "--mqtt", url, tmp_path=tmp_path / "host"
    )
    _host_out, host_err = await asyncio.wait_for(host.communicate(), 60)
    assert host.returncode == 0, host_err.decode()
    seen, _ = await asyncio.wait_for(watcher.communicate(), 30)
    assert watcher.returncode == 0
    lines = seen.decode()
    assert "started: back-5, 1 round(s)" in lines
    for step in ("QL lifts", "Hip roll", "Cat scratch", "Superman", "Crunches"):
        assert step in lines
    assert "cue switch side" in lines
    assert "workout done: 1 round(s)" in lines


async def test_run_with_an_unreachable_broker_exits_with_the_fix(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_loopback_port()}"
    host = await _companion("run", "--sim", "--mqtt", url, tmp_path=tmp_path)
    _, err = await asyncio.wait_for(host.communicate(), 60)
    message = " ".join(err.decode().split())
    assert host.returncode == 1
    assert "cannot reach the MQTT broker" in message
    assert "--no-mqtt" in message


async def test_the_subscriber_example_sees_the_whole_session(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    example = Path(__file__).parents[2] / "examples" / "home_assistant" / "subscriber.py"
    subscriber = await asyncio.create_subprocess_exec(
        sys.executable, str(example), url, "--until-done", stdout=asyncio.subprocess.PIPE
    )
    await asyncio.sleep(1.0)  # it subscribes before the session starts
    host = await _companion("run", "--sim", "--speed", "60", "--mqtt", url, tmp_path=tmp_path)
    await asyncio.wait_for(host.communicate(), 60)
    seen, _ = await asyncio.wait_for(subscriber.communicate(), 30)
    lines = seen.decode().splitlines()
    assert subscriber.returncode == 0
    assert lines[0].endswith("#1 session_started")
    assert lines[-1].endswith("session_done")
    numbers = [int(line.split("#")[1].split()[0]) for line in lines]
    assert numbers == list(range(1, len(numbers) + 1))  # none lost, none twice, in order
