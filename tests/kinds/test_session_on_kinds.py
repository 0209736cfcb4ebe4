"""A Session runs back-5 on every host-timed kind exactly as on a companion band."""

from __future__ import annotations

import asyncio

import pytest

from companion.band import Band
from companion.clock import LoopClock
from companion.errors import IncompatibleBandError
from companion.events import (
    CueFired,
    CueProblem,
    CueTiming,
    CueWarning,
    HeartRate,
    RoundDone,
    SessionDone,
    StepStarted,
)
from companion.kinds import BandKind, HostTimedBand, connect_band, connect_for_session
from companion.plan import builtin_plan
from companion.session import Session
from companion.sim import BangleConfig, InfiniTimeConfig, VirtualBandConfig, VirtualWorld
from companion.state import CueMode, SessionPhase

pytestmark = pytest.mark.looptime


async def _address(world: VirtualWorld, kind: BandKind, clock: LoopClock) -> str:
    if kind is BandKind.INFINITIME:
        return (await world.add_infinitime(InfiniTimeConfig(clock=clock))).address
    if kind is BandKind.BANGLE:
        return (await world.add_bangle(BangleConfig(clock=clock))).address
    strap = await world.add_band(VirtualBandConfig(companion_service=False, clock=clock))
    return strap.address


@pytest.mark.parametrize("kind", [BandKind.INFINITIME, BandKind.BANGLE, BandKind.HR_STRAP])
async def test_a_session_runs_back5_three_rounds_with_host_timed_cues(kind: BandKind) -> None:
    plan = builtin_plan("back-5", rounds=3)
    clock = LoopClock()
    async with VirtualWorld() as world:
        address = await _address(world, kind, clock)
        band = HostTimedBand(await connect_band(address, backend=world.backend, clock=clock))
        async with band:
            session = Session(band, plan)
            events = session.events()
            snapshot = await session.run()
            published = [e.event async for e in events]
    assert snapshot.phase is SessionPhase.DONE
    cues = [e for e in published if isinstance(e, CueFired)]
    assert len(cues) == len({c.cue_id for c in cues}) == 3 * 22
    assert [c.cue_id for c in cues] == sorted(c.cue_id for c in cues)
    assert {c.timing for c in cues} == {CueTiming.HOST}
    assert max(abs(c.error_ms) for c in cues) < 50
    assert not [e for e in published if isinstance(e, CueWarning)]
    steps = [e for e in published if isinstance(e, StepStarted)]
    assert [(s.round, s.name) for s in steps[:2]] == [(1, "QL lifts"), (1, "Hip roll")]
    assert len(steps) == 15
    assert [e.round for e in published if isinstance(e, RoundDone)] == [1, 2, 3]
    assert sum(isinstance(e, SessionDone) for e in published) == 1
    assert any(isinstance(e, HeartRate) for e in published)


async def test_a_link_drop_on_infinitime_reports_the_cues_it_missed_and_the_session_goes_on() -> (
    None
):
    plan = builtin_plan("back-5", rounds=1)
    clock = LoopClock()
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
        band = HostTimedBand(await connect_band(watch.address, backend=world.backend, clock=clock))
        async with band:
            session = Session(band, plan)
            events = session.events()

            async def drop() -> None:
                await clock.sleep(0.5 + 58.5)
                watch.drop_link()
                await watch.refuse_connections(5)

            dropper = asyncio.create_task(drop())
            snapshot = await session.run()
            await dropper
            published = [e.event async for e in events]
    assert snapshot.phase is SessionPhase.DONE
    warnings = [e for e in published if isinstance(e, CueWarning)]
    assert warnings
    assert {w.problem for w in warnings} == {CueProblem.MISSED}  # not also MISSING at the end
    fired = [e for e in published if isinstance(e, CueFired)]
    assert len(fired) + len(warnings) == 22
    assert max(abs(c.error_ms) for c in fired) < 50  # nothing fired late as if on time


async def test_a_session_drives_a_companion_band_itself_and_other_kinds_on_a_host_timeline() -> (
    None
):
    async with VirtualWorld() as world:
        companion = await world.add_band(VirtualBandConfig(name="Companion", serial="SIM0002"))
        watch = await world.add_infinitime()
        assert isinstance(await connect_for_session(companion.address, backend=world.backend), Band)
        host_timed = await connect_for_session(watch.address, backend=world.backend)
        assert isinstance(host_timed, HostTimedBand)
        async with host_timed:
            assert host_timed.info.kind is BandKind.INFINITIME
            assert Session(host_timed, builtin_plan("back-5")).features.cue_mode is CueMode.HOST


@pytest.mark.parametrize(
    ("kind", "complaint"),
    [
        (BandKind.INFINITIME, "has no New Alert, Current Time: it is not an InfiniTime watch"),
        (BandKind.BANGLE, "has no Nordic UART service: it is not a Bangle.js"),
        (BandKind.COMPANION, "has no companion service: it is not a companion band"),
    ],
)
async def test_a_kind_forced_on_a_device_that_is_not_one_says_what_it_lacks(
    kind: BandKind, complaint: str
) -> None:
    async with VirtualWorld() as world:
        strap = await world.add_band(VirtualBandConfig(companion_service=False))
        band = await connect_for_session(strap.address, kind=kind, backend=world.backend)
        with pytest.raises(IncompatibleBandError, match=complaint):
            async with band:
                pass
