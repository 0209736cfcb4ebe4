"""Every kind on its emulator, through our bleak backend: back-5 with host-timed cues,
heart rate with each kind's quirks, link drops, detection and the errors a user sees."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest

import firmware_protocol as fp
from companion.clock import LoopClock
from companion.errors import BandNotFoundError
from companion.events import (
    BandStateChanged,
    CueFired,
    CueProblem,
    CueTiming,
    CueWarning,
    Event,
    HeartRate,
)
from companion.kinds import BandKind, HostTimedBand, KindBand, connect_band
from companion.plan import builtin_plan
from companion.sim import (
    BangleConfig,
    InfiniTimeConfig,
    MotorSource,
    Peripheral,
    VirtualBandConfig,
    VirtualWorld,
)

pytestmark = pytest.mark.looptime

BACK_5 = builtin_plan("back-5", rounds=3)
PLAN = BACK_5.to_wire()
TIMELINE = fp.build_timeline(PLAN)
LEAD_S = 0.5


def expected_pulses(start: float) -> list[tuple[float, int]]:
    """Each cue's pulses at their offsets, cut where the next cue pre-empts the pattern."""
    pulses: list[tuple[float, int]] = []
    cues = TIMELINE.cues
    for i, cue in enumerate(cues):
        at = start + cue.offset_us / 1e6
        until = start + cues[i + 1].offset_us / 1e6 if i + 1 < len(cues) else float("inf")
        offset_ms = 0
        for k, pulse in enumerate(PLAN.pattern_for(cue.kind).pulses):
            if k == 0 or at + offset_ms / 1000 < until:
                pulses.append((at + offset_ms / 1000, pulse.on_ms))
            offset_ms += pulse.on_ms + pulse.off_ms
    return pulses


@contextlib.asynccontextmanager
async def emulator(
    kind: BandKind, clock: LoopClock
) -> AsyncIterator[tuple[VirtualWorld, Peripheral | None, KindBand]]:
    """The kind's emulator and a band of that kind for it, not yet connected."""
    async with VirtualWorld() as world:
        watch: Peripheral | None = None
        if kind is BandKind.INFINITIME:
            watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
            address = watch.address
        elif kind is BandKind.BANGLE:
            watch = await world.add_bangle(BangleConfig(clock=clock))
            address = watch.address
        else:
            strap = await world.add_band(VirtualBandConfig(companion_service=False, clock=clock))
            address = strap.address
        yield world, watch, await connect_band(address, backend=world.backend, clock=clock)


@contextlib.asynccontextmanager
async def on_emulator(
    kind: BandKind, clock: LoopClock
) -> AsyncIterator[tuple[VirtualWorld, Peripheral | None, KindBand]]:
    async with emulator(kind, clock) as (world, watch, band), band:
        yield world, watch, band


@contextlib.asynccontextmanager
async def host_timed_on_emulator(
    kind: BandKind, clock: LoopClock
) -> AsyncIterator[tuple[Peripheral | None, HostTimedBand]]:
    """The kind on its emulator behind the HostTimedBand a session drives."""
    async with emulator(kind, clock) as (_world, watch, band), HostTimedBand(band) as timed:
        yield watch, timed


async def start_workout(band: HostTimedBand) -> float:
    """Push back-5 and start it ``LEAD_S`` from now; returns its start (host clock)."""
    await band.push_plan(BACK_5)
    return await band.start(lead_s=LEAD_S)


async def until_done(band: HostTimedBand) -> list[Event]:
    """The band's events up to the one saying the workout is done."""
    events: list[Event] = []
    async with contextlib.aclosing(band.events()) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, BandStateChanged) and event.state is fp.SessionStateCode.DONE:
                break
    return events


def assert_every_cue_once_in_order_at_its_offset(events: list[Event]) -> None:
    fired = [e for e in events if isinstance(e, CueFired)]
    assert [c.cue_id for c in fired] == [c.cue_id for c in TIMELINE.cues]
    assert {c.timing for c in fired} == {CueTiming.HOST}
    assert max(abs(c.fired - c.planned) for c in fired) < 0.05
    assert not [e for e in events if isinstance(e, CueWarning)]


