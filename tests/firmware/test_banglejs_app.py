"""The Bangle.js app itself (not only its core), under node behind the Espruino shim, as
a virtual band the unchanged host drives: its timers fire the cues, its Bangle.buzz chains
play the patterns, its screen shows the exercise. (tests/session runs the whole session
suite against it too: every module there uses the ``band_core`` fixture.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import firmware_protocol as fp
from companion.plan import builtin_plan
from companion.session import Session
from companion.sim import BandCore, VirtualBandConfig
from companion.sim.cores import BangleEngine
from companion.state import SessionPhase
from companion.store import Store

from ..session.conftest import connected

pytestmark = pytest.mark.looptime


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "sessions.sqlite3")


async def test_the_app_buzzes_each_pattern_and_shows_the_exercise(store: Store) -> None:
    plan = builtin_plan("back-5", rounds=1)
    async with connected(VirtualBandConfig(core=BandCore.BANGLEJS)) as (virtual, band):
        engine = virtual.protocol
        assert isinstance(engine, BangleEngine)
        session = Session(band, plan, store=store)
        seen: set[str] = set()
        runner = asyncio.create_task(session.run())
        for _ in range(30):
            await band.clock.sleep(10)
            seen.update(engine.screen)
        final = await runner
        await band.clock.sleep(3)  # the last pattern plays out
    assert final.phase is SessionPhase.DONE
    wire = plan.to_wire()
    assert {step.name for step in wire.steps} <= seen  # each exercise was on the screen
    assert any(text.startswith("next: ") for text in seen)
    played = virtual.motor.played
    assert len(played) == len(fp.build_timeline(wire).cues)
    # Every pulse of every pattern became one Bangle.buzz, at its place in the chain.
    pulses = sum(len(action.pattern.pulses) for action in played)
    assert len(engine.buzzes) == pulses
    first = played[0]
    buzz_at, buzz_ms, strength = engine.buzzes[0]
    assert buzz_at == first.at_us
    assert buzz_ms == first.pattern.pulses[0].on_ms
    assert strength == pytest.approx(first.pattern.intensity / 255)
    switch = next(a for a in played if a.kind is fp.CueKind.SWITCH_SIDE)
    index = sum(len(a.pattern.pulses) for a in played[: played.index(switch)])
    pulse, second = switch.pattern.pulses[0], engine.buzzes[index + 1]
    assert second[0] == switch.at_us + (pulse.on_ms + pulse.off_ms) * 1000  # chained
