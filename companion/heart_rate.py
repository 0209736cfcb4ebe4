"""Heart rate from the standard Heart Rate Service alone: any strap or band that has it.

Many people own a chest strap or a watch that speaks only the Bluetooth Heart
Rate Profile. :class:`HeartRateSensor` reads such a device;
:meth:`companion.band.Band.heart_rate` reads the same service on a companion
band. Both decode 0x2A37 with :mod:`firmware_protocol` and stamp each sample
with the host's clock when it arrived (HRS carries no timestamp of its own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import firmware_protocol as fp
from firmware_protocol import gatt

from .ble.backend import BleakBackend
from .ble.link import GattLink
from .ble.scan import find_band
from .clock import Clock, LoopClock
from .errors import IncompatibleBandError, LinkLostError
from .events import HeartRate

__all__ = ["HeartRateSensor", "heart_rate_from_hrs", "subscribe_heart_rate"]

logger = logging.getLogger(__name__)

_CONTACT = {
    fp.ContactStatus.NOT_SUPPORTED: None,
    fp.ContactStatus.NOT_DETECTED: False,
    fp.ContactStatus.DETECTED: True,
}


def heart_rate_from_hrs(data: bytes, t: float) -> HeartRate | None:
    """One 0x2A37 notification as a :class:`HeartRate` at host time ``t``; None if malformed."""
    try:
        measurement = fp.HeartRateMeasurement.from_bytes(data)
    except fp.ProtocolError as exc:
        logger.warning("ignored a malformed heart-rate notification %s: %s", data.hex(), exc)
        return None
    return HeartRate(measurement.bpm, t, measurement.rr_ms, _CONTACT[measurement.contact])


async def subscribe_heart_rate(link: GattLink, clock: Clock) -> AsyncIterator[HeartRate]:
    """Every heart-rate notification of ``link`` until it drops."""
    if not link.has_characteristic(gatt.HEART_RATE_MEASUREMENT_UUID):
        raise IncompatibleBandError(
            f"{link.address} has no Heart Rate Service (0x180D): it cannot report heart rate"
        )
    samples: asyncio.Queue[HeartRate] = asyncio.Queue()

    def on_value(data: bytes) -> None:
        sample = heart_rate_from_hrs(data, clock.now())
        if sample is not None:
            samples.put_nowait(sample)

    await link.subscribe(gatt.HEART_RATE_MEASUREMENT_UUID, on_value)
    while link.is_connected or not samples.empty():
        try:
            yield await asyncio.wait_for(samples.get(), timeout=1.0)
        except TimeoutError:
            continue


class HeartRateSensor:
    """``async with HeartRateSensor.connect("Polar H10") as strap``: any standard HR sensor."""

    def __init__(
        self,
        target: str,
        *,
        backend: BleakBackend | None = None,
        clock: Clock | None = None,
        scan_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self._backend = backend
        self.clock = clock or LoopClock()
        self._scan_timeout = scan_timeout
        self._link: GattLink | None = None

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        backend: BleakBackend | None = None,
        clock: Clock | None = None,
        scan_timeout: float = 10.0,
    ) -> HeartRateSensor:
        """A sensor to use as an async context manager; ``target`` is a name or an address."""
        return cls(target, backend=backend, clock=clock, scan_timeout=scan_timeout)

    async def __aenter__(self) -> Self:
        device = await find_band(self.target, timeout=self._scan_timeout, backend=self._backend)
        self._link = await GattLink.open(device, backend=self._backend, on_disconnect=lambda: None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._link is not None:
            await self._link.close()

    async def heart_rate(self) -> AsyncIterator[HeartRate]:
        """Heart-rate samples as the sensor sends them (about one a second)."""
        if self._link is None:
            raise LinkLostError("connect first: `async with HeartRateSensor.connect(...)`")
        async for sample in subscribe_heart_rate(self._link, self.clock):
            yield sample