@pytest.mark.parametrize("kind", [BandKind.INFINITIME, BandKind.BANGLE, BandKind.HR_STRAP])
async def test_back5_three_rounds_every_cue_delivered_once_in_order_at_its_offset(
    kind: BandKind,
) -> None:
    clock = LoopClock()
    async with host_timed_on_emulator(kind, clock) as (watch, band):
        assert band.capabilities.kind is kind
        start = await start_workout(band)
        events = await until_done(band)
        await asyncio.sleep(2)  # the last pattern's pulses
    assert_every_cue_once_in_order_at_its_offset(events)
    if watch is None:
        assert band.capabilities.motor is False
        return
    source = MotorSource.NOTIFICATION if kind is BandKind.INFINITIME else MotorSource.BUZZ
    played = [p for p in watch.motor if p.source is source]
    expected = expected_pulses(start)
    assert len(played) == len(expected)
    for pulse, (at, on_ms) in zip(played, expected, strict=True):
        assert pulse.t == pytest.approx(at, abs=0.05)
        if kind is BandKind.BANGLE:
            assert pulse.duration_ms == on_ms  # InfiniTime's motor has one length: 35 ms


async def test_infinitime_shows_the_exercise_and_keeps_it_on_screen() -> None:
    clock = LoopClock()
    async with host_timed_on_emulator(BandKind.INFINITIME, clock) as (watch, band):
        await start_workout(band)
        await until_done(band)
        await asyncio.sleep(2)  # the text comes with the pattern's last pulse
    assert watch is not None
    titles = [n.title for n in watch.notifications]  # the watch keeps the last five
    assert titles[-1] == "Workout done"
    assert watch.current_time is not None  # the time is written on connect
    assert watch.local_time is not None


async def test_infinitime_steady_heart_rate_for_30_s_is_not_a_loss_and_bpm_0_is_no_reading() -> (
    None
):
    clock = LoopClock()

    def bpm(t: float) -> int:
        return 0 if t < 5 or t > 45 else 80

    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock, heart_rate=bpm))
        async with await connect_band(watch.address, backend=world.backend, clock=clock) as band:
            samples: list[HeartRate] = []

            async def collect() -> None:
                async for event in band.events():
                    if isinstance(event, HeartRate):
                        samples.append(event)

            task = asyncio.create_task(collect())
            await asyncio.sleep(60)
            task.cancel()
    assert watch.heart_rate_notifications == 2  # 80 once, then 0: steady means silent
    assert {s.bpm for s in samples} == {80}  # never a 0 as if it were a heart rate
    times = [s.t for s in samples]
    assert times[0] == pytest.approx(6, abs=1.1)
    assert times[-1] == pytest.approx(45, abs=1.1)
    assert max(b - a for a, b in itertools.pairwise(times)) <= 1.01
    assert all(s.rr_ms == () and s.contact is None for s in samples)


async def test_infinitime_holds_a_steady_value_only_up_to_the_staleness_limit() -> None:
    clock = LoopClock()
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock, heart_rate=lambda t: 77))
        band = await connect_band(watch.address, backend=world.backend, clock=clock)
        assert band.capabilities.kind is BandKind.INFINITIME
        band._hold_s = 20.0  # type: ignore[attr-defined]
        async with band:
            samples: list[float] = []

            async def collect() -> None:
                async for event in band.events():
                    if isinstance(event, HeartRate):
                        samples.append(event.t)

            task = asyncio.create_task(collect())
            await asyncio.sleep(40)
            task.cancel()
    assert samples
    assert max(samples) - min(samples) <= 21  # then nothing: stale is not live


async def test_bangle_heart_rate_comes_from_act_and_zero_is_no_reading() -> None:
    clock = LoopClock()
    async with on_emulator(BandKind.BANGLE, clock) as (_world, watch, band):
        samples: list[HeartRate] = []

        async def collect() -> None:
            async for event in band.events():
                if isinstance(event, HeartRate):
                    samples.append(event)

        task = asyncio.create_task(collect())
        await asyncio.sleep(20)
        assert watch is not None
        watch.print("debug: hello from an app\r\n>")  # console noise in the stream
        await asyncio.sleep(5)
        task.cancel()
    assert samples
    assert all(s.bpm > 0 for s in samples)
    assert len(samples) >= 18  # one a second once the sensor has a reading
    assert watch.hrm_on


