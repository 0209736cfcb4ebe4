"""A workout has an identity: a host adopts its own, refuses another's, and never half-starts one.

In one process on the virtual link (virtual time); the same behaviours across
real processes, with real signals, are in tests/cli/test_adopt.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import firmware_protocol as fp
from companion.band import Band
from companion.errors import WorkoutRunningError
from companion.events import (
    CueFired,
    HeartRate,
    SessionStopped,
    StepStarted,
    StopReason,
    StopSource,
)
from companion.plan import Plan, Step, builtin_plan
from companion.session import Session
from companion.sim import VirtualBand, VirtualBandConfig, VirtualWorld
from companion.state import SessionPhase
from companion.store import Store

pytestmark = pytest.mark.looptime

PLAN = builtin_plan("back-5", rounds=1)
CUE_IDS = [c.cue_id for c in fp.build_timeline(PLAN.to_wire()).cues]
_LIVE = (fp.SessionStateCode.RUNNING, fp.SessionStateCode.ROUND_REST, fp.SessionStateCode.PAUSED)


async def _orphan(world: VirtualWorld, address: str, store: Store, after_s: float) -> str:
    """A host that starts the plan and vanishes ``after_s`` in (no STOP): its session id."""
    async with Band.connect(address, backend=world.backend) as band:
        session = Session(band, PLAN, store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(after_s)
        await band.aclose()  # the host is gone; the band runs on
        await runner
    return session.session_id


async def test_a_host_that_vanished_is_adopted_by_the_next_and_every_cue_is_recorded_once(
    store: Store,
) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        first = await _orphan(world, virtual.address, store, 100)
        await asyncio.sleep(20)  # nobody follows for a while
        async with Band.connect(virtual.address, backend=world.backend) as band:
            session = Session(band, PLAN, store=store)
            assert await session.prepare()
            assert session.session_id == first
            final = await session.run()
    assert final.phase is SessionPhase.DONE
    (record,) = store.sessions()
    assert record.outcome == "done"
    events = [e.event for e in store.events(first)]
    assert [e.cue_id for e in events if isinstance(e, CueFired)] == CUE_IDS
    assert [e.step_index for e in events if isinstance(e, StepStarted)] == [0, 1, 2, 3, 4]
    cues = [e for e in events if isinstance(e, CueFired)]
    assert max(abs(c.error_ms) for c in cues) < 5.0


async def test_a_host_killed_before_its_group_commit_loses_nothing_the_band_held(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.sqlite3"
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        # The first host's groups never commit: killed, its memory (every event it
        # recorded since START, 100 s of them) goes with it. Only the session's row,
        # written at once before START, is on disk.
        doomed = Store(path, commit_every_s=1e6)
        first = await _orphan(world, virtual.address, doomed, 100)
        async with Band.connect(virtual.address, backend=world.backend) as band:
            store = Store(path)
            assert [e.number for e in store.events(first)] == []
            session = Session(band, PLAN, store=store)
            assert await session.prepare()  # the band kept all of it, unacknowledged
            await session.run()
    events = store.events(first)
    assert [e.number for e in events] == list(range(1, len(events) + 1))
    cues = [e.event.cue_id for e in events if isinstance(e.event, CueFired)]
    assert cues == CUE_IDS  # the first 100 s's cues too, each once
    assert sum(isinstance(e.event, HeartRate) for e in events) > 250
    store.close()


async def test_a_host_that_refuses_a_workout_leaves_its_events_for_the_host_that_started_it(
    store: Store, tmp_path: Path
) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        first = await _orphan(world, virtual.address, store, 100)
        await asyncio.sleep(20)  # cues the first host has not seen yet
        kept = virtual.protocol.first_unacked_event
        async with Band.connect(virtual.address, backend=world.backend) as band:
            with pytest.raises(WorkoutRunningError):
                await Session(band, PLAN, store=Store(tmp_path / "other.sqlite3")).run()
            await asyncio.sleep(5)  # connected while the band replays and fires more
        assert virtual.protocol.first_unacked_event == kept
        async with Band.connect(virtual.address, backend=world.backend) as band:
            session = Session(band, PLAN, store=store)
            assert await session.prepare()
            await session.run()
    events = [e.event for e in store.events(first)]
    assert [e.cue_id for e in events if isinstance(e, CueFired)] == CUE_IDS


async def test_an_adopted_workout_is_kept_on_the_host_clock_as_the_band_clock_drifts(
    store: Store,
) -> None:
    # 50 ppm over the 4 minutes after adoption is 12 ms: only drift correction keeps the
    # cues within a millisecond or two of where the host's clock wants them.
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig(drift_ppm=50.0))
        first = await _orphan(world, virtual.address, store, 30)
        async with Band.connect(virtual.address, backend=world.backend) as band:
            session = Session(band, PLAN, store=store)
            assert await session.prepare()
            await session.run()
    cues = [e.event for e in store.events(first) if isinstance(e.event, CueFired)]
    assert [c.cue_id for c in cues] == CUE_IDS
    late = [round(c.error_ms, 1) for c in cues[-10:]]
    assert max(abs(e) for e in late) < 3.0, late


async def test_a_foreign_workout_is_refused_then_taken_over(tmp_path: Path) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        await _orphan(world, virtual.address, Store(tmp_path / "elsewhere.sqlite3"), 30)
        mine = Store(tmp_path / "mine.sqlite3")
        async with Band.connect(virtual.address, backend=world.backend) as band:
            with pytest.raises(WorkoutRunningError, match="--take-over") as refused:
                await Session(band, PLAN, store=mine).run()
            assert refused.value.session_id == virtual.protocol.session_id
            assert virtual.protocol.state in _LIVE  # left alone
            session = Session(band, PLAN, store=mine)
            final = await session.run(take_over=True)
    assert final.phase is SessionPhase.DONE
    events = [e.event for e in mine.events(session.session_id)]
    assert [e.cue_id for e in events if isinstance(e, CueFired)] == CUE_IDS


@pytest.mark.parametrize("cancel_after_s", [0.0, 0.005, 0.02, 0.05, 0.1, 0.3, 1.0])
async def test_a_cancellation_at_any_moment_of_start_up_leaves_no_workout_running(
    store: Store, cancel_after_s: float
) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        virtual.set_notification_delay(0.02, 0.04)  # START's ACK takes a while to come back
        async with Band.connect(virtual.address, backend=world.backend) as band:
            session = Session(band, PLAN, store=store)
            session.cancel_reason = StopReason.USER
            runner = asyncio.create_task(session.run())
            await asyncio.sleep(cancel_after_s)
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
        await asyncio.sleep(5)
        assert virtual.protocol.state not in _LIVE
    for record in store.sessions():
        assert record.outcome == "stopped: user"
        stops = [e.event for e in store.events(record.id) if isinstance(e.event, SessionStopped)]
        assert [(s.reason, s.source) for s in stops] == [(StopReason.USER, StopSource.HOST)]


async def test_a_cancellation_while_start_awaits_its_ack_stops_the_started_band(
    store: Store,
) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        async with Band.connect(virtual.address, backend=world.backend) as band:
            virtual.set_notification_delay(0.05, 0.06)  # START's ACK takes a while to come back
            session = Session(band, PLAN, store=store)
            runner = asyncio.create_task(session.run())
            for _ in range(10_000):  # until the band has taken START...
                if virtual.protocol.state in _LIVE:
                    break
                await asyncio.sleep(0.001)
            assert session.phase is SessionPhase.IDLE  # ...and the host does not know it yet
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
        await asyncio.sleep(5)
        assert virtual.protocol.state is fp.SessionStateCode.STOPPED


async def test_pause_is_a_state_of_the_virtual_band_and_its_heart_rate_rests(
    store: Store,
) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        async with Band.connect(virtual.address, backend=world.backend) as band:
            session = Session(band, PLAN, store=store)
            runner = asyncio.create_task(session.run())
            await band.clock.sleep(40)
            await session.pause()
            assert virtual.protocol.state is fp.SessionStateCode.PAUSED
            await band.clock.sleep(60)
            await session.stop(by=StopReason.USER)
            await runner
    hr = [e.event for e in store.events(session.session_id) if isinstance(e.event, HeartRate)]
    during = [h.bpm for h in hr if h.t > hr[0].t + 70]  # well into the pause
    before = [h.bpm for h in hr if hr[0].t + 30 < h.t < hr[0].t + 40]
    assert during
    assert before
    assert max(during[-5:]) < max(before)  # resting, not exercising


def _count_samples_sent(virtual: VirtualBand) -> list[bytes]:
    """Every heart-rate notification the band sends from now on (copies included)."""
    sent: list[bytes] = []
    notify = virtual._notify

    async def counted(connection: Any, characteristic: Any, value: bytes) -> bool:
        peeked = fp.peek_fragment(value)
        if peeked is not None and peeked[0] is fp.MessageType.HEART_RATE_SAMPLE:
            sent.append(value)
        return await notify(connection, characteristic, value)

    virtual._notify = counted  # type: ignore[method-assign]
    return sent


async def test_a_host_with_no_reader_yet_has_the_band_send_each_sample_once() -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        sent = _count_samples_sent(virtual)
        async with Band.connect(virtual.address, backend=world.backend):
            sent.clear()
            # Connected, nothing reads its events yet (a host waiting for a dashboard's
            # start): samples outside a workout are acknowledged as they come, so the band
            # does not resend what it holds every 400 ms (it did: 56 copies of 6 in 6 s).
            first = virtual.protocol.first_unacked_event
            await asyncio.sleep(6)
            assert 5 <= len(sent) <= 7
            assert len(set(sent)) == len(sent)  # no copies
            last = virtual.protocol.first_unacked_event
            assert last >= first + len(sent)  # each acknowledged (no reader has released it)


async def test_after_a_session_ends_the_band_keeps_nothing_for_a_host_still_connected() -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        sent = _count_samples_sent(virtual)
        async with Band.connect(virtual.address, backend=world.backend) as band:
            plan = Plan(name="short", title="Short", steps=(Step("Hold", 3.0),))
            await Session(band, plan).run()
            sent.clear()
            first = virtual.protocol.first_unacked_event
            # The session recorded the workout's last event and reads no more: without
            # Band.done_with_events that one stayed held, and the band resent it and every
            # sample after it every 400 ms (45 notifications for 6 samples in 6 s).
            await asyncio.sleep(6)
            assert 5 <= len(sent) <= 7
            assert len(set(sent)) == len(sent)
            assert virtual.protocol.first_unacked_event >= first + len(sent)


async def test_an_event_stays_on_the_band_until_the_host_is_done_with_it() -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        async with Band.connect(virtual.address, backend=world.backend) as band:
            await band.push_plan(PLAN)
            await band.start()
            reader = band.events()
            while not isinstance(await anext(reader), HeartRate):
                pass  # the reader holds a sample: taken, not yet recorded
            await asyncio.sleep(0.5)
            kept = virtual.protocol.first_unacked_event
            await asyncio.sleep(10)  # ten more samples arrive meanwhile
            assert virtual.protocol.first_unacked_event == kept  # the held one, and all after

            taken = 0
            while taken < 5:  # the reader comes back: each one it is done with is acknowledged
                taken += isinstance(await anext(reader), HeartRate)
            await asyncio.sleep(0.5)
            done = virtual.protocol.first_unacked_event
            assert done > kept + 5
        # Closed while the reader holds one: that one and the rest stay for the next host.
        assert virtual.protocol.first_unacked_event == done
