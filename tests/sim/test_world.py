"""One virtual world, many hosts' worth of connects at once."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from companion.band import Band
from companion.sim import VirtualBandConfig, VirtualWorld

pytestmark = pytest.mark.looptime


async def test_ten_connects_started_together_all_reach_their_band() -> None:
    async with VirtualWorld() as world:
        bands = [
            await world.add_band(VirtualBandConfig(serial=f"SIM{n:04d}", name=f"Band{n}"))
            for n in range(10)
        ]
        async with contextlib.AsyncExitStack() as stack:
            connected = await asyncio.gather(
                *(
                    stack.enter_async_context(Band.connect(b.address, backend=world.backend))
                    for b in bands
                )
            )
            assert sorted(c.band_id for c in connected) == [f"sim{n:04d}" for n in range(10)]
            assert all(c.link_up for c in connected)
