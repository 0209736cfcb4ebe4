"""A complete band in software: a Bumble GATT peripheral running the band side of
:mod:`firmware_protocol`, with a motor that records what it plays, a heart rate
that follows the workout, a battery, a drifting clock, a button and faults.

The protocol itself is :class:`firmware_protocol.BandProtocol` (no second
implementation here): this module only moves bytes and time in and out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any, Final

from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

import firmware_protocol as fp
from firmware_protocol import gatt

from ..clock import Clock, LoopClock
from .controller import SimController, SimLink
from .cores import BandCore, BandEngine, make_engine
from .quiet import QuietHost

__all__ = ["BandClock", "Motor", "VirtualBand", "VirtualBandConfig"]

logger = logging.getLogger(__name__)

_LEGACY_ADVERTISING_BYTES: Final = 31
_HR_PERIOD_S: Final = 1.0
_BATTERY_DRAIN_PERIOD_S: Final = 600.0
_ADVERTISING_INTERVAL_MS: Final = 50
_RETRANSMIT_S: Final = 0.4
_HEART_RATE_SERVICE_16: Final = 0x180D


@dataclass(frozen=True, slots=True)
class VirtualBandConfig:
    """How a virtual band looks and behaves."""

    name: str = "Companion"  # at most 11 bytes: it shares the 31-byte advertisement
    serial: str = "SIM0001"
    manufacturer: str = "Companion Project"
    model: str = "Virtual Band"
    firmware: str = "1.0.0"
    drift_ppm: float = 0.0  # band clock runs this much fast (+) or slow (-)
    clock_offset_us: int = 5_000_000_000  # band clock reads this much ahead of the host's
    mtu: int = 247  # the largest ATT MTU the band accepts (23 for the smallest)
    require_pairing: bool = True  # control/events need an encrypted, authenticated link
    companion_service: bool = True  # False: a standard heart-rate strap
    battery_percent: int = 87
    hr_seed: int = 1
    rssi: int = -50
    info: fp.BandInfo = field(default_factory=fp.BandInfo)
    clock: Clock | None = None  # the host-side time base the band's clock derives from
    core: BandCore = BandCore.REFERENCE  # which band protocol implementation runs it


class BandClock:
    """The band's own clock: the base clock, scaled by drift and offset, in microseconds."""

    def __init__(self, base: Clock, drift_ppm: float, offset_us: int) -> None:
        self._base = base
        self._rate = 1.0 + drift_ppm / 1_000_000
        self._offset_us = offset_us

    def now_us(self) -> int:
        """The band's time now."""
        return round(self._base.now() * 1_000_000 * self._rate) + self._offset_us

    async def sleep_until_us(self, band_us: int) -> None:
        """Wait until the band's clock reads ``band_us``."""
        await self._base.sleep_until((band_us - self._offset_us) / self._rate / 1_000_000)


@dataclass(slots=True)
class Motor:
    """The vibration motor: every pattern it played, with the band time it started."""

    played: list[fp.MotorAction] = field(default_factory=list)


