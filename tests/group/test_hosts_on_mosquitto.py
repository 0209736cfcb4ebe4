"""One class across two host processes and two band servers, sharing one real mosquitto.

Real time, as four separate processes would run in a gym: ``companion sim``
serves 15 bands for each host, which has 5 links (its bands take turns); the
coordinator (``--hosts pi-b``) and the other host (``--join``) meet on the
broker. What the broker carried is read back by a subscriber of this test: the
class's state, both hosts' participants, every band's session events. The
timing itself (the spread across bands) is measured in virtual time by
``test_hosts.py`` and ``benchmarks/class.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import aiomqtt

import firmware_protocol as fp
from companion.plan import resolve_plan
from tests.lines import OutputLines, band_server
from tests.mqtt.conftest import Mosquitto, mosquitto  # noqa: F401  (the fixture)
from tests.screen.browser import Browser, chromium
from tests.screen.test_browser import TILES_JS

PLAN_TOML = """
name = "duo"
countdown = 1
[[steps]]
name = "Squat"
duration = 8
[[steps]]
name = "Lunge"
duration = 8
"""
_LINE_TIMEOUT_S = 60.0
BANDS_PER_HOST = 15
LINKS = "5"


def _companion(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "companion", *(str(a) for a in args)]


def _screen_during_the_class(url: str, folder: Path) -> list[dict[str, str]]:
    """The class screen's tiles once the class runs with both hosts' bands (and a screenshot)."""
    executable = chromium()
    assert executable is not None, "the test command installs chromium"
    with Browser(executable) as browser:
        browser.goto(url)
        browser.wait_for(
            # Once the class runs: its first exercise on the header, every tile with a bpm.
            "document.getElementById('exercise')?.textContent === 'Squat' && "
            f"document.querySelectorAll('#tiles .tile .bpm').length === {2 * BANDS_PER_HOST} && "
            "[...document"
            ".querySelectorAll('#tiles .tile .bpm')].every(b => /^[0-9]+$/.test(b.textContent))",
            timeout_s=30,
        )
        browser.screenshot(folder / "class-screen.png")
        tiles: list[dict[str, str]] = json.loads(browser.evaluate(TILES_JS))
    return tiles


def _start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _bands(url: str) -> list[str]:
    return [arg for i in range(1, BANDS_PER_HOST + 1) for arg in ("--band", f"{url}/Companion{i}")]


async def _listen(broker: str, into: dict[str, list[bytes]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", int(broker.rsplit(":", 1)[1])) as client:
        await client.subscribe("companion/class/gym-1/#")
        ready.set()
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            into.setdefault(message.topic.value, []).append(message.payload)


async def test_two_host_processes_run_one_class_through_mosquitto(
    mosquitto: Mosquitto,  # noqa: F811
    tmp_path: Path,
) -> None:
    plan = tmp_path / "duo.toml"
    plan.write_text(PLAN_TOML)
    cue_ids = [c.cue_id for c in fp.build_timeline(resolve_plan(str(plan)).to_wire()).cues]
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    heard: dict[str, list[bytes]] = {}
    subscribed = asyncio.Event()
    listener = asyncio.create_task(_listen(broker, heard, subscribed))
    await subscribed.wait()
    with (
        band_server("--bands", str(BANDS_PER_HOST), "--first-serial", "1") as left,
        band_server("--bands", str(BANDS_PER_HOST), "--first-serial", "101") as right,
    ):
        joining = _companion(
            "class", "--join", "gym-1", "--host", "pi-b", "--broker", broker, "--links", LINKS
        )
        joining += [*_bands(right), "--db", str(tmp_path / "b.sqlite3")]
        leading = _companion(
            "class", plan, "--class-id", "gym-1", "--host", "pi-a", "--hosts", "pi-b"
        )
        leading += ["--broker", broker, "--links", LINKS, *_bands(left)]
        leading += ["--db", str(tmp_path / "a.sqlite3"), "--screen", "--screen-port", "0"]
        follower = await asyncio.to_thread(_start, joining)
        coordinator = await asyncio.to_thread(_start, leading)
        following = OutputLines(follower)  # read to the end: its pipe never fills
        try:
            output = OutputLines(coordinator)
            screen_line = (await asyncio.to_thread(output.until, "class screen at", 60))[-1]
            url = screen_line.split("class screen at ", 1)[1].strip()
            tiles = await asyncio.to_thread(_screen_during_the_class, url, tmp_path)
            # The coordinator's screen has every host's participants, live.
            assert len(tiles) == 2 * BANDS_PER_HOST
            assert all(t["bpm"].isdigit() for t in tiles), tiles
            await asyncio.to_thread(output.until, "class over", 120)
            said = "".join(output.seen)
            assert "waiting for pi-b to get ready" in said
            assert "every band has the same instant" in said
            assert await asyncio.to_thread(coordinator.wait, 30) == 0, said
            assert await asyncio.to_thread(follower.wait, 60) == 0
            joined = "".join(await asyncio.to_thread(following.until, "class over", 10))
            assert "host pi-b in class gym-1: the coordinator starts it" in joined
        finally:
            for process in (coordinator, follower):
                if process.poll() is None:
                    process.kill()
                    process.wait()
    await asyncio.sleep(0.5)  # the last messages' way to the subscriber
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    state = json.loads(heard["companion/class/gym-1/state"][-1])
    assert state["phase"] == "done"
    assert len(state["participants"]) == 2 * BANDS_PER_HOST  # both hosts' on one screen
    assert {p["phase"] for p in state["participants"]} == {"done"}
    assert {p["cues_fired"] for p in state["participants"]} == {len(cue_ids)}
    assert {p["cues_missed"] for p in state["participants"]} == {0}
    hosts = {
        t: json.loads(p[-1])["state"] for t, p in heard.items() if re.fullmatch(r".*/hosts/pi-.", t)
    }
    assert hosts == {
        "companion/class/gym-1/hosts/pi-a": "done",
        "companion/class/gym-1/hosts/pi-b": "done",
    }
    band_topics = [t for t in heard if "/band/" in t]
    assert len(band_topics) == 2 * BANDS_PER_HOST
    for topic in band_topics:
        fired = [
            json.loads(p)["cue_id"]
            for p in heard[topic]
            if json.loads(p)["type"] == "cue_fired" and json.loads(p)["cue_id"] != fp.STOPPED_CUE_ID
        ]
        assert sorted(set(fired)) == sorted(cue_ids), topic
