"""A bleak backend that reaches Bumble devices through a Bumble central on a virtual link.

``BleakScanner(..., backend=world.backend.scanner)`` and
``BleakClient(..., backend=world.backend.client)`` then run plain bleak code,
the same code that runs against an OS Bluetooth stack, against virtual bands.
The central is a :class:`SimAdapter`: the in-process world's own, or one in
another process's link reached over TCP (:mod:`companion.sim.remote`).
Errors are mapped the bleak 3.x way: an ATT error becomes
``BleakGATTProtocolError(code)``, a Bumble timeout the builtin ``TimeoutError``,
and a request cut short by a link drop a ``BleakError``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import core, hci, smp
from bumble.att import ATT_Error
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer

from ..ble.backend import BleakBackend

__all__ = ["SimAdapter", "SimClient", "SimScanner"]

_T = TypeVar("_T")
_PREFERRED_MTU = 247
_LOCAL_HOST = hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR

_PROPERTY_NAMES = (
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
)


# Why a band refused to pair, in the words an OS stack's pairing dialog would use.
_SMP_REFUSALS: dict[int, str] = {
    smp.ErrorCode.CONFIRM_VALUE_FAILED: "the band did not confirm the six-digit code",
    smp.ErrorCode.NUMERIC_COMPARISON_FAILED: "the band did not confirm the six-digit code",
    smp.ErrorCode.PASSKEY_ENTRY_FAILED: "the band did not accept the passkey",
    smp.ErrorCode.AUTHENTICATION_REQUIREMENTS: (
        "the band refused this kind of pairing (it needs LE Secure Connections with a code "
        "compared on both sides)"
    ),
    smp.ErrorCode.PAIRING_NOT_SUPPORTED: "the band does not pair",
}

# Bumble warns "pairing failure (REASON)" on the host's stderr; the caller gets it as an error.
logging.getLogger("bumble.smp").setLevel(logging.ERROR)


async def _pair(connection: Connection) -> None:
    """Pair on ``connection``; a refusal (SMP PAIRING FAILED) is a BleakError in words."""
    try:
        await connection.pair()
    except core.ProtocolError as exc:
        if exc.error_namespace != "smp":
            raise
        words = _SMP_REFUSALS.get(exc.error_code or 0, "the band refused to pair")
        raise BleakError(f"{words} (SMP reason {exc.error_name or exc.error_code})") from None


def _uuid(uuid: core.UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an orphaned request's failure is expected, not news


async def _gatt(operation: Awaitable[_T], what: str) -> _T:
    """Run a Bumble GATT operation, with its failures as bleak errors.

    The request is shielded: cancelling the caller must not cancel Bumble's
    pending-response future, or the band's late answer hits a cancelled future
    inside Bumble (InvalidStateError in its ATT client).
    """
    request = asyncio.ensure_future(operation)
    request.add_done_callback(_retrieve)
    try:
        return await asyncio.shield(request)
    except ATT_Error as exc:
        raise BleakGATTProtocolError(exc.error_code) from None
    except core.TimeoutError:
        raise TimeoutError(f"{what} timed out") from None
    except asyncio.CancelledError:
        # Bumble cancels a request pending when the link drops; that is not *our* cancellation.
        if not request.cancelled():
            raise
        raise BleakError(f"{what} failed: the link dropped") from None
    except core.BaseBumbleError as exc:
        raise BleakError(f"{what} failed: {exc}") from None


def _forget_subscriber(peer: Peer, proxy: Any, subscriber: Callable[[bytes], None]) -> None:
    """Undo the local half of a subscription the band refused.

    Bumble registers the callback before it writes the CCCD and keeps it when
    the write is refused, so a retry after pairing would deliver every
    notification twice; an OS stack keeps nothing of a failed subscription.
    """
    callback = proxy.subscribers.pop(subscriber, None)
    client = peer.gatt_client
    for table in (client.notification_subscribers, client.indication_subscribers):
        registered = table.get(proxy.handle)
        if registered is None:
            continue
        registered.discard(subscriber)
        registered.discard(callback)
        if registered <= {proxy}:
            del table[proxy.handle]


class SimAdapter(abc.ABC):
    """The host's Bluetooth adapter as the sim backends see it: one Bumble central.

    Scanners and clients take the central with :meth:`acquire` and give it back
    with :meth:`release`, so an adapter that costs a socket (a band server in
    another process) is open exactly while someone uses it.
    """

    def __init__(self) -> None:
        self._loss_listeners: set[Callable[[], None]] = set()
        self._scanners = 0  # scanning runs while any scanner of this adapter does, as on an OS
        #: Scanner and client classes bound to this adapter, for ``backend=``.
        self.backend = BleakBackend(
            scanner=type("SimAdapterScanner", (SimScanner,), {"adapter": self}),
            client=type("SimAdapterClient", (SimClient,), {"adapter": self}),
        )

    @abc.abstractmethod
    async def acquire(self) -> Device:
        """The central, powered on; every call is paired with one :meth:`release`."""

    @abc.abstractmethod
    def release(self) -> None:
        """One user fewer; the adapter may start closing (see :meth:`settle`)."""

    @abc.abstractmethod
    async def settle(self) -> None:
        """Wait until the teardown a :meth:`release` started is done."""

    @property
    @abc.abstractmethod
    def connect_lock(self) -> asyncio.Lock:
        """Held around a connect: a controller makes one LE connection at a time."""

    async def start_scanning(self, central: Device, *, active: bool) -> None:
        """One more scanner: the central scans from the first until the last stops."""
        self._scanners += 1
        if self._scanners == 1:
            try:
                await central.start_scanning(active=active, filter_duplicates=False)
            except BaseException:
                self._scanners -= 1
                raise

    async def stop_scanning(self, central: Device) -> None:
        """One scanner fewer; the central stops scanning with the last one."""
        self._scanners -= 1
        if self._scanners == 0:
            with contextlib.suppress(core.BaseBumbleError):
                await central.stop_scanning()

    def rssi_of(self, address: str, heard: int) -> int:
        """The signal strength a band is heard at (as heard, unless the adapter knows better)."""
        return heard

    def mtu_for(self, address: str, preferred: int) -> int:
        """The MTU to request from a band (the host's preference, unless capped)."""
        return preferred

    def watch_loss(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` if the adapter itself goes away; returns the unwatch function."""
        self._loss_listeners.add(listener)
        return functools.partial(self._loss_listeners.discard, listener)

    def _lost(self) -> None:
        for listener in list(self._loss_listeners):
            listener()


class SimScanner(BaseBleakScanner):
    """Scanner backend: advertisements heard by the adapter's central."""

    adapter: ClassVar[SimAdapter]

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._central: Device | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        if self._central is not None:
            return
        central = await self.adapter.acquire()
        self._central = central
        central.on("advertisement", self._on_advertisement)
        try:
            await self.adapter.start_scanning(central, active=self._active)
        except BaseException:
            central.remove_listener("advertisement", self._on_advertisement)
            self._central = None
            self.adapter.release()
            raise

    async def stop(self) -> None:
        central, self._central = self._central, None
        if central is None:
            return
        central.remove_listener("advertisement", self._on_advertisement)
        try:
            await self.adapter.stop_scanning(central)
        finally:
            self.adapter.release()
            await self.adapter.settle()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            uuids.extend(_uuid(u) for u in data.get(kind) or ())
        address = str(advertisement.address).split("/")[0]
        if self._service_uuids and not set(self._service_uuids) & set(uuids):
            return
        adv = AdvertisementData(
            local_name=str(name) if name else None,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=self.adapter.rssi_of(address, advertisement.rssi),
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            address, address, adv.local_name, advertisement.address, adv
        )
        self.call_detection_callbacks(device, adv)


class SimClient(BaseBleakClient):
    """Client backend: one GATT connection from the adapter's central to a virtual band."""

    adapter: ClassVar[SimAdapter]

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}
        self._unwatch: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        central = await self.adapter.acquire()
        try:
            connection = await self._connect(central)
        except BaseException:
            self.adapter.release()
            await self.adapter.settle()
            raise
        self._connection = connection
        self._unwatch = self.adapter.watch_loss(
            functools.partial(self._on_disconnection, connection, 0)
        )
        connection.on("disconnection", functools.partial(self._on_disconnection, connection))
        peer = Peer(connection)
        self._peer = peer
        try:
            if central.keystore is not None and await central.keystore.get(
                str(connection.peer_address)
            ):
                # Bonded before: an OS stack re-encrypts with the stored key, without a new
                # pairing.
                await _gatt(connection.encrypt(), "encryption")
            await _gatt(
                peer.request_mtu(self.adapter.mtu_for(self.address, _PREFERRED_MTU)),
                "MTU exchange",
            )
            self.services = await self._discover(peer)
            if pair:
                await self.pair()
        except BaseException:
            await self.disconnect()
            raise

    async def _connect(self, central: Device) -> Connection:
        address = hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        async with self.adapter.connect_lock:
            try:
                return await central.connect(address, timeout=self._timeout)
            except core.TimeoutError:
                raise BleakDeviceNotFoundError(
                    self.address, f"virtual band {self.address} did not answer"
                ) from None
            except (hci.HCI_Error, core.BaseBumbleError) as exc:
                raise BleakError(f"connecting to {self.address} failed: {exc}") from None

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in await _gatt(peer.discover_services(), "service discovery"):
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in await _gatt(service.discover_characteristics(), "discovery"):
                properties = [name for bit, name in _PROPERTY_NAMES if char.properties & bit]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    _uuid(char.uuid),
                    properties,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in await _gatt(char.discover_descriptors(), "discovery"):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, _uuid(descriptor.type), bleak_char
                        )
                    )
        return collection

    def _on_disconnection(self, connection: Connection, _reason: int) -> None:
        if self._connection is connection:
            self._connection = None
            self._peer = None
            self._subscriptions.clear()
            if self._unwatch is not None:
                self._unwatch()
                self._unwatch = None
            self.adapter.release()
            if self._disconnected_callback is not None:
                self._disconnected_callback()

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"not connected to {self.address}")
        return self._peer

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
            await connection.disconnect()
        # No disconnection event (the adapter's transport is gone): the link is down all the same.
        self._on_disconnection(
            connection, hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR
        )
        await self.adapter.settle()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._connection
        if connection is None:
            raise BleakError(f"not connected to {self.address}")
        await _gatt(_pair(connection), "pairing")

    async def unpair(self) -> None:
        central = await self.adapter.acquire()
        try:
            if central.keystore is not None:
                with contextlib.suppress(KeyError):
                    await central.keystore.delete(hci.Address(self.address).to_string(False))
        finally:
            self.adapter.release()
            await self.adapter.settle()

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await _gatt(peer.read_value(characteristic.obj), "read"))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await _gatt(peer.read_value(descriptor.obj), "read"))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        peer = self._require_peer()
        await _gatt(
            peer.write_value(characteristic.obj, bytes(data), with_response=response), "write"
        )

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        peer = self._require_peer()
        await _gatt(peer.write_value(descriptor.obj, bytes(data), with_response=True), "write")

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._require_peer()

        def forward(value: bytes) -> None:
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = forward
        try:
            await _gatt(peer.subscribe(characteristic.obj, forward), "subscribe")
        except BaseException:
            self._subscriptions.pop(characteristic.handle, None)
            _forget_subscriber(peer, characteristic.obj, forward)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        forward = self._subscriptions.pop(characteristic.handle, None)
        await _gatt(peer.unsubscribe(characteristic.obj, forward), "unsubscribe")
