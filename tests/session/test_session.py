"""Whole sessions of the reference workout against the virtual band."""

from __future__ import annotations

import asyncio
import random

import pytest

import firmware_protocol as fp
from companion.events import (
    CueFired,
    CueWarning,
    HeartRate,
    RoundDone,
    SessionDone,
    SessionStopped,
    StepStarted,
    StopReason,
)
from companion.plan import builtin_plan
from companion.session import Session
from companion.sim import VirtualBandConfig
from companion.state import SessionPhase
from companion.store import Store

from .conftest import connected

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("band_core")]


async def test_five_rounds_of_back_workout_fire_every_cue_once_in_order(store: Store) -> None:
    plan = builtin_plan("back-5", rounds=5)
    timeline = fp.build_timeline(plan.to_wire())
    async with connected() as (virtual, band):
        session = Session(band, plan, store=store)
        final = await session.run()

    assert final.phase is SessionPhase.DONE
    events = [e.event for e in store.events(session.session_id)]
    cues = [e for e in events if isinstance(e, CueFired)]
    assert [c.cue_id for c in cues] == [c.cue_id for c in timeline.cues]
    assert [c.kind for c in cues] == [c.kind for c in timeline.cues]
    switch = [c for c in cues if c.kind is fp.CueKind.SWITCH_SIDE]
    assert [(c.round, c.step_index) for c in switch] == [(r, 0) for r in range(1, 6)]
    played = [action.cue_id for action in virtual.motor.played]
    assert played == [c.cue_id for c in timeline.cues]
    assert not [e for e in events if isinstance(e, CueWarning)]
    started = [e for e in events if isinstance(e, StepStarted)]
    assert len(started) == 25
    assert [e.round for e in events if isinstance(e, RoundDone)] == [1, 2, 3, 4, 5]
    assert isinstance(events[-1], SessionDone)

    summary = store.summary(session.session_id)
    assert summary.rounds_done == 5
    assert summary.outcome == "done"
    assert summary.cue_error_max_ms < 1.0
    assert 24 * 60 < summary.duration_s < 27 * 60
    assert summary.hr_max is not None
    assert summary.hr_avg is not None
    assert summary.hr_max > summary.hr_avg > 60


async def test_pain_button_mid_exercise_stops_the_band_at_once(store: Store) -> None:
    plan = builtin_plan("back-5", rounds=2)
    async with connected() as (virtual, band):
        session = Session(band, plan, store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(95)  # into the second exercise
        pressed_at = virtual.clock_now_us()
        virtual.press(fp.Button.PAIN)
        final = await runner

    assert final.phase is SessionPhase.STOPPED
    stopped = [
        e.event for e in store.events(session.session_id) if isinstance(e.event, SessionStopped)
    ]
    assert [s.reason for s in stopped] == [StopReason.PAIN]
    last = virtual.motor.played[-1]
    assert last.kind is fp.CueKind.STOPPED
    assert last.at_us - pressed_at < 1_000  # on the band, not after a round trip
    assert store.summary(session.session_id).outcome == "stopped: pain"


@pytest.mark.parametrize("seed", range(24))
async def test_link_drops_at_random_moments_lose_no_cue_and_no_heart_rate(
    seed: int, store: Store
) -> None:
    rng = random.Random(seed)
    plan = builtin_plan("back-5", rounds=1)
    timeline = fp.build_timeline(plan.to_wire())
    async with connected() as (virtual, band):
        session = Session(band, plan, store=store)
        runner = asyncio.create_task(session.run())
        for _ in range(3):
            await band.clock.sleep(rng.uniform(5, 80))
            if runner.done():
                break
            virtual.drop_link()
        await runner

    events = [e.event for e in store.events(session.session_id)]
    cue_ids = [e.cue_id for e in events if isinstance(e, CueFired)]
    assert cue_ids == [c.cue_id for c in timeline.cues]
    heart_rates = [e.t for e in events if isinstance(e, HeartRate)]
    assert heart_rates == sorted(set(heart_rates))
    sampled = virtual.heart_rate_samples_sent
    assert len(heart_rates) == sampled
    played = [(a.cue_id, a.at_us) for a in virtual.motor.played]
    expected_offsets = [c.offset_us for c in timeline.cues]
    start = played[0][1]
    assert [at - start for _, at in played] == expected_offsets


async def test_pause_and_resume_shift_the_remaining_timeline_on_band_and_host(store: Store) -> None:
    plan = builtin_plan("back-5", rounds=1)
    async with connected() as (_virtual, band):
        session = Session(band, plan, store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(40)
        await session.pause()
        paused = session.snapshot()
        await band.clock.sleep(100)
        assert session.snapshot().step_remaining_s == pytest.approx(
            paused.step_remaining_s, abs=0.01
        )
        await session.resume()
        final = await runner

    assert final.phase is SessionPhase.DONE
    cues = [e.event for e in store.events(session.session_id) if isinstance(e.event, CueFired)]
    assert max(abs(c.error_ms) for c in cues) < 1.0
    total = cues[-1].fired - cues[0].fired
    assert total == pytest.approx(5 * 60 + 100, abs=0.5)


async def test_fifty_ppm_drift_over_25_minutes_stays_within_documented_bound(store: Store) -> None:
    plan = builtin_plan("back-5", rounds=5)
    config = VirtualBandConfig(drift_ppm=50.0, clock_offset_us=123_456_789)
    async with connected(config) as (_virtual, band):
        session = Session(band, plan, store=store, resync_every_s=30.0)
        await session.run()

    errors = [
        abs(e.event.error_ms)
        for e in store.events(session.session_id)
        if isinstance(e.event, CueFired)
    ]
    # The bound documented in Session: drift over one resync interval (50 ppm x 30 s = 1.5 ms)
    # plus the sync uncertainty (sub-millisecond on this link).
    assert max(errors) < 2.5
    assert len(errors) == len(fp.build_timeline(plan.to_wire()).cues)


async def test_pushing_the_same_plan_twice_sends_it_once() -> None:
    plan = builtin_plan("back-5")
    async with connected() as (_virtual, band):
        assert await band.push_plan(plan) is True
        assert await band.push_plan(plan) is False
