"""A band left idle for a long time still serves the next workout in full.

While nobody is connected heart rate fills the band's 256-event ring, so each
new event drops the oldest. The band answers HELLO with the oldest number it
holds and sends that event right behind the answer: were it to wait for its
next timed resend, that event would be gone and the host would wait for it
for ever. Each band implementation (the reference, the MicroPython firmware,
the Bangle.js app) is run.
"""

from __future__ import annotations

import asyncio

import pytest

import firmware_protocol as fp
from companion.band import Band
from companion.events import CueFired
from companion.plan import Plan, Step
from companion.session import Session
from companion.sim import BandCore, VirtualBandConfig, VirtualWorld

pytestmark = pytest.mark.looptime

PLAN = Plan(name="short", title="Short", steps=(Step("Hold", 20.0), Step("Rest", 10.0)))
CUE_IDS = [c.cue_id for c in fp.build_timeline(PLAN.to_wire()).cues]


async def _cues_of_a_session(world: VirtualWorld, address: str) -> tuple[list[int], int]:
    """The cue ids the session reported, and the size of the band's event ring."""
    async with Band.connect(address, backend=world.backend) as band:
        assert band.capabilities is not None
        ring = band.capabilities.event_buffer
        session = Session(band, PLAN)
        subscription = session.events()
        async with asyncio.timeout(120):  # 30 s of workout: a stalled event stream fails here
            await session.run()
    cues = [n.event.cue_id async for n in subscription if isinstance(n.event, CueFired)]
    return cues, ring


async def test_a_band_idle_for_ten_minutes_between_workouts_reports_every_cue_of_the_next(
    band_core: BandCore,
) -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig(core=band_core))
        cues, ring = await _cues_of_a_session(world, virtual.address)
        assert cues == CUE_IDS
        before = virtual.heart_rate_samples_sent
        await asyncio.sleep(600)  # heart rate fills the ring buffer while nobody is connected
        assert virtual.heart_rate_samples_sent - before > ring
        cues, _ring = await _cues_of_a_session(world, virtual.address)
        assert cues == CUE_IDS
