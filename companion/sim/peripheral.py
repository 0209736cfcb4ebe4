"""What every emulated watch shares: a Bumble peripheral on the virtual link.

:class:`Peripheral` owns the controller, the device, advertising and the one
connection, and gives its subclasses a motor record and a clock. The watches
themselves (:mod:`.infinitime`, :mod:`.bangle`) only declare their GATT table
and what a write does.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
from dataclasses import dataclass
from typing import Any, Final

from bumble import hci
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import Characteristic, Service
from bumble.transport.common import AsyncPipeSink

from ..clock import Clock, LoopClock
from .band import random_static_address, unless_link_gone
from .controller import SimController, SimLink, enforce_write_properties
from .quiet import QuietHost

__all__ = ["MotorPulse", "MotorSource", "Peripheral"]

logger = logging.getLogger(__name__)

_LEGACY_ADVERTISING_BYTES: Final = 31
_ADVERTISING_INTERVAL_MS: Final = 50


class MotorSource(enum.Enum):
    """What made an emulated watch's motor run."""

    ALERT_LEVEL = "alert_level"  # an Immediate Alert write (InfiniTime)
    NOTIFICATION = "notification"  # a notification's preview (InfiniTime New Alert)
    CALL = "call"  # one ring of an incoming-call alert (InfiniTime)
    BUZZ = "buzz"  # Bangle.buzz(ms, strength) (Bangle.js)


@dataclass(frozen=True, slots=True)
class MotorPulse:
    """One run of the motor: when it started (seconds on the watch's clock) and for how long."""

    t: float
    duration_ms: int
    source: MotorSource
    strength: float = 1.0  # 0..1; InfiniTime's motor has no intensity


class Peripheral(abc.ABC):
    """One emulated watch on a :class:`SimLink`: advertising, one connection, a motor."""

    def __init__(
        self,
        link: SimLink,
        *,
        name: str,
        seed: str,
        clock: Clock | None,
        rssi: int,
        mtu: int,
    ) -> None:
        self.name = name
        self.address = random_static_address(seed)
        self.clock = clock or LoopClock()
        self.rssi = rssi
        self.mtu = mtu
        self.motor: list[MotorPulse] = []
        self.connections = 0
        self.refused_connections = 0
        self._link = link
        self._controller = SimController(name, link=link)
        self.device = Device(
            config=DeviceConfiguration(
                name=name,
                address=hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS),
                advertising_interval_min=_ADVERTISING_INTERVAL_MS,
                advertising_interval_max=_ADVERTISING_INTERVAL_MS,
            ),
            host=QuietHost(self._controller, AsyncPipeSink(self._controller)),
        )
        enforce_write_properties(self.device)
        self.connection: Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- what a subclass declares -----------------------------------------------------------

    @abc.abstractmethod
    def services(self) -> list[Service]:
        """The GATT table."""

    @abc.abstractmethod
    def advertising_data(self) -> bytes:
        """The advertisement (at most 31 bytes, checked)."""

    def scan_response_data(self) -> bytes:
        """The scan response (empty unless the watch uses one)."""
        return b""

    def background(self) -> list[Any]:
        """Coroutines that run while the watch is on (sensors, timers)."""
        return []

    def on_connected(self, connection: Connection) -> None:  # noqa: B027 (optional hook)
        """A host connected (a hook: nothing by default)."""

    def on_disconnected(self) -> None:  # noqa: B027 (optional hook)
        """The host went away (a hook: nothing by default)."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Power on and advertise."""
        self.device.add_services(self.services())
        self.device.on("connection", self._on_connection)
        await self.device.power_on()
        for what, data in (
            ("advertising data", self.advertising_data()),
            ("scan response", self.scan_response_data()),
        ):
            # Bumble's simulator accepts more than a real controller would: fail here instead.
            if len(data) > _LEGACY_ADVERTISING_BYTES:
                raise ValueError(f"{what} of {len(data)} bytes exceeds the legacy 31")
        self.device.advertising_data = self.advertising_data()
        self.device.scan_response_data = self.scan_response_data()
        await self.device.start_advertising(auto_restart=True)
        self._tasks = [asyncio.create_task(coro) for coro in self.background()]

    async def close(self) -> None:
        """Stop timers, advertising and the link, and leave the virtual link (once)."""
        if self._controller not in self._link.controllers:
            return
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with unless_link_gone(logger, f"{self.name}: stopping advertising"):
            await self.device.stop_advertising()
        if self.connection is not None:
            with unless_link_gone(logger, f"{self.name}: disconnecting"):
                await self.connection.disconnect()
        with unless_link_gone(logger, f"{self.name}: powering off"):
            await self.device.power_off()
        self._link.remove_controller(self._controller)

    def _on_connection(self, connection: Connection) -> None:
        if self.connection is not None:
            # One link at a time: a second central is turned away at once.
            self.refused_connections += 1
            logger.info("%s refused a second connection", self.name)
            asyncio.get_running_loop().create_task(self._hang_up(connection))
            return
        self.connection = connection
        self.connections += 1
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        self.on_connected(connection)

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
            self.on_disconnected()

    async def _hang_up(self, connection: Connection, reason: int | None = None) -> None:
        with unless_link_gone(logger, f"{self.name}: hanging up"):
            await connection.disconnect(
                reason or hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
            )

    async def notify(self, characteristic: Characteristic[bytes], value: bytes) -> None:
        """Notify the connected host, if it subscribed (a lost link loses the notification)."""
        connection = self.connection
        if connection is None:
            return
        try:
            await self.device.notify_subscriber(connection, characteristic, value)
        except Exception as exc:  # the link may drop mid-notification: log, never crash
            logger.debug("%s: notification lost: %s", self.name, exc)

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        """Run ``coro`` for as long as the watch is on."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        return task

    # -- what a test does to the watch ----------------------------------------------------------

    def drop_link(self) -> None:
        """Drop the BLE link now (the watch re-advertises)."""
        connection = self.connection
        if connection is not None:
            asyncio.get_running_loop().create_task(
                self._hang_up(connection, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
            )

    async def refuse_connections(self, seconds: float) -> None:
        """Stop advertising for ``seconds``: nobody can connect meanwhile."""
        await self.device.stop_advertising()
        await self.clock.sleep(seconds)
        await self.device.start_advertising(auto_restart=True)
