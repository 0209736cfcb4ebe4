"""What a user sees when a band cannot be used: each error says what to do."""

from __future__ import annotations

import pytest

from companion.band import Band
from companion.errors import BandNotFoundError, PairingRequiredError, PlanTooLargeError
from companion.plan import Plan, Step, builtin_plan
from companion.sim import VirtualWorld
from firmware_protocol import BandInfo

from .conftest import connected

pytestmark = pytest.mark.looptime


async def test_a_band_that_is_not_there_is_not_found_with_a_hint() -> None:
    async with VirtualWorld() as world:
        await world.add_band()
        with pytest.raises(BandNotFoundError, match="companion scan"):
            async with Band.connect("Nobody", backend=world.backend, scan_timeout=2):
                pass


async def test_an_unpaired_band_tells_the_user_to_pair_when_pairing_is_off() -> None:
    with pytest.raises(PairingRequiredError, match="companion pair"):
        async with connected(pair=False):
            pass


async def test_a_plan_too_big_for_the_band_fails_before_anything_is_sent() -> None:
    from companion.sim import VirtualBandConfig

    config = VirtualBandConfig(info=BandInfo(max_steps=3))
    async with connected(config) as (virtual, band):
        with pytest.raises(PlanTooLargeError, match="at most 3"):
            await band.push_plan(builtin_plan("back-5"))
        assert virtual.protocol.plan is None


async def test_a_step_name_longer_than_the_band_shows_is_refused() -> None:
    plan = Plan("long", "long", (Step("x" * 40, 60),))
    async with connected() as (_virtual, band):
        with pytest.raises(PlanTooLargeError, match="Shorten it"):
            await band.push_plan(plan)
