"""InfiniTime's Music and Navigation apps show "now / next / progress" of a host-timed workout,
on the emulator through our bleak backend, in virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bumble import att
from bumble.core import UUID
from bumble.gatt import Characteristic, CharacteristicValue

import firmware_protocol as fp
from companion.clock import LoopClock
from companion.events import BandStateChanged, CueFired, CueWarning, Event
from companion.kinds import HostTimedBand, connect_band
from companion.kinds import gatt as kg
from companion.kinds.base import StepView
from companion.kinds.infinitime import InfiniTimeBand, cut_utf8
from companion.plan import builtin_plan
from companion.sim import InfiniTimeConfig, VirtualWorld
from companion.sim.infinitime import InfiniTime

pytestmark = pytest.mark.looptime

LEAD_S = 0.5
STEP_S = 60  # every step of back-5


async def _collect(band: HostTimedBand, into: list[Event]) -> None:
    async for event in band.events():
        into.append(event)


def _be(seconds: int) -> bytes:
    return seconds.to_bytes(4, "big")


async def test_music_and_navigation_show_the_step_next_round_and_position_then_pause() -> None:
    clock = LoopClock()
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
        kind = await connect_band(watch.address, backend=world.backend, clock=clock)
        async with HostTimedBand(kind) as band:
            await band.push_plan(builtin_plan("back-5", rounds=3))
            start = await band.start(lead_s=LEAD_S)
            await clock.sleep_until(start + 2 * STEP_S + 20)  # 20 s into round 1's third step
            assert watch.music["track"] == b"Cat scratch"
            assert watch.music["artist"] == b"next: Superman"
            assert watch.music["album"] == b"round 1/3"
            assert watch.music["length"] == _be(60)  # both declarations, written by handle
            assert watch.music["position"] == _be(0)  # written at the step's start...
            assert watch.music["status"] == b"\x01"
            assert watch.music_position == 20  # ...and the watch counted on by itself
            assert watch.navigation["narrative"] == b"Cat scratch"
            assert watch.navigation["distance"] == b"1:00"
            assert watch.navigation["progress"] == bytes([round(100 * 120 / 900)])
            assert watch.navigation["flag"] == b"continue"

            await band.pause()
            await clock.sleep(30)
            assert watch.music["status"] == b"\x00"
            assert watch.music["position"] == _be(20)
            assert watch.music_position == 20  # held while paused
            assert watch.navigation["distance"] == b"0:40"

            await band.resume()
            await clock.sleep(5)
            assert watch.music["status"] == b"\x01"
            assert watch.music_position == 25

            await clock.sleep_until(start + 30 + 14 * STEP_S + 10)  # the last step
            assert watch.music["track"] == b"Crunches"
            assert watch.music["artist"] == b"last step"
            assert watch.music["album"] == b"round 3/3"
            assert watch.navigation["flag"] == b"arrive"
            await clock.sleep(STEP_S)  # the end: the watch stops counting
            assert watch.music["status"] == b"\x00"
            assert watch.navigation["progress"] == b"\x64"


def _view(name: str) -> StepView:
    return StepView(
        name=name,
        kind=fp.StepKind.EXERCISE,
        next_name="Superman",
        round=1,
        rounds=3,
        duration_s=60,
        elapsed_s=12,
        workout_elapsed_s=12,
        workout_total_s=900,
        playing=True,
        first=True,
    )


async def test_a_long_non_ascii_exercise_name_is_cut_at_40_bytes_between_characters() -> None:
    name = "Ü" + "ä" * 30  # 62 bytes: the watch itself would cut inside an "ä"
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with InfiniTimeBand(watch.address, backend=world.backend) as band:
            await band.show_step(_view(name))
    track = watch.music["track"]
    assert len(track) <= 40
    assert track == ("Ü" + "ä" * 17).encode() + b"..."
    assert track.decode().startswith("Üää")
    assert watch.navigation["narrative"] == name.encode()  # no limit there but the ATT MTU
    assert watch.navigation["flag"] == b"depart"
    assert watch.music["position"] == _be(12)
    assert cut_utf8("€" * 20, 40) == ("€" * 13).encode()  # 39 bytes: a 14th would not fit


def _refuse_music_and_navigation(watch: InfiniTime) -> int:
    def refuse(_connection: Any, _value: bytes) -> None:
        raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR)

    uuids = {UUID(kg.infinitime_uuid(0, n)) for n in range(2, 0x0D)}
    uuids |= {UUID(kg.infinitime_uuid(1, n)) for n in range(1, 5)}
    refused = 0
    for attribute in watch.device.gatt_server.attributes:
        if isinstance(attribute, Characteristic) and attribute.uuid in uuids:
            attribute.value = CharacteristicValue(write=refuse)
            refused += 1
    return refused


async def _run_to_done(band: HostTimedBand, clock: LoopClock) -> list[Event]:
    events: list[Event] = []
    collector = asyncio.create_task(_collect(band, events))
    await band.push_plan(builtin_plan("back-5", rounds=1))
    start = await band.start(lead_s=LEAD_S)
    await clock.sleep_until(start + 5 * STEP_S + 5)
    collector.cancel()
    return events


async def test_a_watch_refusing_every_music_and_navigation_write_still_gets_every_cue() -> None:
    clock = LoopClock()
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
        assert _refuse_music_and_navigation(watch) >= 10
        kind = await connect_band(watch.address, backend=world.backend, clock=clock)
        async with HostTimedBand(kind) as band:
            events = await _run_to_done(band, clock)
    fired = [e for e in events if isinstance(e, CueFired)]
    assert len(fired) == 22
    assert max(abs(c.fired - c.planned) for c in fired) < 0.05
    assert not [e for e in events if isinstance(e, CueWarning)]
    assert any(
        isinstance(e, BandStateChanged) and e.state is fp.SessionStateCode.DONE for e in events
    )
    assert watch.music == {}
    assert watch.navigation == {}


async def test_a_link_drop_costs_the_display_nothing_but_its_writes_and_it_comes_back() -> None:
    clock = LoopClock()
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
        kind = await connect_band(watch.address, backend=world.backend, clock=clock)
        async with HostTimedBand(kind) as band:
            events: list[Event] = []
            collector = asyncio.create_task(_collect(band, events))
            await band.push_plan(builtin_plan("back-5", rounds=1))
            start = await band.start(lead_s=LEAD_S)
            await clock.sleep_until(start + STEP_S - 0.001)
            watch.drop_link()  # as the second step begins
            await clock.sleep_until(start + STEP_S + 30)
            assert band.link_up
            assert watch.music["track"] == b"Hip roll"  # shown again once the link is back
            assert watch.music_position in (29, 30)
            await clock.sleep_until(start + 5 * STEP_S + 5)
            collector.cancel()
    fired = [e for e in events if isinstance(e, CueFired)]
    assert fired[-1].kind is fp.CueKind.WORKOUT_DONE
    assert len(fired) + len([e for e in events if isinstance(e, CueWarning)]) == 22
