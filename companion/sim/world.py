"""VirtualWorld: a virtual link with bands on it, and the bleak backend that reaches them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from bumble import hci
from bumble.device import Device, DeviceConfiguration
from bumble.host import Host
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from .backend import SimAdapter
from .band import VirtualBand, VirtualBandConfig, random_static_address, unless_link_gone
from .bangle import BangleConfig, BangleJS
from .controller import SimController, SimLink
from .infinitime import InfiniTime, InfiniTimeConfig
from .peripheral import Peripheral
from .quiet import QuietHost

__all__ = ["VirtualWorld", "central_device"]

# Bumble logs ~33 DEBUG records per GATT round trip: quiet unless asked.
logging.getLogger("bumble").setLevel(logging.WARNING)


logger = logging.getLogger(__name__)

#: Shown the six-digit code the host's side of numeric comparison displays.
ShowCode = Callable[[int], None]


class _HostDelegate(PairingDelegate):
    """The host side of numeric comparison, as an OS pairing dialog the user accepts.

    The virtual adapter stands for the computer's Bluetooth stack: it shows
    its code (``show_code``) and says yes; the band's wearer decides.
    """

    def __init__(self, show_code: ShowCode | None) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self._show_code = show_code

    async def compare_numbers(self, number: int, digits: int) -> bool:
        logger.info("pairing code on this computer: %06d (accepted)", number)
        if self._show_code is not None:
            self._show_code(number)
        return True


def central_device(
    host: Host, name: str, address: str, *, show_code: ShowCode | None = None
) -> Device:
    """A host's central on ``host`` (not yet powered on): numeric comparison, bonding.

    Shared by the in-process world and the remote adapter so that both pair the same way.
    """
    device = Device(
        config=DeviceConfiguration(
            name=name, address=hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        ),
        host=host,
    )
    device.pairing_config_factory = lambda _c: PairingConfig(
        sc=True, mitm=True, bonding=True, delegate=_HostDelegate(show_code)
    )
    return device


class VirtualWorld(SimAdapter):
    """``async with VirtualWorld() as world``: bands on a virtual link, reached through bleak.

    The world plays the host's Bluetooth adapter too: one central (like one OS
    adapter) that every bleak client of this world shares, so bonds survive
    reconnects as they do on a laptop.
    """

    def __init__(self, *, name: str = "host") -> None:
        super().__init__()
        self.link = SimLink()
        self.bands: list[VirtualBand] = []
        self.watches: list[Peripheral] = []  # the emulated watches people own
        self._connect_lock = asyncio.Lock()
        self._central_lock = asyncio.Lock()  # concurrent first connects build one central
        self._name = name
        self._central: Device | None = None
        self._central_controller: SimController | None = None
        self._shares_bands = False  # another host's adapter: the bands are the world's

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def add_band(self, config: VirtualBandConfig | None = None) -> VirtualBand:
        """Put a new band on the link, powered on and advertising."""
        band = VirtualBand(self.link, config or VirtualBandConfig())
        await band.start()
        self.bands.append(band)
        return band

    async def add_infinitime(self, config: InfiniTimeConfig | None = None) -> InfiniTime:
        """Put an emulated InfiniTime (PineTime) on the link, advertising."""
        watch = InfiniTime(self.link, config or InfiniTimeConfig())
        await watch.start()
        self.watches.append(watch)
        return watch

    async def add_bangle(self, config: BangleConfig | None = None) -> BangleJS:
        """Put an emulated Bangle.js with the stock Android Integration app on the link."""
        watch = BangleJS(self.link, config or BangleConfig())
        await watch.start()
        self.watches.append(watch)
        return watch

    async def central(self) -> Device:
        """The host's adapter on this link (created on first use).

        Powering it on awaits, so without the lock every connect started
        together would build (and scan with) a central of its own, and all but
        the first would find no band.
        """
        async with self._central_lock:
            return await self._power_on_central()

    async def _power_on_central(self) -> Device:
        if self._central is None:
            controller = SimController(self._name, link=self.link)
            device = central_device(
                QuietHost(controller, AsyncPipeSink(controller)),
                self._name,
                random_static_address(f"host:{self._name}"),
            )
            await device.power_on()
            self._central, self._central_controller = device, controller
        return self._central

    async def acquire(self) -> Device:
        """The world's central; it stays up until the world closes."""
        return await self.central()

    def release(self) -> None:
        """Nothing to do: the world's central lives as long as the world."""

    async def settle(self) -> None:
        """Nothing to wait for: releasing never closes the world's central."""

    @property
    def connect_lock(self) -> asyncio.Lock:
        """Held around a connect: the central makes one LE connection at a time."""
        return self._connect_lock

    def band_at(self, address: str) -> VirtualBand | None:
        """The band with this address, if it is on this link."""
        return next((b for b in self.bands if b.address == address.upper()), None)

    def watch_at(self, address: str) -> Peripheral | None:
        """The emulated watch with this address, if it is on this link."""
        return next((w for w in self.watches if w.address == address.upper()), None)

    def rssi_of(self, address: str, heard: int) -> int:
        """The signal strength a band is heard at (its configured RSSI)."""
        band, watch = self.band_at(address), self.watch_at(address)
        if band is not None:
            return band.config.rssi
        return watch.rssi if watch is not None else heard

    def mtu_for(self, address: str, preferred: int) -> int:
        """The MTU to request from a band: the host's preference, capped by the band."""
        band, watch = self.band_at(address), self.watch_at(address)
        if band is not None:
            return min(preferred, band.config.mtu)
        return min(preferred, watch.mtu) if watch is not None else preferred

    def another_host(self, name: str) -> VirtualWorld:
        """A second host's adapter on this world's link (a gym's second Pi): a central of its
        own, the same bands in reach. Close it before the world."""
        other = VirtualWorld(name=name)
        other.link, other.bands, other.watches = self.link, self.bands, self.watches
        other._shares_bands = True
        return other

    async def close(self) -> None:
        """Tear everything down so no timer outlives the world (another host: its central)."""
        if self._shares_bands:
            self.bands, self.watches = [], []
        for band in self.bands:
            await band.close()
        self.bands.clear()
        for watch in self.watches:
            await watch.close()
        self.watches.clear()
        if self._central is not None:
            with unless_link_gone(logger, "the world's central: powering off"):
                await self._central.power_off()
            if self._central_controller is not None:
                self.link.remove_controller(self._central_controller)
            self._central = None
