"""Bumble's virtual controller and link, with the gaps a real controller does not have.

Every Bumble internal the simulator relies on is touched here and nowhere else
(Bumble is pre-1.0 and its internals move between releases):

- LE create-connection cancel is a no-op upstream, so a connect to an absent
  band wedges the central for good; here it cancels and reports it.
- The stock 27-byte ACL buffers cut notification throughput; here 251 bytes.
- The virtual link has no latency at all; :class:`SimLink` can delay delivery
  per direction (never reordering, as a BLE connection never does), to model
  a real link's connection events.
- HCI reset is a no-op and a host whose socket closes leaves its connections
  up forever; :meth:`SimController.detach_host` ends them, as a real adapter
  does when its host goes away, so the bands re-advertise.
- Scan responses are not simulated upstream (an active scanner gets the
  advertising data twice); here an active scan gets the advertiser's own scan
  response data, so a watch that keeps its name there (InfiniTime) is seen as
  it is on the air.
- Upstream hands every advertisement to every controller on the link, scanning or
  not; :class:`SimLink` hands it only to those that scan or connect.
- Bumble's GATT server ignores a characteristic's properties; a real stack
  refuses a write request where only write-without-response is declared, and
  drops a write command where only write is: :func:`enforce_write_properties`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from typing import Any

from bumble import att, core, hci, ll
from bumble.device import Device
from bumble.gatt import Characteristic
from bumble.link import LocalLink

from .quiet import QuietController

__all__ = ["SimController", "SimLink", "enforce_write_properties"]

# The virtual controller warns "no connection for handle" when a host's packet crosses a
# disconnection, a race a real controller settles silently (it drops the packet); a band
# server's console would fill with it whenever a host hangs up mid-notification.
logging.getLogger("bumble.controller").setLevel(logging.ERROR)


class _SentOnAGoneLinkFilter(logging.Filter):
    """Drop Bumble's host warning for data sent on a link that has just dropped.

    A band notifying while its host hangs up crosses the disconnection the same
    way; the data is dropped, as a real stack drops it, and nothing is lost (the
    band resends what was not acknowledged).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("connection 0x") and message.endswith(" not found"))


logging.getLogger("bumble.host").addFilter(_SentOnAGoneLinkFilter())


class SimController(QuietController):
    """A virtual controller whose connect can be cancelled, with real-sized ACL buffers."""

    acl_data_packet_length = 251
    le_acl_data_packet_length = 251
    supported_max_tx_octets = 251
    supported_max_rx_octets = 251
    suggested_max_tx_octets = 251

    def on_hci_le_create_connection_cancel_command(self, command: Any) -> Any:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        result = hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)
        # A real controller then reports the connection attempt as ended.
        asyncio.get_running_loop().call_soon(
            self.send_hci_packet,
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address.address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            ),
        )
        return result

    active_scan = True  # what an OS stack (and bleak's default) asks for

    def on_hci_le_set_scan_parameters_command(self, command: Any) -> Any:
        self.active_scan = command.le_scan_type == 1
        return super().on_hci_le_set_scan_parameters_command(command)

    def on_hci_le_set_extended_scan_parameters_command(self, command: Any) -> Any:
        self.active_scan = 1 in getattr(command, "scan_types", (1,))
        return super().on_hci_le_set_extended_scan_parameters_command(command)

    def on_advertising_pdu(self, pdu: Any) -> None:
        if not (isinstance(pdu, ll.AdvInd | ll.AdvExtInd) and self.le_scan_enable):
            super().on_advertising_pdu(pdu)
            return
        response = self._scan_response_of(pdu.advertiser_address) if self.active_scan else None
        if self.le_features & hci.LeFeatureMask.LE_EXTENDED_ADVERTISING:
            kinds = hci.HCI_LE_Extended_Advertising_Report_Event.EventType
            legacy = kinds.LEGACY_ADVERTISING_PDU_USED
            reports = [
                (kinds.CONNECTABLE_ADVERTISING | kinds.SCANNABLE_ADVERTISING | legacy, pdu.data)
            ]
            if response is not None:
                reports.append(
                    (kinds.SCAN_RESPONSE | kinds.SCANNABLE_ADVERTISING | legacy, response)
                )
            for event_type, data in reports:
                self.send_hci_packet(
                    hci.HCI_LE_Extended_Advertising_Report_Event(
                        [
                            hci.HCI_LE_Extended_Advertising_Report_Event.Report(
                                event_type=event_type,
                                address_type=pdu.advertiser_address.address_type,
                                address=pdu.advertiser_address,
                                primary_phy=hci.Phy.LE_1M,
                                secondary_phy=0,
                                advertising_sid=0xFF,
                                tx_power=0x7F,
                                rssi=-50,
                                periodic_advertising_interval=0,
                                direct_address_type=0,
                                direct_address=hci.Address.ANY,
                                data=data,
                            )
                        ]
                    )
                )
        else:
            legacy_kinds = hci.HCI_LE_Advertising_Report_Event.EventType
            legacy_reports = [(legacy_kinds.ADV_IND, pdu.data)]
            if response is not None:
                legacy_reports.append((legacy_kinds.SCAN_RSP, response))
            for legacy_type, data in legacy_reports:
                report = hci.HCI_LE_Advertising_Report_Event.Report(
                    event_type=legacy_type,
                    address_type=pdu.advertiser_address.address_type,
                    address=pdu.advertiser_address,
                    data=data,
                    rssi=-50,
                )
                self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([report]))
        # The rest (a pending connection to this advertiser) is upstream's, without its reports.
        self.le_scan_enable = False
        try:
            super().on_advertising_pdu(pdu)
        finally:
            self.le_scan_enable = True

    def _scan_response_of(self, address: Any) -> bytes:
        for controller in self.link.controllers if self.link is not None else ():
            advertisers: list[Any] = [
                controller.le_legacy_advertiser,
                *controller.advertising_sets.values(),
            ]
            for advertiser in advertisers:
                if advertiser.enabled and advertiser.address == address:
                    return bytes(advertiser.scan_response_data)
        return b""

    def detach_host(self) -> None:
        """The host went away: drop its links (the peers see a disconnection), leave the link."""
        self.host = None  # nothing more goes to a host that is gone
        self.pending_le_connection = None
        reason = hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
        for connection in list(self.le_connections.values()):
            with contextlib.suppress(core.BaseBumbleError):
                connection.send_ll_control_pdu(ll.TerminateInd(reason))
            del self.le_connections[connection.peer_address]
        if self.advertising_timer_handle is not None:
            self.advertising_timer_handle.cancel()
            self.advertising_timer_handle = None
        if self.link is not None and self in self.link.controllers:
            self.link.remove_controller(self)


