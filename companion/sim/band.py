"""A complete band in software: a Bumble GATT peripheral running the band side of
:mod:`firmware_protocol`, with a motor that records what it plays, a heart rate
that follows the workout, a battery, a drifting clock, a button and faults.

The protocol itself is :class:`firmware_protocol.BandProtocol` (no second
implementation here): this module only moves bytes and time in and out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import math
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from bumble import core, hci, smp
from bumble.att import ATT_Error, AttributeValueV2, ErrorCode, is_enhanced_bearer
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.keys import PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

import firmware_protocol as fp
from firmware_protocol import gatt

from ..clock import Clock, LoopClock
from .controller import SimController, SimLink
from .cores import BandCore, BandEngine, make_engine
from .quiet import QuietHost

__all__ = [
    "BandClock",
    "Motor",
    "PairingConfirmation",
    "PairingRequest",
    "VirtualBand",
    "VirtualBandConfig",
]

logger = logging.getLogger(__name__)

_LEGACY_ADVERTISING_BYTES: Final = 31
_HR_PERIOD_S: Final = 1.0
_BATTERY_DRAIN_PERIOD_S: Final = 600.0
_ADVERTISING_INTERVAL_MS: Final = 50
_RETRANSMIT_S: Final = 0.4
_HEART_RATE_SERVICE_16: Final = 0x180D
_FULL_KEY_BYTES: Final = 16
# The central's IO capabilities that, with the band's display and yes/no button, make LE
# Secure Connections choose numeric comparison (Core Vol 3, Part H, 2.3.5.1, table 2.8).
_NUMERIC_COMPARISON_IO: Final = frozenset(
    {smp.IoCapability.DISPLAY_YES_NO, smp.IoCapability.KEYBOARD_DISPLAY}
)


class PairingConfirmation(enum.Enum):
    """Who presses the band's confirm button when a host asks to pair (numeric comparison).

    Legacy pairing, Just Works and passkey entry are refused under every policy;
    this only decides who answers "is this the code your computer shows?".
    """

    #: The wearer: the band waits (``pairing_timeout_s``) for :meth:`VirtualBand.confirm_pairing`
    #: or :meth:`VirtualBand.reject_pairing`, and refuses if nobody answers.
    WEARER = "wearer"
    #: Nobody: the band confirms every code itself. This WEAKENS pairing to "anyone in range
    #: who claims a display and a yes/no button pairs": MITM protection is lost. Only for
    #: unattended demos and tests, on a link nobody else can reach.
    AUTOMATIC = "automatic"


@dataclass(frozen=True, slots=True)
class PairingRequest:
    """A host asks to pair: the band shows ``code``; the wearer confirms it if the host does too."""

    peer: str  # the central's address
    code: int  # the six-digit numeric comparison value

    def __str__(self) -> str:
        return f"{self.code:06d}"


@dataclass(slots=True)
class _LinkTrust:
    """How one connection was really secured (Bumble's ``authenticated`` flag is not enough:
    it is set after Just Works and after any encryption change)."""

    pairing: bool = False  # a pairing is under way
    confirmed: bool = False  # the wearer (or the policy) confirmed this pairing's code
    sc: bool = False  # the pairing that finished used LE Secure Connections
    method: smp.PairingMethod | None = None  # the method the pairing that finished used
    secure: bool = False  # encrypted with a key from a confirmed SC numeric comparison


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
    # Control writes and the event / heart-rate subscriptions need a link encrypted with a
    # key from LE Secure Connections numeric comparison that was confirmed (False: all open).
    require_pairing: bool = True
    # Who confirms numeric comparison. AUTOMATIC (the in-process default) confirms every code
    # and so gives up MITM protection: a VirtualWorld's link is private to its process, so only
    # centrals that same program builds can reach it. `companion sim` serves other processes
    # and asks the wearer (WEARER) unless told --auto-confirm.
    pairing_confirmation: PairingConfirmation = PairingConfirmation.AUTOMATIC
    pairing_timeout_s: float = 30.0  # how long the band waits for its wearer to confirm
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


@contextlib.contextmanager
def unless_link_gone(log: logging.Logger, what: str) -> Iterator[None]:
    """Run one step of taking a link down that fails when the link is already gone.

    Stopping advertising, disconnecting or powering off a virtual device whose
    peer went first makes Bumble raise one of its own errors (each a
    ``core.BaseBumbleError``): an ``HCI_Error`` for a command the controller
    refuses, a ``core.ConnectionError`` for a disconnection that failed. Those
    are logged at debug and passed over; anything else is a fault, logged with
    its traceback, and the teardown goes on all the same. (No timeout applies
    to these commands and the controller is in this process, so neither a
    timeout nor a socket error can come out of them.)
    """
    try:
        yield
    except core.BaseBumbleError as exc:
        log.debug("%s: the link was already gone (%r)", what, exc)
    except Exception:
        log.exception("%s failed", what)


def random_static_address(seed: str) -> str:
    """A stable random static address (top two bits 11) derived from ``seed``."""
    digest = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    digest[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in digest)


class _RefusedWriteFilter(logging.Filter):
    """Keep a refused write without response out of the log as a traceback.

    Bumble logs every exception of a write command (which has no answer) with
    its stack; a refusal is expected there, and the band logs it in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(error, ATT_Error)
            and error.error_code
            in (ErrorCode.INSUFFICIENT_AUTHENTICATION, ErrorCode.INSUFFICIENT_ENCRYPTION)
        )


