"""Finding bands: scan for advertisements and resolve what the user typed.

A target is whatever a person has at hand: a name ("Companion Band"), a
platform address (a MAC on Linux and Windows, a UUID on macOS) or a virtual
band's address. Scanning is the only way to get a ``BLEDevice`` that every
bleak backend accepts, so even an address goes through a scan.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from firmware_protocol.gatt import COMPANION_SERVICE_UUID, HEART_RATE_SERVICE_UUID

from ..errors import BandNotFoundError, BluetoothUnavailableError
from .backend import BleakBackend

__all__ = ["FoundBand", "find_advertised", "find_band", "scan"]

logger = logging.getLogger(__name__)

# Nordic UART: how a Bangle.js (and other Espruino devices) is reached.
_UART_SERVICE_UUID = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"


@dataclass(frozen=True, slots=True)
class FoundBand:
    """One advertising device that may be a band: companion protocol, Heart Rate or a UART."""

    name: str
    address: str
    rssi: int
    speaks_companion: bool
    has_heart_rate: bool
    service_uuids: tuple[str, ...] = ()  # as advertised (scan response included), lower case


def _as_found(device: BLEDevice, adv: AdvertisementData) -> FoundBand | None:
    uuids = {uuid.lower() for uuid in adv.service_uuids}
    companion = COMPANION_SERVICE_UUID in uuids
    heart_rate = HEART_RATE_SERVICE_UUID in uuids
    if not (companion or heart_rate or _UART_SERVICE_UUID in uuids):
        return None
    return FoundBand(
        name=adv.local_name or device.name or "",
        address=device.address,
        rssi=adv.rssi,
        speaks_companion=companion,
        has_heart_rate=heart_rate,
        service_uuids=tuple(sorted(uuids)),
    )


@contextlib.contextmanager
def _adapter_errors(backend: BleakBackend | None) -> Iterator[None]:
    """Turn "no adapter" failures of the platform stack into one clear error."""
    try:
        yield
    except (BleakError, OSError) as exc:
        if backend is not None:  # a virtual adapter: its own message says what to start
            raise BluetoothUnavailableError(str(exc)) from exc
        raise BluetoothUnavailableError(
            f"Bluetooth is not available here ({exc or type(exc).__name__}): switch the "
            "adapter on (on Linux, check that `bluetoothctl show` lists one and bluetoothd "
            "runs), or try a virtual band with --sim"
        ) from exc


async def scan(*, timeout: float = 5.0, backend: BleakBackend | None = None) -> list[FoundBand]:
    """Every band heard within ``timeout`` seconds, strongest signal first."""
    extra: dict[str, Any] = {"backend": backend.scanner} if backend else {}
    with _adapter_errors(backend):
        heard = await BleakScanner.discover(timeout=timeout, return_adv=True, **extra)
    bands = [found for device, adv in heard.values() if (found := _as_found(device, adv))]
    return sorted(bands, key=lambda band: band.rssi, reverse=True)


async def find_band(
    target: str, *, timeout: float = 10.0, backend: BleakBackend | None = None
) -> BLEDevice:
    """The advertising device whose address or name is ``target`` (address match preferred)."""
    device, _advertised = await find_advertised(target, timeout=timeout, backend=backend)
    return device


async def find_advertised(
    target: str, *, timeout: float = 10.0, backend: BleakBackend | None = None
) -> tuple[BLEDevice, FoundBand]:
    """The device whose address or name is ``target``, with what it advertised."""
    wanted = target.lower()
    heard: dict[str, FoundBand] = {}

    def matches(device: BLEDevice, adv: AdvertisementData) -> bool:
        name = (adv.local_name or device.name or "").lower()
        if device.address.lower() == wanted or name == wanted:
            uuids = tuple(sorted(uuid.lower() for uuid in adv.service_uuids))
            heard[device.address] = FoundBand(
                name=adv.local_name or device.name or "",
                address=device.address,
                rssi=adv.rssi,
                speaks_companion=COMPANION_SERVICE_UUID in uuids,
                has_heart_rate=HEART_RATE_SERVICE_UUID in uuids,
                service_uuids=uuids,
            )
            return True
        return False

    extra: dict[str, Any] = {"backend": backend.scanner} if backend else {}
    with _adapter_errors(backend):
        device = await BleakScanner.find_device_by_filter(matches, timeout=timeout, **extra)
    if device is None:
        raise BandNotFoundError(
            f"band {target!r} not found within {timeout:g} s: is it charged, near, and advertising "
            "(not connected to a phone)? Run `companion scan` to list the bands in range."
        )
    logger.debug("found %s at %s", target, device.address)
    return device, heard[device.address]
