"""The faults a band on a wrist produces: small MTU, reboots, refusals, lag, vanishing."""

from __future__ import annotations

import asyncio

import pytest

import firmware_protocol as fp
from companion.errors import LinkLostError
from companion.events import CueFired, SessionStopped, StopReason
from companion.plan import Plan, Step, builtin_plan
from companion.session import Session
from companion.sim import VirtualBandConfig
from companion.state import SessionPhase
from companion.store import Store

from .conftest import connected

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("band_core")]

SHORT = Plan(name="short", title="Short", steps=(Step("Plank", 20.0), Step("Bridge", 20.0)))


def _cue_ids(store: Store, session: Session) -> list[int]:
    return [
        e.event.cue_id for e in store.events(session.session_id) if isinstance(e.event, CueFired)
    ]


def _expected(plan: Plan) -> list[int]:
    return [cue.cue_id for cue in fp.build_timeline(plan.to_wire()).cues]


async def test_the_whole_workout_crosses_an_mtu_of_23(store: Store) -> None:
    plan = builtin_plan("back-5")
    async with connected(VirtualBandConfig(mtu=23)) as (_virtual, band):
        assert band.capabilities is not None
        session = Session(band, plan, store=store)
        final = await session.run()
    assert final.phase is SessionPhase.DONE
    assert _cue_ids(store, session) == _expected(plan)


async def test_a_band_that_reboots_mid_workout_ends_the_session_with_the_reason(
    store: Store,
) -> None:
    async with connected() as (virtual, band):
        session = Session(band, SHORT, store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(10)
        virtual.reboot()
        final = await asyncio.wait_for(runner, 60)
    assert final.phase is SessionPhase.STOPPED
    stopped = [
        e.event for e in store.events(session.session_id) if isinstance(e.event, SessionStopped)
    ]
    assert stopped == [SessionStopped(StopReason.REBOOT, stopped[0].t)]
    assert store.session(session.session_id).outcome == "stopped: reboot"
    assert _cue_ids(store, session)[0] == _expected(SHORT)[0]  # what came before is kept


async def test_a_band_refusing_connections_for_a_while_is_reached_again(store: Store) -> None:
    async with connected() as (virtual, band):
        session = Session(band, SHORT, store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(5)
        refusing = asyncio.create_task(virtual.refuse_connections(8))
        virtual.drop_link()
        await refusing
        final = await asyncio.wait_for(runner, 120)
    assert final.phase is SessionPhase.DONE
    assert _cue_ids(store, session) == _expected(SHORT)


async def test_laggy_notifications_lose_nothing(store: Store) -> None:
    async with connected() as (virtual, band):
        virtual.set_notification_delay(0.01, 0.04)
        session = Session(band, SHORT, store=store)
        final = await session.run()
    assert final.phase is SessionPhase.DONE
    assert _cue_ids(store, session) == _expected(SHORT)


async def test_a_band_that_vanishes_for_good_keeps_what_was_recorded(store: Store) -> None:
    async with connected(reconnect_for=15.0) as (virtual, band):
        session = Session(band, SHORT, store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(10)
        await virtual.close()  # flat battery: no advertising, no link
        with pytest.raises(LinkLostError, match="stayed out of reach"):
            await asyncio.wait_for(runner, 120)
    record = store.session(session.session_id)
    assert record.outcome is not None
    assert record.outcome.startswith("link lost")
    assert _cue_ids(store, session)[0] == _expected(SHORT)[0]