logging.getLogger("bumble.gatt_server").addFilter(_RefusedWriteFilter())


class _WearerDelegate(PairingDelegate):
    """The band's side of pairing on one connection: numeric comparison, asked of the wearer."""

    def __init__(self, band: VirtualBand, connection: Connection) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.band = band
        self.connection = connection

    async def confirm(self, auto: bool = False) -> bool:
        return False  # Just Works: nothing proves who is on the other end

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return await self.band._ask_wearer(self.connection, number)

    async def get_number(self) -> int | None:
        return None  # passkey entry: the band has no keyboard


def _weakness(command: smp.SMP_Pairing_Request_Command) -> str | None:
    """Why a central's pairing request cannot give a MITM-protected SC key, or None."""
    if not command.auth_req & smp.AuthReq.SC:
        return "legacy pairing (no LE Secure Connections)"
    if command.oob_data_flag:
        return "out-of-band data the band never handed out"
    if command.io_capability not in _NUMERIC_COMPARISON_IO:
        io = smp.IoCapability(command.io_capability).name
        return f"no numeric comparison with a central whose IO capability is {io} (Just Works)"
    if command.maximum_encryption_key_size < _FULL_KEY_BYTES:
        return f"a {command.maximum_encryption_key_size}-byte key"
    return None


class _BandSmpSession(smp.Session):
    """Bumble's SMP responder, made to refuse a weak request before it starts.

    Bumble would run legacy pairing and Just Works to the end (calling the
    delegate's ``confirm()`` only on the Secure Connections path) and mark the
    link authenticated afterwards; here the request itself is refused with
    "authentication requirements", as a band that needs MITM protection does.
    """

    def on_smp_pairing_request_command(self, command: smp.SMP_Pairing_Request_Command) -> None:
        delegate = self.pairing_config.delegate
        weakness = _weakness(command)
        if weakness is not None and isinstance(delegate, _WearerDelegate):
            delegate.band._refuse_pairing(self.connection, weakness)
            self.send_pairing_failed(smp.ErrorCode.AUTHENTICATION_REQUIREMENTS)
            return
        super().on_smp_pairing_request_command(command)

    async def on_pairing(self) -> None:
        delegate = self.pairing_config.delegate
        if isinstance(delegate, _WearerDelegate):
            delegate.band._pairing_finished(self.connection, self.sc, self.pairing_method)
        await super().on_pairing()


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
        self.device.pairing_config_factory = lambda connection: PairingConfig(
            sc=True, mitm=True, bonding=True, delegate=_WearerDelegate(self, connection)
        )
        self.device.smp_session_proxy = _BandSmpSession
        #: Control writes the band refused (an unpaired or weakly paired central).
        self.refused_writes = 0
        #: Event / heart-rate subscriptions the band refused.
        self.refused_subscriptions = 0
        #: Pairing requests refused before they started (legacy, Just Works, passkey, OOB).
        self.refused_pairings = 0
        self._trust: dict[Connection, _LinkTrust] = {}
        self._trusted_bonds: set[str] = set()  # centrals bonded by confirmed numeric comparison
        self._asking: tuple[PairingRequest, asyncio.Future[bool]] | None = None
        self._request_listeners: set[asyncio.Queue[PairingRequest]] = set()
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
        if self._guarded:
            # Bumble's own CCCDs are always open: these refuse a subscription on a link that is
            # not secure, so an unpaired central gets no event (not even the replayed buffer)
            # and no heart rate. A strap's heart rate stays open, as a standard sensor's is.
            self._events.descriptors = [self._guarded_cccd(self._events)]
            self._hr.descriptors = [self._guarded_cccd(self._hr)]
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

    @property
    def _guarded(self) -> bool:
        return self.config.require_pairing and self.config.companion_service

    def _guarded_cccd(self, characteristic: Characteristic[bytes]) -> Descriptor:
        def read(bearer: Any) -> bytes:
            return self.device.gatt_server.read_cccd(bearer, characteristic)

        def write(bearer: Any, value: bytes) -> None:
            connection = bearer.connection if is_enhanced_bearer(bearer) else bearer
            if value[:1] != b"\x00" and not self.is_secure(connection):
                self.refused_subscriptions += 1
                logger.info(
                    "refused a subscription to %s from %s: the link is not paired with a "
                    "confirmed code",
                    characteristic.uuid,
                    connection.peer_address,
                )
                raise ATT_Error(ErrorCode.INSUFFICIENT_AUTHENTICATION)
            self.device.gatt_server.write_cccd(bearer, characteristic, value)

        return Descriptor(
            GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
            Descriptor.Permissions.READABLE
            | Descriptor.Permissions.WRITEABLE
            | Descriptor.Permissions.WRITE_REQUIRES_ENCRYPTION,
            AttributeValueV2(read=read, write=write),
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
        # Switching off finishes whatever state the link is in: a peer gone mid-teardown
        # makes Bumble raise here, which is no fault of the band's.
        name = self.config.name
        with unless_link_gone(logger, f"{name}: stopping advertising"):
            await self.device.stop_advertising()
        if self._connection is not None:
            with unless_link_gone(logger, f"{name}: disconnecting"):
                await self._connection.disconnect()
        with unless_link_gone(logger, f"{name}: powering off"):
            await self.device.power_off()
        self._link.remove_controller(self._controller)
        close_engine = getattr(self.protocol, "close", None)
        if close_engine is not None:
            close_engine()

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self.connections += 1
        self._trust[connection] = _LinkTrust()
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        connection.on("pairing_start", lambda: self._pairing_started(connection))
        connection.on("pairing", lambda keys: self._paired(connection, keys))
        connection.on("pairing_failure", lambda reason: self._pairing_failed(connection, reason))
        connection.on("connection_encryption_change", lambda: self._encryption_changed(connection))
        connection.on(
            "connection_att_mtu_update", lambda: self.protocol.set_mtu(connection.att_mtu)
        )

    def _on_disconnection(self, connection: Connection) -> None:
        self._trust.pop(connection, None)
        if self._connection is connection:
            self._connection = None
            self._events_subscribed = False
            self.protocol.connection_lost()

    # -- pairing: how each link was really secured -------------------------------------------

    def is_secure(self, connection: Connection) -> bool:
        """Whether ``connection`` may write control and subscribe (see ``require_pairing``)."""
        if not self.config.require_pairing:
            return True
        trust = self._trust.get(connection)
        return trust is not None and trust.secure and connection.is_encrypted

    def _refuse_pairing(self, connection: Connection, weakness: str) -> None:
        self.refused_pairings += 1
        logger.warning(
            "refused pairing from %s: %s; the band needs LE Secure Connections with numeric "
            "comparison",
            connection.peer_address,
            weakness,
        )

    def _pairing_started(self, connection: Connection) -> None:
        trust = self._trust.setdefault(connection, _LinkTrust())
        # A new pairing replaces whatever secured the link before, until it is confirmed.
        trust.pairing, trust.confirmed, trust.secure = True, False, False

    def _pairing_finished(
        self, connection: Connection, sc: bool, method: smp.PairingMethod
    ) -> None:
        trust = self._trust.setdefault(connection, _LinkTrust())
        trust.sc, trust.method = sc, method

    def _paired(self, connection: Connection, keys: PairingKeys) -> None:
        trust = self._trust.setdefault(connection, _LinkTrust())
        trust.pairing = False
        identity = connection.peer_address.to_string(False)
        trust.secure = (
            trust.confirmed
            and trust.sc
            and trust.method is smp.PairingMethod.NUMERIC_COMPARISON
            and keys.ltk is not None
            and keys.ltk.authenticated
        )
        if trust.secure:
            self._trusted_bonds.add(identity)
            logger.info("paired with %s (LE Secure Connections, code confirmed)", identity)
        else:
            self._trusted_bonds.discard(identity)
            logger.warning("pairing with %s is not trusted: it was not a confirmed code", identity)

    def _pairing_failed(self, connection: Connection, reason: int) -> None:
        trust = self._trust.setdefault(connection, _LinkTrust())
        trust.pairing, trust.secure = False, False

    def _encryption_changed(self, connection: Connection) -> None:
        trust = self._trust.setdefault(connection, _LinkTrust())
        if trust.pairing:
            return  # the pairing's own outcome decides (see _paired)
        # Re-encryption with a stored key: as trusted as the pairing that made the bond.
        trust.secure = (
            connection.is_encrypted
            and connection.peer_address.to_string(False) in self._trusted_bonds
        )

    async def _ask_wearer(self, connection: Connection, code: int) -> bool:
        trust = self._trust.setdefault(connection, _LinkTrust())
        request = PairingRequest(connection.peer_address.to_string(False), code)
        if self.config.pairing_confirmation is PairingConfirmation.AUTOMATIC:
            logger.info(
                "code %s for %s confirmed automatically (no wearer asked)", request, request.peer
            )
            trust.confirmed = True
            return True
        if self._asking is not None:
            return False  # one question at a time: a second host is refused
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asking = (request, answer)
        for queue in self._request_listeners:
            queue.put_nowait(request)
        try:
            async with asyncio.timeout(self.config.pairing_timeout_s):
                trust.confirmed = await answer
        except TimeoutError:
            logger.warning(
                "nobody confirmed code %s for %s: pairing refused", request, request.peer
            )
            trust.confirmed = False
        finally:
            self._asking = None
        return trust.confirmed

    @property
    def pairing_request(self) -> PairingRequest | None:
        """The pairing the band is asking its wearer to confirm now, if any."""
        return self._asking[0] if self._asking is not None else None

    async def pairing_requests(self) -> AsyncIterator[PairingRequest]:
        """Every pairing request the wearer is asked to confirm, as it comes (and one pending)."""
        queue: asyncio.Queue[PairingRequest] = asyncio.Queue()
        if self._asking is not None:
            queue.put_nowait(self._asking[0])
        self._request_listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._request_listeners.discard(queue)

    def confirm_pairing(self) -> bool:
        """The wearer presses confirm: the code shown is the host's. False if nobody asked."""
        return self._answer(True)

    def reject_pairing(self) -> bool:
        """The wearer presses reject: the code differs, or they never asked to pair."""
        return self._answer(False)

    def _answer(self, accept: bool) -> bool:
        if self._asking is None or self._asking[1].done():
            return False
        self._asking[1].set_result(accept)
        return True

    def _on_events_subscription(self, _bearer: Any, notify: bool, _indicate: bool) -> None:
        connection = self._connection
        if (
            notify
            and connection is not None
            and self.is_secure(connection)
            and not self._events_subscribed
        ):
            self._events_subscribed = True
            self.protocol.connection_made(connection.att_mtu, self.clock.now_us())
            self._wake.set()

    # -- the protocol driver ---------------------------------------------------------------------

    def _on_control_write(self, connection: Connection, value: bytes) -> None:
        if not self.is_secure(connection):
            # With response the central gets "insufficient authentication"; a write without
            # response is dropped, as the ATT layer cannot answer it.
            self.refused_writes += 1
            logger.info(
                "refused a control write from %s: the link is not paired with a confirmed code",
                connection.peer_address,
            )
            raise ATT_Error(ErrorCode.INSUFFICIENT_AUTHENTICATION)
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
        if connection is None or not self._events_subscribed or not self.is_secure(connection):
            return
        for fragment in fragments:
            if not await self._notify(connection, self._events, fragment):
                return  # the rest follows the lost one in the band's own resend

    async def _notify(
        self, connection: Connection, characteristic: Characteristic[bytes], value: bytes
    ) -> bool:
        """Notify ``value``; False if it was lost (the link dropped mid-notification)."""
        try:
            await self.device.notify_subscriber(connection, characteristic, value)
        except Exception as exc:  # the link may drop mid-notification: log, never crash
            logger.debug("%s: notification lost: %s", self.config.name, exc)
            return False
        return True

    def poke(self) -> None:
        """Make the driver look at the protocol now (after a button press or a sample)."""
        self._wake.set()

    async def _sense_heart_rate(self) -> None:
        # The sensor's phase in its period, from the serial: real bands in a room were not
        # switched on in the same third of a second, as a band server's are, and bands in
        # phase would reach a host in one burst each second that no room of bands sends.
        period_us = round(_HR_PERIOD_S * 1_000_000)
        phase = random.Random(f"{self.config.serial}/heart-rate").random()
        next_at = self.clock.now_us() + round(phase * period_us)
        while True:
            await self.clock.sleep_until_us(next_at)
            next_at += period_us
            exercising = self.protocol.state is fp.SessionStateCode.RUNNING
            bpm, rr = self._heart.step(exercising, _HR_PERIOD_S)
            self.protocol.record_heart_rate(bpm, rr, True, self.clock.now_us())
            self.heart_rate_samples_sent += 1
            self.poke()
            connection = self._connection
            if connection is not None and (not self._guarded or self.is_secure(connection)):
                measurement = fp.HeartRateMeasurement(bpm, fp.ContactStatus.DETECTED, None, rr)
                await self._notify(connection, self._hr, bytes(measurement))

    async def _drain_battery(self) -> None:
        while self.battery_percent > 5:
            await self.clock.sleep_until_us(
                self.clock.now_us() + round(_BATTERY_DRAIN_PERIOD_S * 1_000_000)
            )
            self.battery_percent -= 1
            connection = self._connection
            if connection is not None:
                await self._notify(connection, self._battery, bytes([self.battery_percent]))

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
        with unless_link_gone(logger, f"{self.config.name}: dropping the link"):
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
