"""A band left idle for a long time still serves the next workout in full.

Known to fail today: while nobody is connected heart rate fills the band's
256-event ring, so each new event drops the oldest. On connect the band sends
the whole ring before the host's HELLO (the host drops it), answers HELLO with
the oldest number it holds, and resends from its head only after that flood has
drained, by when that head is gone: the host waits for it for ever. The fix
belongs in the band's protocol (resend from the head right after the HELLO
answer) and so in the two firmware ports and their scenarios.
"""

from __future__ import annotations

import asyncio

import pytest

import firmware_protocol as fp
from companion.band import Band
from companion.events import CueFired
from companion.plan import Plan, Step
from companion.session import Session
from companion.sim import VirtualBandConfig, VirtualWorld

pytestmark = pytest.mark.looptime

PLAN = Plan(name="short", title="Short", steps=(Step("Hold", 20.0), Step("Rest", 10.0)))
CUE_IDS = [c.cue_id for c in fp.build_timeline(PLAN.to_wire()).cues]


async def _cues_of_a_session(world: VirtualWorld, address: str) -> list[int]:
    async with Band.connect(address, backend=world.backend) as band:
        session = Session(band, PLAN)
        subscription = session.events()
        async with asyncio.timeout(120):  # 30 s of workout: a stalled event stream fails here
            await session.run()
    return [n.event.cue_id async for n in subscription if isinstance(n.event, CueFired)]


@pytest.mark.xfail(
    strict=True,
    reason="known bug: with a full ring the band's go-back-N resend lags behind its own "
    "head, so the host never receives the event HELLO said comes next (see the notes)",
)
async def test_a_band_idle_for_ten_minutes_between_workouts_reports_every_cue_of_the_next() -> None:
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig())
        assert await _cues_of_a_session(world, virtual.address) == CUE_IDS
        await asyncio.sleep(600)  # heart rate fills the ring buffer while nobody is connected
        assert virtual.protocol.events_lost > 0
        assert await _cues_of_a_session(world, virtual.address) == CUE_IDS
