"""A group class on one host: one instant for every band, rotation through a link budget.

Virtual bands with independent clock offsets and drift (±50 ppm) on one
virtual link, in virtual time; the cue spread is read off each band's motor
record through its exact clock, as benchmarks/cues.py does.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

import firmware_protocol as fp
from companion.events import CueFired, StopReason
from companion.group import (
    ClassEvent,
    ClassStarted,
    ClassStopped,
    GroupClass,
    LinkBudgetError,
    Participant,
    ParticipantJoined,
    ParticipantStopped,
)
from companion.group_state import ParticipantSnapshot
from companion.kinds import BandKind
from companion.plan import Plan, Step
from companion.sim import VirtualBandConfig, VirtualWorld
from companion.state import CueMode, SessionPhase
from companion.store import Store

from .conftest import add_bands, motor_times, spreads_ms

pytestmark = pytest.mark.looptime

logger = logging.getLogger(__name__)

PLAN = Plan(
    "class-test",
    "Class test",
    (Step("squat", 20), Step("breathe", 10, fp.StepKind.REST), Step("lunge", 20)),
    rounds=2,
    round_rest_s=10,
)
TIMELINE = fp.build_timeline(PLAN.to_wire())
CUE_IDS = [c.cue_id for c in TIMELINE.cues]
# A turn per band every 30 s (the default is 10) keeps the suite fast; 50 ppm of drift
# builds up 1.5 ms between two turns, well inside the 5 ms the spread may reach.
TURN_EVERY_S = 30.0


async def _collect(group: GroupClass, into: list[ClassEvent]) -> None:
    async for event in group.events():
        into.append(event)


async def _class_time(group: GroupClass, seconds: float) -> None:
    """Wait until ``seconds`` into the class (from the START instant every band got)."""
    async for event in group.events():
        if isinstance(event, ClassStarted):
            await group.clock.sleep_until(event.start + seconds)
            return


def _in_order_once(played: dict[int, list[float]], cue_ids: list[int]) -> bool:
    firsts = [played[c][0] for c in cue_ids if c in played]
    return (
        sorted(played) == sorted(cue_ids)
        and all(len(times) == 1 for times in played.values())
        and firsts == sorted(firsts)
    )


async def test_thirty_bands_through_five_links_fire_every_cue_once_in_order_together(
    tmp_path: object,
) -> None:
    async with VirtualWorld() as world:
        bands = await add_bands(world, 30)
        store = Store(f"{tmp_path}/class.sqlite3")
        group = GroupClass(
            PLAN,
            [b.address for b in bands],
            backend=world.backend,
            store=store,
            links=5,
            turn_every_s=TURN_EVERY_S,
        )
        final = await group.run()
    assert group.rotating
    for band in bands:
        assert _in_order_once(motor_times(band), CUE_IDS), band.config.name
    spreads = spreads_ms(bands, CUE_IDS)
    logger.warning("30 bands, 5 links: cue spread max %.3f ms", max(spreads))
    assert max(spreads) <= 5.0
    assert all(p.phase is SessionPhase.DONE for p in final.participants)
    assert {p.cues_fired for p in final.participants} == {len(CUE_IDS)}
    assert {p.cues_missed for p in final.participants} == {0}
    # Each band's session is recorded as a lone session is: every cue, once.
    records = store.sessions()
    assert len(records) == 30
    assert {r.outcome for r in records} == {"done"}
    for record in records:
        cues = [e.event for e in store.events(record.id) if isinstance(e.event, CueFired)]
        assert [c.cue_id for c in cues] == CUE_IDS


async def test_bands_out_of_range_for_a_minute_lose_nothing_and_are_acknowledged_on_return() -> (
    None
):
    async with VirtualWorld() as world:
        bands = await add_bands(world, 30, seed=11)
        # The default turn cadence: a band away for a minute drifts on its own (50 ppm is
        # 3 ms a minute), and the sooner its last and next turns, the less it adds up.
        group = GroupClass(PLAN, [b.address for b in bands], backend=world.backend, links=5)
        events: list[ClassEvent] = []
        collector = asyncio.create_task(_collect(group, events))
        runner = asyncio.create_task(group.run())
        await _class_time(group, 15)
        away = bands[::5]  # 6 of 30: 20 %
        for band in away:
            band.drop_link()
        await asyncio.gather(*(band.refuse_connections(60) for band in away))
        final = await runner
        await collector
    for band in bands:
        assert _in_order_once(motor_times(band), CUE_IDS), band.config.name
    near = [band for band in bands if band not in away]
    spreads = spreads_ms(near, CUE_IDS)
    assert group.start_s is not None
    offsets = {c.cue_id: c.offset_us / 1_000_000 for c in TIMELINE.cues}
    away_errors = [
        abs(at[0] - group.start_s - offsets[cue_id]) * 1000
        for band in away
        for cue_id, at in motor_times(band).items()
    ]
    logger.warning(
        "6 of 30 bands away for 60 s: spread of the others max %.3f ms, the away bands' "
        "error max %.3f ms",
        max(spreads),
        max(away_errors),
    )
    assert max(spreads) <= 5.0
    # Away, a band runs on its crystal alone: 50 ppm over the minute and a half between
    # its turns is 4.5 ms; it still fires every cue, on its own timer, within that.
    assert max(away_errors) <= 5.5
    by_id = {p.band_id: p for p in final.participants}
    for band in away:
        participant = by_id[band.config.serial.lower()]
        assert participant.phase is SessionPhase.DONE
        assert participant.cues_fired == len(CUE_IDS)  # acknowledged by replay on return
        assert participant.cues_missed == 0
    assert any(isinstance(e, ClassStarted) for e in events)


async def test_a_band_joining_in_round_one_is_put_on_the_timeline_at_round_two() -> None:
    async with VirtualWorld() as world:
        bands = await add_bands(world, 6, seed=3)
        late = bands.pop()
        group = GroupClass(PLAN, [b.address for b in bands], backend=world.backend, links=3)
        runner = asyncio.create_task(group.run())
        await _class_time(group, 5)
        joined = await group.join(Participant(late.address, name="Late", age=40))
        final = await runner
    assert isinstance(joined, ParticipantJoined)
    assert joined.from_round == 2
    round_two = [c.cue_id for c in TIMELINE.cues if c.round == 2]
    played = motor_times(late)
    assert len(played) == len(round_two)  # nothing of round 1, nothing fired late
    # Its cues (numbered from its own round 1) land with everyone's round-2 cues.
    others = [motor_times(b) for b in bands]
    for own_id, class_id in enumerate(round_two):
        times = [p[class_id][0] for p in others] + [played[own_id][0]]
        assert (max(times) - min(times)) * 1000 <= 5.0
    tile = next(p for p in final.participants if p.name == "Late")
    assert tile.max_hr == 180
    assert tile.cues_fired == len(round_two)
    assert tile.cues_missed == len(CUE_IDS) - len(round_two)


async def test_the_pain_button_stops_that_band_only_and_tells_the_class() -> None:
    async with VirtualWorld() as world:
        bands = await add_bands(world, 7, seed=5)
        group = GroupClass(PLAN, [b.address for b in bands], backend=world.backend, links=3)
        events: list[ClassEvent] = []
        collector = asyncio.create_task(_collect(group, events))
        runner = asyncio.create_task(group.run())
        await _class_time(group, 25)
        bands[2].press(fp.Button.PAIN)
        final = await runner
        await collector
    stopped = [e for e in events if isinstance(e, ParticipantStopped)]
    assert [(e.band_id, e.reason) for e in stopped] == [("class002", StopReason.PAIN)]
    phases = {p.band_id: p.phase for p in final.participants}
    assert phases.pop("class002") is SessionPhase.STOPPED
    assert set(phases.values()) == {SessionPhase.DONE}
    for band in bands[:2] + bands[3:]:
        assert _in_order_once(motor_times(band), CUE_IDS)


async def test_host_timed_bands_that_do_not_fit_the_link_budget_are_refused_by_name() -> None:
    async with VirtualWorld() as world:
        bands = await add_bands(world, 2)
        watch = await world.add_infinitime()
        # One link: the watch would hold it for the whole class, none left to rotate through.
        group = GroupClass(
            PLAN, [watch.address, *(b.address for b in bands)], backend=world.backend, links=1
        )
        with pytest.raises(LinkBudgetError, match=watch.address):
            await group.run()


async def test_a_cancelled_class_stops_every_band_and_records_why(tmp_path: object) -> None:
    """Ctrl-C at the host: STOP reaches every band, the rotated ones on a last turn
    taken at once, before the class lets go; what the bands fired is recorded."""
    store = Store(f"{tmp_path}/class.sqlite3")
    async with VirtualWorld() as world:
        bands = await add_bands(world, 7, seed=9)
        group = GroupClass(
            PLAN,
            [b.address for b in bands],
            backend=world.backend,
            links=3,
            store=store,
            turn_every_s=TURN_EVERY_S,
        )
        group.cancel_reason = StopReason.USER
        events: list[ClassEvent] = []
        collector = asyncio.create_task(_collect(group, events))
        runner = asyncio.create_task(group.run())
        await _class_time(group, 25)
        cancelled_at = group.clock.now()
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        took_s = group.clock.now() - cancelled_at
        collector.cancel()
        # Left running, the bands would buzz on: wait past the class's end to see they do not.
        await group.clock.sleep(PLAN.total_s)
    # Three rounds of turns on three links, well inside the bound the class gives itself.
    assert took_s < 20.0
    for band in bands:
        played = [a.cue_id for a in band.motor.played if a.cue_id >= 0]
        assert played[-1] == fp.STOPPED_CUE_ID, band.config.name
        assert played.count(fp.STOPPED_CUE_ID) == 1
        assert len(played) < len(CUE_IDS)  # stopped mid-class, not played to the end
    snapshot = group.snapshot()
    assert {p.phase for p in snapshot.participants} == {SessionPhase.STOPPED}
    said = [e for e in events if isinstance(e, ClassStopped)]
    assert [(e.reason, e.t) for e in said] == [(StopReason.USER, cancelled_at)]
    records = store.sessions()
    assert len(records) == len(bands)
    assert {r.outcome for r in records} == {"stopped: user"}
    by_band = {r.band_id: r for r in records}
    for band in bands:
        record = by_band[band.config.serial.lower()]
        fired = [e.event.cue_id for e in store.events(record.id) if isinstance(e.event, CueFired)]
        motor = [a.cue_id for a in band.motor.played if a.cue_id >= 0]
        assert fired == motor  # every cue the band buzzed, acknowledged and kept


async def test_a_class_of_every_kind_runs_each_band_its_own_way_to_the_end() -> None:
    """Companion bands take turns; an InfiniTime, a Bangle.js and a strap hold a link each
    (their cues are sent from the host, a strap's are the screen's); all run one class."""
    async with VirtualWorld() as world:
        bands = await add_bands(world, 4, seed=13)
        infinitime = await world.add_infinitime()
        bangle = await world.add_bangle()
        strap = await world.add_band(
            VirtualBandConfig(name="HR Strap", serial="STRAP01", companion_service=False)
        )
        group = GroupClass(
            PLAN,
            [b.address for b in bands] + [infinitime.address, bangle.address, strap.address],
            backend=world.backend,
            links=5,  # three held for the class, two for the four bands that take turns
            turn_every_s=TURN_EVERY_S,
        )
        final = await group.run()
    assert group.rotating
    by_kind: dict[BandKind, list[ParticipantSnapshot]] = {}
    for participant in final.participants:
        by_kind.setdefault(participant.kind, []).append(participant)
    assert {k: len(v) for k, v in by_kind.items()} == {
        BandKind.COMPANION: 4,
        BandKind.INFINITIME: 1,
        BandKind.BANGLE: 1,
        BandKind.HR_STRAP: 1,
    }
    assert {p.phase for p in final.participants} == {SessionPhase.DONE}
    assert {p.cues_fired for p in final.participants} == {len(CUE_IDS)}
    modes = {p.kind: p.cue_mode for p in final.participants}
    assert modes[BandKind.COMPANION] is CueMode.BAND
    assert modes[BandKind.INFINITIME] is modes[BandKind.BANGLE] is CueMode.HOST
    assert modes[BandKind.HR_STRAP] is CueMode.SCREEN
    for band in bands:
        assert _in_order_once(motor_times(band), CUE_IDS), band.config.name
    # The watches' motors ran for the class's cues (host-timed: one buzz or more per cue).
    assert len(infinitime.motor) >= len(CUE_IDS)
    assert len(bangle.motor) >= len(CUE_IDS)


async def test_every_tile_shows_a_heart_rate_while_the_bands_take_turns() -> None:
    """A rotated band is heard on its turns: between them its tile keeps the last turn's
    reading, with its age, rather than a blank for most of the class."""
    async with VirtualWorld() as world:
        bands = await add_bands(world, 7, seed=17)
        group = GroupClass(
            PLAN, [b.address for b in bands], backend=world.backend, links=3, turn_every_s=10.0
        )
        runner = asyncio.create_task(group.run())
        await _class_time(group, 30)
        tiles = group.snapshot().participants
        await runner
    assert all(t.heart_rate is not None for t in tiles), tiles
    ages = [t.heart_rate_age_s for t in tiles]
    assert all(age is not None and 0 <= age <= 60 for age in ages), ages
    assert max(a for a in ages if a is not None) > 5  # not all live: some are between turns