class _HeartModel:
    """A heart rate that rises over an exercise and recovers at rest, with noise."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._bpm = 68.0

    def step(self, exercising: bool, dt_s: float) -> tuple[int, tuple[int, ...]]:
        target = 135.0 if exercising else 72.0
        tau = 25.0 if exercising else 40.0
        self._bpm += (target - self._bpm) * (1 - math.exp(-dt_s / tau))
        bpm = max(40, round(self._bpm + self._rng.gauss(0, 1.5)))
        rr = round(60 / bpm * 1024 * (1 + self._rng.gauss(0, 0.02)))
        return bpm, (rr,)


def random_static_address(seed: str) -> str:
    """A stable random static address (top two bits 11) derived from ``seed``."""
    digest = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    digest[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in digest)


class _Delegate(PairingDelegate):
    """Numeric comparison only: refusing Just Works is what makes the link authenticated."""

    def __init__(self) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)

    async def confirm(self, auto: bool = False) -> bool:
        return False

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return True


class VirtualBand:
    """One virtual band on a :class:`SimLink`; build it with ``VirtualWorld.add_band``."""

    def __init__(self, link: SimLink, config: VirtualBandConfig) -> None:
        self.config = config
        self.address = random_static_address(config.serial)
        self.clock = BandClock(
            config.clock or LoopClock(), config.drift_ppm, config.clock_offset_us
        )
        base = config.clock or LoopClock()
        self.protocol: BandEngine = make_engine(
            config.core,
            config.info,
            # Radio timers stay real-time when a demo speeds the clock up.
            retransmit_us=round(_RETRANSMIT_S * 1_000_000 * base.rate),
            boot_id=random.Random(config.serial).getrandbits(31),
            now_us=self.clock.now_us(),
        )
        self.motor = Motor()
        self.battery_percent = config.battery_percent
        self.heart_rate_samples_sent = 0
        self.connections = 0
        self._link = link
        self._controller = SimController(config.name, link=link)
        host = QuietHost(self._controller, AsyncPipeSink(self._controller))
        self.device = Device(
            config=DeviceConfiguration(
                name=config.name,
                address=hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS),
                # Fast advertising, as a band waiting for its host does (Bumble's default is
                # 1 s, which would add up to a second to every scan and every connection).
                advertising_interval_min=_ADVERTISING_INTERVAL_MS,
                advertising_interval_max=_ADVERTISING_INTERVAL_MS,
            ),
            host=host,
        )
        self.device.pairing_config_factory = lambda _c: PairingConfig(
            sc=True, mitm=True, bonding=True, delegate=_Delegate()
        )
        self._connection: Connection | None = None
        self._events_subscribed = False
        self._inbox: list[bytes] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._heart = _HeartModel(config.hr_seed)
        self._build_services()

    # -- GATT ---------------------------------------------------------------------------

    def _build_services(self) -> None:
        secure = (
            Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
            | Characteristic.Permissions.WRITE_REQUIRES_AUTHENTICATION
            if self.config.require_pairing
            else Characteristic.Permissions(0)
        )
        self._control: Characteristic[bytes] = Characteristic(
            gatt.CONTROL_CHAR_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.Permissions.WRITEABLE | secure,
            CharacteristicValue(write=self._on_control_write),
        )
        self._events: Characteristic[bytes] = Characteristic(
            gatt.EVENTS_CHAR_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            b"",
        )
        self._events.on("subscription", self._on_events_subscription)
        self._hr: Characteristic[bytes] = Characteristic(
            gatt.HEART_RATE_MEASUREMENT_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            b"",
        )
        self._battery: Characteristic[bytes] = Characteristic(
            gatt.BATTERY_LEVEL_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            CharacteristicValue(read=lambda _c: bytes([self.battery_percent])),
        )
        self._alert: Characteristic[bytes] = Characteristic(
            gatt.ALERT_LEVEL_UUID,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(write=self._on_alert_write),
        )

        def text(uuid: str, value: str) -> Characteristic[bytes]:
            return Characteristic(
                uuid,
                Characteristic.Properties.READ,
                Characteristic.Permissions.READABLE,
                value.encode(),
            )

        companion = [Service(gatt.COMPANION_SERVICE_UUID, [self._control, self._events])]
        self.device.add_services(
            [
                *(companion if self.config.companion_service else []),
                Service(
                    gatt.HEART_RATE_SERVICE_UUID,
                    [
                        self._hr,
                        Characteristic(
                            gatt.BODY_SENSOR_LOCATION_UUID,
                            Characteristic.Properties.READ,
                            Characteristic.Permissions.READABLE,
                            bytes([2]),  # wrist
                        ),
                    ],
                ),
                Service(gatt.BATTERY_SERVICE_UUID, [self._battery]),
                Service(
                    gatt.DEVICE_INFORMATION_SERVICE_UUID,
                    [
                        text(gatt.MANUFACTURER_NAME_UUID, self.config.manufacturer),
                        text(gatt.MODEL_NUMBER_UUID, self.config.model),
                        text(gatt.FIRMWARE_REVISION_UUID, self.config.firmware),
                        text(gatt.SERIAL_NUMBER_UUID, self.config.serial),
                    ],
                ),
                Service(gatt.IMMEDIATE_ALERT_SERVICE_UUID, [self._alert]),
            ]
        )

    def _advertising_data(self) -> bytes:
        # A real band would move its name to the scan response; Bumble's virtual
        # controller does not simulate scan responses, so the name and the 128-bit
        # service UUID share the advertisement (and the flags are left out).
        data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.config.name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID(gatt.COMPANION_SERVICE_UUID)),
                    )
                    if self.config.companion_service
                    else (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID.from_16_bits(_HEART_RATE_SERVICE_16)),
                    ),
                ]
            )
        )
        # Bumble's simulator accepts more than a real controller would: fail here instead.
        if len(data) > _LEGACY_ADVERTISING_BYTES:
            raise ValueError(
                f"advertising data of {len(data)} bytes exceeds the legacy "
                f"{_LEGACY_ADVERTISING_BYTES}: shorten the band name {self.config.name!r}"
            )
        return data

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Power on, advertise, and start the band's own timers."""
        self.device.on("connection", self._on_connection)
        await self.device.power_on()
        self.device.advertising_data = self._advertising_data()
        await self.device.start_advertising(auto_restart=True)
        self._tasks = [
            asyncio.create_task(self._drive()),
            asyncio.create_task(self._sense_heart_rate()),
            asyncio.create_task(self._drain_battery()),
        ]

    async def close(self) -> None:
        """Stop timers, advertising and the link, and leave the virtual link (once)."""
        if self._controller not in self._link.controllers:
            return  # already closed, e.g. a test switched the band off before the world ends
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.disconnect()
        with contextlib.suppress(Exception):
            await self.device.power_off()
        self._link.remove_controller(self._controller)
        close_engine = getattr(self.protocol, "close", None)
        if close_engine is not None:
            close_engine()

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self.connections += 1
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        connection.on(
            "connection_att_mtu_update", lambda: self.protocol.set_mtu(connection.att_mtu)
        )

    def _on_disconnection(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
            self._events_subscribed = False
            self.protocol.connection_lost()

    def _on_events_subscription(self, _bearer: Any, notify: bool, _indicate: bool) -> None:
        connection = self._connection
        if notify and connection is not None and not self._events_subscribed:
            self._events_subscribed = True
            self.protocol.connection_made(connection.att_mtu, self.clock.now_us())
            self._wake.set()

    # -- the protocol driver ---------------------------------------------------------------------

    def _on_control_write(self, _connection: Any, value: bytes) -> None:
        self._inbox.append(bytes(value))
        self._wake.set()

    def _on_alert_write(self, _connection: Any, value: bytes) -> None:
        # Host-timed buzz through Immediate Alert (how standard bands are cued).
        if value and value[0]:
            pattern = fp.default_pattern(fp.CueKind.NEXT_EXERCISE)
            self.motor.played.append(
                fp.MotorAction(-1, fp.CueKind.NEXT_EXERCISE, pattern, self.clock.now_us())
            )

    async def _drive(self) -> None:
        while True:
            deadline = self.protocol.next_deadline_us()
            if not self._inbox:
                waiter = asyncio.ensure_future(self._wake.wait())
                pending: set[asyncio.Future[Any]] = {waiter}
                if deadline is not None:
                    pending.add(asyncio.ensure_future(self.clock.sleep_until_us(deadline)))
                try:
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for future in pending:
                        future.cancel()
            self._wake.clear()
            now = self.clock.now_us()
            inbox, self._inbox = self._inbox, []
            for data in inbox:
                self.protocol.receive_data(data, now)
            self.protocol.tick(now)
            self.motor.played.extend(self.protocol.motor_actions())
            await self._notify_all()

    async def _notify_all(self) -> None:
        fragments = self.protocol.data_to_send()
        connection = self._connection
        if connection is None or not self._events_subscribed:
            return
        for fragment in fragments:
            try:
                await self.device.notify_subscriber(connection, self._events, fragment)
            except Exception as exc:  # the link may drop mid-notification: log, never crash
                logger.debug("notification lost: %s", exc)
                return

    def poke(self) -> None:
        """Make the driver look at the protocol now (after a button press or a sample)."""
        self._wake.set()

    async def _sense_heart_rate(self) -> None:
        next_at = self.clock.now_us()
        while True:
            next_at += round(_HR_PERIOD_S * 1_000_000)
            await self.clock.sleep_until_us(next_at)
            exercising = self.protocol.state is fp.SessionStateCode.RUNNING
            bpm, rr = self._heart.step(exercising, _HR_PERIOD_S)
            self.protocol.record_heart_rate(bpm, rr, True, self.clock.now_us())
            self.heart_rate_samples_sent += 1
            self.poke()
            connection = self._connection
            if connection is not None:
                measurement = fp.HeartRateMeasurement(bpm, fp.ContactStatus.DETECTED, None, rr)
                with contextlib.suppress(Exception):
                    await self.device.notify_subscriber(connection, self._hr, bytes(measurement))

    async def _drain_battery(self) -> None:
        while self.battery_percent > 5:
            await self.clock.sleep_until_us(
                self.clock.now_us() + round(_BATTERY_DRAIN_PERIOD_S * 1_000_000)
            )
            self.battery_percent -= 1
            connection = self._connection
            if connection is not None:
                with contextlib.suppress(Exception):
                    await self.device.notify_subscriber(
                        connection, self._battery, bytes([self.battery_percent])
                    )

    # -- what a person (or a test) does to the band ---------------------------------------

    def clock_now_us(self) -> int:
        """The band's clock now."""
        return self.clock.now_us()

    def press(self, button: fp.Button) -> None:
        """A gesture on the band: stop and pain end the session at once, on the band."""
        self.protocol.press_button(button, self.clock.now_us())
        self.motor.played.extend(self.protocol.motor_actions())
        self.poke()

    def drop_link(self) -> None:
        """Drop the BLE link now (the band re-advertises, the workout runs on)."""
        connection = self._connection
        if connection is not None:
            asyncio.get_running_loop().create_task(self._disconnect(connection))

    async def _disconnect(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):
            await connection.disconnect(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)

    async def refuse_connections(self, seconds: float) -> None:
        """Stop advertising for ``seconds`` (of the base clock): nobody can connect meanwhile."""
        await self.device.stop_advertising()
        base = self.config.clock or LoopClock()
        await base.sleep(seconds)
        await self.device.start_advertising(auto_restart=True)

    def set_notification_delay(self, low_s: float, high_s: float) -> None:
        """Delay every packet on the link by ``low_s``..``high_s`` seconds (both directions)."""
        self._link.set_delay(low_s, high_s)

    def reboot(self) -> None:
        """Lose the plan and the session, as a real band does on reboot, and drop the link."""
        self.protocol.reboot()
        self.drop_link()