async def test_strap_heart_rate_carries_rr_and_contact() -> None:
    clock = LoopClock()
    async with on_emulator(BandKind.HR_STRAP, clock) as (_world, _watch, band):
        first = None
        async for event in band.events():
            if isinstance(event, HeartRate):
                first = event
                break
    assert first is not None
    assert first.rr_ms
    assert first.contact is True
    assert band.capabilities.rr_intervals
    assert not band.capabilities.motor


@pytest.mark.parametrize("kind", [BandKind.INFINITIME, BandKind.BANGLE])
async def test_cues_due_while_the_link_is_down_are_missed_and_the_rest_delivered(
    kind: BandKind,
) -> None:
    clock = LoopClock()
    async with host_timed_on_emulator(kind, clock) as (watch, band):
        assert watch is not None
        start = await start_workout(band)

        async def drop() -> None:
            await clock.sleep_until(start + 58.5)
            watch.drop_link()
            await watch.refuse_connections(5)

        dropper = asyncio.create_task(drop())
        events = await until_done(band)
        await dropper
    fired = [e for e in events if isinstance(e, CueFired)]
    missed = [e for e in events if isinstance(e, CueWarning)]
    assert {m.problem for m in missed} == {CueProblem.MISSED}
    down = [c for c in TIMELINE.cues if 58.5 <= c.offset_us / 1e6 <= 63.5]
    assert {m.cue_id for m in missed} >= {c.cue_id for c in down if c.offset_us / 1e6 < 63}
    assert len(fired) + len(missed) == len(TIMELINE.cues)
    assert sorted(c.cue_id for c in fired) == [c.cue_id for c in fired]  # in order, once
    assert max(abs(c.fired - c.planned) for c in fired) < 0.05  # nothing fired late


async def test_each_kind_is_detected_from_what_it_advertises_and_a_kind_can_be_forced() -> None:
    async with VirtualWorld() as world:
        infinitime = await world.add_infinitime()
        bangle = await world.add_bangle()
        strap = await world.add_band(VirtualBandConfig(companion_service=False, serial="HRM01"))
        companion = await world.add_band(VirtualBandConfig(name="Companion", serial="SIM0002"))
        found = {}
        for address in (infinitime.address, bangle.address, strap.address, companion.address):
            found[address] = (await connect_band(address, backend=world.backend)).capabilities.kind
        assert found == {
            infinitime.address: BandKind.INFINITIME,
            bangle.address: BandKind.BANGLE,
            strap.address: BandKind.HR_STRAP,
            companion.address: BandKind.COMPANION,
        }
        by_name = await connect_band("InfiniTime", backend=world.backend)
        assert by_name.capabilities.kind is BandKind.INFINITIME
        forced = await connect_band(infinitime.address, kind=BandKind.HR_STRAP)
        assert forced.capabilities.kind is BandKind.HR_STRAP
        async with await connect_band(companion.address, backend=world.backend) as band:
            assert band.capabilities.cue_timing.value == "band"
            assert band.band_id == "sim0002"


async def test_a_second_host_gets_told_the_infinitime_holds_one_connection() -> None:
    async with VirtualWorld() as world, VirtualWorld(name="phone") as phone:
        phone.link = world.link  # both hosts in range of the same watch
        watch = await world.add_infinitime()
        async with await connect_band("InfiniTime", backend=phone.backend):
            with pytest.raises(BandNotFoundError, match="one connection at a time"):
                await connect_band("InfiniTime", backend=world.backend, scan_timeout=2)
            with pytest.raises(BandNotFoundError, match="disconnect it"):
                async with await connect_band(
                    watch.address,
                    kind=BandKind.INFINITIME,
                    backend=world.backend,
                    scan_timeout=2,
                ):
                    pass
        assert watch.connections == 1
