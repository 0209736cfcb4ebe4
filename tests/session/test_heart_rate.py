"""Heart rate from the standard Heart Rate Service alone: a strap, or a companion band."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from companion.band import Band
from companion.errors import IncompatibleBandError
from companion.events import HeartRate
from companion.heart_rate import HeartRateSensor, heart_rate_from_hrs
from companion.sim import VirtualBandConfig, VirtualWorld

from .conftest import connected

pytestmark = pytest.mark.looptime

STRAP = VirtualBandConfig(name="HR Strap", serial="STRAP01", companion_service=False)


async def _take(samples: AsyncIterator[HeartRate], count: int) -> list[HeartRate]:
    taken: list[HeartRate] = []
    async for sample in samples:
        taken.append(sample)
        if len(taken) == count:
            break
    return taken


async def test_a_standard_strap_streams_heart_rate_with_rr_and_contact() -> None:
    async with VirtualWorld() as world:
        strap = await world.add_band(STRAP)
        async with HeartRateSensor.connect(strap.address, backend=world.backend) as sensor:
            samples = await _take(sensor.heart_rate(), 5)
    assert all(60 <= s.bpm <= 80 for s in samples)  # resting: no workout runs on a strap
    assert all(s.contact is True for s in samples)
    assert all(len(s.rr_ms) >= 1 and 500 < s.rr_ms[0] < 1100 for s in samples)
    times = [s.t for s in samples]
    assert times == sorted(times)
    assert 3.5 < times[-1] - times[0] < 4.5  # about one sample a second


async def test_a_companion_band_also_gives_heart_rate_from_its_standard_service() -> None:
    async with connected() as (_virtual, band):
        samples = await _take(band.heart_rate(), 3)
    assert len(samples) == 3
    assert all(40 <= s.bpm <= 200 for s in samples)


async def test_a_strap_is_not_mistaken_for_a_companion_band() -> None:
    async with VirtualWorld() as world:
        strap = await world.add_band(STRAP)
        with pytest.raises(IncompatibleBandError, match="HeartRateSensor"):
            async with Band.connect(strap.address, backend=world.backend):
                pass


@pytest.mark.parametrize("data", [b"", b"\x10", b"\x01\x50", b"\x08\x50\x01"])
def test_a_malformed_notification_is_dropped_not_raised(data: bytes) -> None:
    assert heart_rate_from_hrs(data, 0.0) is None


def test_a_notification_decodes_with_its_contact_and_rr() -> None:
    sample = heart_rate_from_hrs(bytes([0x16, 72, 0x00, 0x04]), 3.0)
    assert sample == HeartRate(72, 3.0, (1000.0,), True)