class SimLink(LocalLink):
    """A LocalLink that can delay LE data, keeping per-direction order like a real link."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.delay_s: tuple[float, float] = (0.0, 0.0)
        self._rng = random.Random(0x5EED)
        self._last_delivery: dict[tuple[Any, Any], float] = {}

    def set_delay(self, low_s: float, high_s: float, *, seed: int = 0x5EED) -> None:
        """Deliver every LE packet ``low_s``..``high_s`` seconds late (0, 0: at once)."""
        self.delay_s = (low_s, high_s)
        self._rng = random.Random(seed)

    def send_advertising_pdu(self, sender_controller: Any, packet: Any) -> None:
        """Hand an advertisement only to the controllers that would act on it.

        Upstream calls every controller on the link for every advertisement, and
        all but a scanning or connecting one drop it: with 50 bands advertising every
        50 ms that is ~50,000 calls a second, a fifth of a core for a band server
        nobody is connected to. A connect request still goes to every controller.
        """
        if not isinstance(packet, ll.AdvInd | ll.AdvExtInd):
            super().send_advertising_pdu(sender_controller, packet)
            return
        loop = asyncio.get_running_loop()
        for controller in self.controllers:
            if controller is not sender_controller and (
                controller.le_scan_enable
                or controller.pending_le_connection is not None
                or controller.pending_periodic_advertising_syncs
            ):
                loop.call_soon(controller.on_ll_advertising_pdu, packet)

    def send_acl_data(self, sender_controller: Any, destination_address: Any, *args: Any) -> Any:
        low, high = self.delay_s
        if high <= 0:
            return super().send_acl_data(sender_controller, destination_address, *args)
        loop = asyncio.get_running_loop()
        key = (id(sender_controller), str(destination_address))
        # Strictly after the previous packet: asyncio does not keep the order of timers due
        # at the same instant, and a BLE link never reorders packets within a connection.
        after_previous = math.nextafter(self._last_delivery.get(key, 0.0), math.inf)
        at = max(loop.time() + self._rng.uniform(low, high), after_previous)
        self._last_delivery[key] = at
        loop.call_at(at, super().send_acl_data, sender_controller, destination_address, *args)
        return None


def enforce_write_properties(device: Device) -> None:
    """Make ``device``'s GATT server honour write properties as a real stack does.

    A write request to a characteristic declared write-without-response only is
    refused with ATT 0x03 (write not permitted); a write command to one declared
    write (with response) only is dropped.
    """
    server = device.gatt_server
    on_request = server.on_att_write_request
    on_command = server.on_att_write_command

    def declared(handle: int, wanted: Characteristic.Properties) -> bool:
        attribute = server.get_attribute(handle)
        return not isinstance(attribute, Characteristic) or bool(attribute.properties & wanted)

    def write_request(bearer: Any, request: Any) -> None:
        if not declared(request.attribute_handle, Characteristic.Properties.WRITE):
            raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR, request.attribute_handle)
        on_request(bearer, request)

    def write_command(bearer: Any, request: Any) -> None:
        if declared(request.attribute_handle, Characteristic.Properties.WRITE_WITHOUT_RESPONSE):
            on_command(bearer, request)

    server.on_att_write_request = write_request
    server.on_att_write_command = write_command
