"""The class screen in a real headless Chromium at 1920x1080, updated over server-sent events."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from companion.screen import ClassScreen, snapshot_to_json
from tests.screen.browser import Browser, chromium
from tests.screen.fakes import NAMES, FakeClass, twelve

ROOT = Path(__file__).resolve().parents[2]
SHOT = ROOT / "docs" / "class-screen.png"

# What the page shows on every tile, read back from the DOM as a user would see it.
TILES_JS = """JSON.stringify([...document.querySelectorAll('#tiles .tile')].map(t => ({
  band: t.dataset.bandId,
  cls: t.className,
  name: t.querySelector('.name').textContent,
  bold: t.querySelector('.name b') !== null,
  bpm: t.querySelector('.bpm').textContent,
  percent: t.querySelector('.percent').textContent,
  link: t.querySelector('.link').textContent,
  cue: t.querySelector('.cue').textContent,
  battery: t.querySelector('.battery').textContent,
  closer: !t.querySelector('.closer').hidden,
  closerText: t.querySelector('.closer').textContent,
  rect: [t.getBoundingClientRect().right, t.getBoundingClientRect().bottom],
  fits: t.scrollWidth <= t.clientWidth && t.scrollHeight <= t.clientHeight
    && [...t.querySelectorAll('.heart > *')].every(
      e => e.getBoundingClientRect().right <= t.getBoundingClientRect().right),
})))"""

HEADER_JS = """JSON.stringify({
  round: document.getElementById('round').textContent,
  exercise: document.getElementById('exercise').textContent,
  next: document.getElementById('next-exercise').textContent,
  left: document.getElementById('time-left').textContent,
  updates: Number(document.body.dataset.updates),
})"""


@pytest.fixture
def browser_path() -> str:
    found = chromium()
    if found is None:
        message = "chromium is not installed: scripts/test.sh installs it with apt-get"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _expected(offset: int) -> list[dict[str, object]]:
    tiles = []
    for p in snapshot_to_json(twelve(offset))["participants"]:
        tiles.append(
            {
                "band": p["band_id"],
                "name": p["name"],
                "zone": f"zone-{p['zone']}",
                "bpm": "\N{EN DASH}" if p["heart_rate"] is None else str(p["heart_rate"]),
                "percent": _percent(p["heart_rate_percent"]),
                "closer": p["come_closer"],
                "low_battery": p["battery_low"],
            }
        )
    return tiles


def _seconds(shown: str) -> int:
    minutes, _, seconds = shown.partition(":")
    return int(minutes) * 60 + int(seconds)


def _percent(value: object) -> str:
    return "" if value is None else f"{value} %"


def _seen(tiles: list[dict[str, object]]) -> list[dict[str, object]]:
    return [
        {
            "band": t["band"],
            "name": t["name"],
            "zone": next(c for c in str(t["cls"]).split() if c.startswith("zone-")),
            "bpm": t["bpm"],
            "percent": t["percent"],
            "closer": t["closer"],
            "low_battery": str(t["battery"]).startswith("low battery"),
        }
        for t in tiles
    ]


async def test_the_screen_in_chromium_shows_every_tile_and_follows_a_pushed_update(
    browser_path: str, tmp_path: Path
) -> None:
    fake = FakeClass(twelve())
    # A refresh longer than the test: what the page shows second came with the change.
    async with ClassScreen(fake, refresh_s=60) as screen:
        with Browser(browser_path) as browser:
            await asyncio.to_thread(browser.goto, screen.url)
            await asyncio.to_thread(
                browser.wait_for, "document.querySelectorAll('#tiles .tile').length === 12"
            )
            first = json.loads(await asyncio.to_thread(browser.evaluate, TILES_JS))
            assert _seen(first) == _expected(0)

            fake.show(twelve(offset=4))
            await asyncio.to_thread(browser.wait_for, "document.body.dataset.updates === '2'")
            tiles = json.loads(await asyncio.to_thread(browser.evaluate, TILES_JS))
            header = json.loads(await asyncio.to_thread(browser.evaluate, HEADER_JS))
            await asyncio.to_thread(browser.screenshot, tmp_path / "class-screen.png")
            # No snapshot comes for the next 1.5 s (refresh 60 s): the page counts down alone.
            await asyncio.sleep(1.5)
            later = json.loads(await asyncio.to_thread(browser.evaluate, HEADER_JS))

    assert _seen(tiles) == _expected(4)
    assert [t["name"] for t in tiles] == list(NAMES)
    assert not any(t["bold"] for t in tiles)  # "<b>Fay</b>" is shown as text
    assert {t["cls"].split()[1] for t in tiles} == {f"zone-{z}" for z in range(6)}
    assert [t["closerText"] for t in tiles if t["closer"]] == ["come closer"]
    assert tiles[2]["battery"] == "low battery 12 %"
    assert tiles[4]["link"] == "link down"  # the strap needs its link; the bands do not
    assert {t["link"] for i, t in enumerate(tiles) if i != 4} == {"● linked"}
    assert tiles[7]["cue"] == "cue \N{MINUS SIGN}3 ms"
    # Every tile is on the 1920x1080 screen, none cut off.
    assert all(right <= 1920 and bottom <= 1080 for right, bottom in (t["rect"] for t in tiles))
    assert [t["name"] for t in tiles if not t["fits"]] == []  # nothing spills out of a tile
    assert header["round"] == "2 / 5"
    assert (header["exercise"], header["next"]) == ("Squats", "Burpees")
    assert header["left"] in ("0:42", "0:41", "0:40")  # counting down from 42 s
    assert header["updates"] == 2
    assert later["updates"] == 2
    assert _seconds(later["left"]) < _seconds(header["left"])

    shot = (tmp_path / "class-screen.png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    assert int.from_bytes(shot[16:20], "big") == 1920
    assert int.from_bytes(shot[20:24], "big") == 1080
    if os.environ.get("COMPANION_UPDATE_SCREENSHOT"):
        SHOT.write_bytes(shot)
