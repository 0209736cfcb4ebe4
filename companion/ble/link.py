"""One GATT connection to a band, with bleak's errors turned into ours.

This is the only place that holds a ``BleakClient``. It connects with
bleak-retry-connector (which knows the transient failures of each OS stack),
and hands the rest of the library plain bytes and companion errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak_retry_connector import establish_connection

from ..errors import CompanionError, LinkLostError, PairingRequiredError
from .backend import BleakBackend

__all__ = ["PAIRING_ADVICE", "GattLink"]

logger = logging.getLogger(__name__)

# ATT error codes that mean "this link is not paired (or not paired well enough)".
_ATT_INSUFFICIENT_AUTHENTICATION = 0x05
_ATT_INSUFFICIENT_ENCRYPTION = 0x0F
_PAIRING_CODES = {_ATT_INSUFFICIENT_AUTHENTICATION, _ATT_INSUFFICIENT_ENCRYPTION}

#: What the person must do while pairing: the band accepts numeric comparison only.
PAIRING_ADVICE = (
    "this computer will ask you to confirm a six-digit code (in its Bluetooth pairing dialog, "
    "or as `Confirm passkey NNNNNN (yes/no)` in bluetoothctl) and the band shows a code too. "
    "If they are the same, accept on the computer and press confirm on the band; if they "
    "differ, refuse on both: someone else is pairing."
)


def _pairing_retry(address: str) -> str:
    """What to do after a pairing that did not finish."""
    return (
        f"Try again with `companion pair {address}`: when this computer and the band each show "
        "a code, check that they are the same, accept on the computer and press confirm on the "
        "band (if they differ, refuse on both: someone else is pairing). If the band was paired "
        "with this computer before, remove it from the system's Bluetooth settings first."
    )


def _translate(exc: BaseException, what: str, address: str) -> CompanionError:
    """A companion error, with the fix in its message, for a bleak failure during ``what``."""
    if isinstance(exc, BleakGATTProtocolError) and exc.code in _PAIRING_CODES:
        return PairingRequiredError(
            f"band {address} refused {what}: the link is not paired with a confirmed code. "
            f"Pair it once with `companion pair {address}`: {PAIRING_ADVICE}"
        )
    return LinkLostError(f"{what} failed on band {address}: {exc or type(exc).__name__}")


class GattLink:
    """A connected band: write, read, subscribe, pair; ``closed`` callbacks on disconnect."""

    def __init__(self, client: BleakClient, address: str) -> None:
        self._client = client
        self.address = address

    @classmethod
    async def open(
        cls,
        device: BLEDevice,
        *,
        backend: BleakBackend | None,
        on_disconnect: Callable[[], None],
        attempts: int = 3,
    ) -> GattLink:
        """Connect to ``device``, retrying transient failures ``attempts`` times."""

        def disconnected(_client: BleakClient) -> None:
            on_disconnect()

        extra: dict[str, Any] = {"backend": backend.client} if backend else {}
        try:
            client = await establish_connection(
                BleakClient,
                device,
                device.name or device.address,
                disconnected_callback=disconnected,
                max_attempts=attempts,
                **extra,
            )
        except (BleakError, TimeoutError) as exc:
            raise LinkLostError(
                f"could not connect to band {device.address}: {exc}. Is it in range and not "
                "connected to another phone or laptop?"
            ) from exc
        return cls(client, device.address)

    @property
    def mtu(self) -> int:
        """The negotiated ATT MTU (23 until the exchange raised it)."""
        return self._client.mtu_size

    @property
    def is_connected(self) -> bool:
        """Whether the link is up right now."""
        return self._client.is_connected

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the band serves the characteristic ``uuid`` (once or more)."""
        return bool(self._characteristics(uuid))

    def _characteristics(self, uuid: str) -> list[BleakGATTCharacteristic]:
        # bleak refuses to look up by UUID one that a band declares twice: walk them all.
        wanted = uuid.lower()
        return [c for c in self._client.services.characteristics.values() if c.uuid == wanted]

    async def pair(self) -> None:
        """Pair and bond; on a real OS its pairing agent may ask the user to confirm a code."""
        try:
            await self._client.pair()
        except TimeoutError as exc:
            raise PairingRequiredError(
                f"pairing with band {self.address} timed out: nobody confirmed the code in time. "
                f"{_pairing_retry(self.address)}"
            ) from exc
        except BleakError as exc:
            raise PairingRequiredError(
                f"pairing with band {self.address} failed: the six-digit codes on this computer "
                "and on the band did not match, or the band refused (its wearer pressed reject, "
                "or nobody pressed confirm on it within 30 s). Bluetooth said: "
                f"{exc or type(exc).__name__}. {_pairing_retry(self.address)}"
            ) from exc

    async def read(self, uuid: str) -> bytes:
        """Read a characteristic's value."""
        try:
            return bytes(await self._client.read_gatt_char(uuid))
        except (BleakError, TimeoutError) as exc:
            raise _translate(exc, f"reading {uuid}", self.address) from exc

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Write ``data``; with ``response`` the band confirms it (and refuses an unpaired link)."""
        try:
            await self._client.write_gatt_char(uuid, data, response=response)
        except (BleakError, TimeoutError) as exc:
            raise _translate(exc, f"writing {uuid}", self.address) from exc

    async def write_every(self, uuid: str, data: bytes) -> None:
        """Write ``data`` to every characteristic ``uuid`` the band declares, by handle (a
        firmware may declare one twice, and serve either)."""
        try:
            for characteristic in self._characteristics(uuid):
                await self._client.write_gatt_char(characteristic, data, response=True)
        except (BleakError, TimeoutError) as exc:
            raise _translate(exc, f"writing {uuid}", self.address) from exc

    async def subscribe(self, uuid: str, on_value: Callable[[bytes], None]) -> None:
        """Call ``on_value`` with every notification of ``uuid``."""

        def forward(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            on_value(bytes(data))

        try:
            await self._client.start_notify(uuid, forward)
        except (BleakError, TimeoutError) as exc:
            raise _translate(exc, f"subscribing to {uuid}", self.address) from exc

    async def close(self) -> None:
        """Disconnect; never raises, since the band may already be gone."""
        try:
            await self._client.disconnect()
        except (BleakError, TimeoutError) as exc:
            logger.debug("disconnect from %s: %s", self.address, exc)
