"""One class across two hosts, in virtual time: one coordinator, one follower.

Each host has its own adapter (a central of its own) on one virtual link and
its own link budget; their messages go through an in-process broker
(``companion.mqtt.loopback``), as virtual time cannot wait on a real broker's sockets. The
same hosts on a real mosquitto: ``test_hosts_on_mosquitto.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable

import pytest

import firmware_protocol as fp
from companion.clock import LoopClock
from companion.errors import CompanionError
from companion.group import ClassStarted, GroupClass, ParticipantJoined
from companion.group_state import ClassSnapshot
from companion.mqtt.class_hosts import ClassHost, ClassHostError, fetch_announcement
from companion.mqtt.class_topics import ClassTopics, HostState, parse_host_status
from companion.mqtt.discovery import class_discovery_topic
from companion.mqtt.loopback import LoopbackBroker
from companion.plan import Plan, Step
from companion.sim import VirtualBand, VirtualWorld
from companion.state import SessionCommand, SessionPhase

from .conftest import add_bands, motor_times, spreads_ms

pytestmark = pytest.mark.looptime

logger = logging.getLogger(__name__)

PLAN = Plan(
    "hosts-test",
    "Hosts test",
    (Step("squat", 20), Step("lunge", 20)),
    rounds=2,
    round_rest_s=10,
)
TIMELINE = fp.build_timeline(PLAN.to_wire())
CUE_IDS = [c.cue_id for c in TIMELINE.cues]
EPOCH = 1_800_000_000.0  # the hosts' UTC at the clock's origin


def _utc(clock: LoopClock, off_s: float = 0.0) -> Callable[[], float]:
    return lambda: EPOCH + clock.now() + off_s


def _coordinator(
    group: GroupClass,
    broker: LoopbackBroker,
    clock: LoopClock,
    *others: str,
    ready_timeout_s: float = 180.0,
) -> ClassHost:
    """Host pi-a, coordinating ``group`` and waiting for ``others``."""
    return ClassHost(
        group,
        broker.bus(),
        host="pi-a",
        coordinator=True,
        expect_hosts=others,
        utc=_utc(clock),
        ready_timeout_s=ready_timeout_s,
    )


async def _follower(
    broker: LoopbackBroker,
    world: VirtualWorld,
    addresses: list[str],
    clock: LoopClock,
    class_id: str,
    *,
    off_s: float = 0.0,
    links: int = 5,
    turn_every_s: float = 30.0,
) -> ClassHost:
    """Host pi-b, following the class ``class_id`` announces."""
    bus = broker.bus()
    announced = await fetch_announcement(bus, ClassTopics(class_id))
    group = GroupClass(
        announced.plan,
        addresses,
        backend=world.backend,
        clock=clock,
        links=links,
        class_id=announced.class_id,
        turn_every_s=turn_every_s,
    )
    return ClassHost(group, bus, host="pi-b", coordinator=False, utc=_utc(clock, off_s))


@dataclasses.dataclass
class _TwoHosts:
    bands: list[VirtualBand]
    group: GroupClass  # the coordinator's
    follower: ClassHost
    leading: asyncio.Task[ClassSnapshot]
    following: asyncio.Task[ClassSnapshot]


@contextlib.asynccontextmanager
async def _two_hosts_25_s_in(broker: LoopbackBroker, clock: LoopClock) -> AsyncIterator[_TwoHosts]:
    """Bands 0-1 on the coordinator pi-a, 2-3 on pi-b, both running, 25 s into the class."""
    async with VirtualWorld(name="pi-a") as world:
        bands = await add_bands(world, 4)
        second = world.another_host("pi-b")
        try:
            group = GroupClass(
                PLAN, [b.address for b in bands[:2]], backend=world.backend, clock=clock
            )
            leading = asyncio.create_task(_coordinator(group, broker, clock, "pi-b").run())
            follower = await _follower(
                broker, second, [b.address for b in bands[2:]], clock, group.class_id
            )
            following = asyncio.create_task(follower.run())
            async for event in group.events():
                if isinstance(event, ClassStarted):
                    await clock.sleep_until(event.start + 25)
                    break
            yield _TwoHosts(bands, group, follower, leading, following)
        finally:
            await second.close()


async def test_thirty_bands_on_two_hosts_of_five_links_each_buzz_together() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with VirtualWorld(name="pi-a") as world:
        bands = await add_bands(world, 30)
        second = world.another_host("pi-b")
        try:
            ours, theirs = [b.address for b in bands[:15]], [b.address for b in bands[15:]]
            group = GroupClass(
                PLAN, ours, backend=world.backend, clock=clock, links=5, turn_every_s=30.0
            )
            coordinator = _coordinator(group, broker, clock, "pi-b")
            leading = asyncio.create_task(coordinator.run())
            follower = await _follower(broker, second, theirs, clock, group.class_id)
            final, _ = await asyncio.gather(leading, follower.run())
        finally:
            await second.close()
    for band in bands:
        played = motor_times(band)
        assert sorted(played) == sorted(CUE_IDS), band.config.name
        assert all(len(t) == 1 for t in played.values()), band.config.name
    spreads = spreads_ms(bands, CUE_IDS)
    logger.warning("30 bands on 2 hosts: cue spread max %.3f ms", max(spreads))
    assert max(spreads) <= 5.0
    # The coordinator's snapshot holds both hosts' participants, every one done.
    assert len(final.participants) == 30
    assert {p.phase for p in final.participants} == {SessionPhase.DONE}
    assert {p.cues_fired for p in final.participants} == {len(CUE_IDS)}
    topics = ClassTopics(group.class_id)
    assert parse_host_status(broker.retained[topics.host("pi-b")]).state is HostState.DONE
    assert json.loads(broker.retained[topics.state])["phase"] == "done"
    assert topics.announce not in broker.retained  # a finished class is not there to join
    discovered = json.loads(broker.retained[class_discovery_topic(group.class_id)])
    assert {"state", "exercise", "participants", "pause", "skip", "stop"} <= set(discovered["cmps"])
    assert discovered["cmps"]["participants"]["state_topic"] == topics.state
    assert discovered["cmps"]["pause"]["command_topic"] == topics.cmd
    band_events = [t for t, _ in broker.published if t.startswith(f"{topics.base}/band/")]
    assert {t.split("/")[-2] for t in band_events} == {p.band_id for p in final.participants}
    assert len({p.band_id for p in final.participants}) == 30


async def test_a_pause_on_the_coordinator_holds_both_hosts_timelines_alike() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with _two_hosts_25_s_in(broker, clock) as hosts:
        # Home Assistant's buttons publish on the class's cmd topic.
        dashboard = broker.bus()
        await dashboard.publish(ClassTopics(hosts.group.class_id).cmd, b"pause")
        await clock.sleep(30)
        await dashboard.publish(ClassTopics(hosts.group.class_id).cmd, b'{"command": "resume"}')
        await asyncio.gather(hosts.leading, hosts.following)
    bands, group, follower = hosts.bands, hosts.group, hosts.follower
    # Both hosts shifted their timelines by the same 30 s: the bands still agree.
    assert follower.group.elapsed_s() == pytest.approx(group.elapsed_s(), abs=0.01)
    spreads = spreads_ms(bands, CUE_IDS)
    assert max(spreads) <= 5.0
    timeline = fp.build_timeline(PLAN.to_wire())
    planned_s = (timeline.cues[-1].offset_us - timeline.cues[0].offset_us) / 1_000_000
    for band in bands:
        played = motor_times(band)
        assert sorted(played) == sorted(CUE_IDS)
        # The 30 s pause is in every band's timeline, whichever host holds it.
        took = played[CUE_IDS[-1]][0] - played[CUE_IDS[0]][0]
        assert took == pytest.approx(planned_s + 30, abs=0.5), band.config.name


async def test_a_host_whose_clock_is_50_ms_off_is_refused_by_name() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with VirtualWorld(name="pi-a") as world:
        bands = await add_bands(world, 2)
        second = world.another_host("pi-b")
        try:
            group = GroupClass(
                PLAN, [bands[0].address], backend=world.backend, clock=clock, links=2
            )
            coordinator = _coordinator(group, broker, clock, "pi-b")
            leading = asyncio.create_task(coordinator.run())
            follower = await _follower(
                broker, second, [bands[1].address], clock, group.class_id, off_s=-0.050
            )
            results = await asyncio.gather(leading, follower.run(), return_exceptions=True)
        finally:
            await second.close()
    for result in results:
        assert isinstance(result, ClassHostError)
        assert "host pi-b's clock is 50.0 ms" in str(result)
        assert "chronyc tracking" in str(result)
    for band in bands:
        assert motor_times(band) == {}  # nobody started


async def test_a_host_that_never_gets_ready_is_named_with_the_command_to_run() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with VirtualWorld() as world:
        bands = await add_bands(world, 1)
        group = GroupClass(PLAN, [bands[0].address], backend=world.backend, clock=clock)
        coordinator = _coordinator(group, broker, clock, "pi-c", ready_timeout_s=30)
        with pytest.raises(ClassHostError, match=r"host pi-c did not get ready.*--join"):
            await coordinator.run()


async def test_hostile_class_messages_are_dropped_and_the_class_goes_on() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    short = PLAN.with_rounds(1)
    async with VirtualWorld() as world:
        bands = await add_bands(world, 1)
        group = GroupClass(short, [bands[0].address], backend=world.backend, clock=clock)
        coordinator = _coordinator(group, broker, clock)
        running = asyncio.create_task(coordinator.run())
        attacker = broker.bus()
        topics = ClassTopics(group.class_id)
        await clock.sleep(0.5)
        for topic, payload in [
            (topics.cmd, b"\xff\xfe"),
            (topics.cmd, b"start"),
            (topics.cmd, b"[" * 10_000),
            (topics.host("pi-z"), b'{"host": "pi-y", "state": "ready"}'),
            (topics.host("pi-z"), b'{"v": 1, "host": "pi-z", "state": "ready", "bands": -1}'),
            (topics.participants("pi-z"), json.dumps({"participants": [1] * 10}).encode()),
            (topics.time_ask("pi-z"), b'{"n": "x"}'),
            (topics.start, b'{"start_utc": 0}'),
            (topics.host("pi-z"), b"x" * 100_000),
        ]:
            await attacker.publish(topic, payload)
        final = await running
    assert final.phase is SessionPhase.DONE
    cue_ids = [c.cue_id for c in fp.build_timeline(short.to_wire()).cues]
    assert sorted(motor_times(bands[0])) == sorted(cue_ids)
    assert final.participants[0].cues_fired == len(cue_ids)


async def test_a_coordinator_stopped_mid_class_stops_the_class_on_every_host() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with _two_hosts_25_s_in(broker, clock) as hosts:
        hosts.leading.cancel()  # Ctrl-C on the coordinating host
        with pytest.raises(asyncio.CancelledError):
            await hosts.leading
        final = await hosts.following  # the other host's class ends: its bands were stopped
    bands, group = hosts.bands, hosts.group
    for band in bands:
        played = [a.cue_id for a in band.motor.played if a.cue_id >= 0]
        assert played[-1] == fp.STOPPED_CUE_ID, band.config.name
        assert len(played) < len(CUE_IDS)
    assert {p.phase for p in final.participants} == {SessionPhase.STOPPED}
    status = parse_host_status(broker.retained[ClassTopics(group.class_id).host("pi-a")])
    assert status.state is HostState.OFFLINE
    assert status.note == "stopped at the host"


async def _late_host(
    broker: LoopbackBroker,
    world: VirtualWorld,
    addresses: list[str],
    clock: LoopClock,
    class_id: str,
) -> ClassHost:
    """Host pi-b, not awaited by the coordinator: its bands take turns (2 links)."""
    return await _follower(broker, world, addresses, clock, class_id, links=2, turn_every_s=10.0)


async def _class_start(group: GroupClass) -> float:
    async for event in group.events():
        if isinstance(event, ClassStarted):
            return event.start
    raise AssertionError("the class never started")


async def test_a_host_that_comes_after_a_pause_joins_from_round_two_on_the_class_timeline() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with VirtualWorld(name="pi-a") as world:
        bands = await add_bands(world, 5)
        ours, late = bands[:2], bands[2:]
        second = world.another_host("pi-b")
        try:
            group = GroupClass(PLAN, [b.address for b in ours], backend=world.backend, clock=clock)
            leading = asyncio.create_task(_coordinator(group, broker, clock).run())
            start = await _class_start(group)
            # Paused for 12 s before pi-b is there: a control it never hears.
            dashboard = broker.bus()
            await clock.sleep_until(start + 3)
            await dashboard.publish(ClassTopics(group.class_id).cmd, b"pause")
            await clock.sleep(12)
            await dashboard.publish(ClassTopics(group.class_id).cmd, b"resume")
            await clock.sleep(1)
            host = await _late_host(
                broker, second, [b.address for b in late], clock, group.class_id
            )
            final, theirs = await asyncio.gather(leading, host.run())
        finally:
            await second.close()
    started = [e for e in await _history(host.group) if isinstance(e, ClassStarted)]
    assert [e.from_round for e in started] == [2]
    joined = [e for e in await _history(host.group) if isinstance(e, ParticipantJoined)]
    round_one = [c.cue_id for c in TIMELINE.cues if c.round == 1]
    round_two = [c.cue_id for c in TIMELINE.cues if c.round == 2]
    assert {(e.from_round, e.missed_cues) for e in joined} == {(2, len(round_one))}
    assert len(joined) == len(late)
    # pi-b's bands fire round 2 (numbered from their own round 1) once each, nothing of
    # round 1, on the coordinator's bands' instants: the pause is in its timeline too.
    on_time = [motor_times(b) for b in ours]
    for band in ours:
        assert sorted(motor_times(band)) == sorted(CUE_IDS)
    for band in late:
        played = motor_times(band)
        assert sorted(played) == list(range(len(round_two))), band.config.name
        assert all(len(t) == 1 for t in played.values()), band.config.name
        for own_id, class_id in enumerate(round_two):
            times = [p[class_id][0] for p in on_time] + [played[own_id][0]]
            assert (max(times) - min(times)) * 1000 <= 5.0, (band.config.name, class_id)
    # Its participants show the rounds before as missed, here and on the coordinator.
    late_ids = {b.config.serial.lower() for b in late}
    for snapshot in (theirs, final):
        tiles = [p for p in snapshot.participants if p.band_id in late_ids]
        assert len(tiles) == len(late)
        assert {(p.phase, p.cues_fired, p.cues_missed) for p in tiles} == {
            (SessionPhase.DONE, len(round_two), len(round_one))
        }
    # The coordinator's class ended as ever, with every host's participants done.
    assert final.phase is SessionPhase.DONE
    assert len(final.participants) == len(bands)
    assert {p.phase for p in final.participants} == {SessionPhase.DONE}
    topics = ClassTopics(group.class_id)
    assert parse_host_status(broker.retained[topics.host("pi-b")]).state is HostState.DONE


async def test_a_host_that_comes_in_the_last_round_is_refused_and_says_why() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with VirtualWorld(name="pi-a") as world:
        bands = await add_bands(world, 3)
        second = world.another_host("pi-b")
        try:
            group = GroupClass(PLAN, [bands[0].address], backend=world.backend, clock=clock)
            leading = asyncio.create_task(_coordinator(group, broker, clock).run())
            start = await _class_start(group)
            await clock.sleep_until(start + 40)  # round 2 of 2 starts at 50 s: too close
            host = await _late_host(
                broker, second, [b.address for b in bands[1:]], clock, group.class_id
            )
            with pytest.raises(CompanionError, match=r"too late to join: .* last round \(2\)"):
                await host.run()
            final = await leading
        finally:
            await second.close()
    status = parse_host_status(broker.retained[ClassTopics(group.class_id).host("pi-b")])
    assert status.state is HostState.REFUSED
    assert "join before the last round" in status.note
    for band in bands[1:]:
        assert motor_times(band) == {}  # nothing started, nothing fired late
    assert sorted(motor_times(bands[0])) == sorted(CUE_IDS)
    assert final.phase is SessionPhase.DONE
    assert [p.phase for p in final.participants] == [SessionPhase.DONE]


async def _history(group: GroupClass) -> list[object]:
    return [event async for event in group.events()]


async def test_a_host_that_comes_during_a_pause_waits_for_the_resume_and_joins_in_step() -> None:
    clock = LoopClock()
    broker = LoopbackBroker()
    async with VirtualWorld(name="pi-a") as world:
        bands = await add_bands(world, 3, seed=9)
        ours, late = bands[:1], bands[1:]
        second = world.another_host("pi-b")
        try:
            group = GroupClass(PLAN, [b.address for b in ours], backend=world.backend, clock=clock)
            coordinator = _coordinator(group, broker, clock)
            leading = asyncio.create_task(coordinator.run())
            start = await _class_start(group)
            await clock.sleep_until(start + 3)
            await coordinator.command(SessionCommand.PAUSE)
            host = await _late_host(
                broker, second, [b.address for b in late], clock, group.class_id
            )
            following = asyncio.create_task(host.run())
            await clock.sleep(20)
            assert host.group.start_s is None  # still waiting: the class stands still
            await coordinator.command(SessionCommand.RESUME)
            await asyncio.gather(leading, following)
        finally:
            await second.close()
    started = [e for e in await _history(host.group) if isinstance(e, ClassStarted)]
    assert [e.from_round for e in started] == [2]
    round_two = [c.cue_id for c in TIMELINE.cues if c.round == 2]
    on_time = motor_times(ours[0])
    for band in late:
        played = motor_times(band)
        assert sorted(played) == list(range(len(round_two))), band.config.name
        for own_id, class_id in enumerate(round_two):
            error_ms = (played[own_id][0] - on_time[class_id][0]) * 1000
            assert abs(error_ms) <= 5.0, (band.config.name, class_id)
