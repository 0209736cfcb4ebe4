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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from typing import Any

from bumble import core, hci, ll
from bumble.link import LocalLink

from .quiet import QuietController

__all__ = ["SimController", "SimLink"]

# The virtual controller warns "no connection for handle" when a host's packet crosses a
# disconnection, a race a real controller settles silently (it drops the packet); a band
# server's console would fill with it whenever a host hangs up mid-notification.
logging.getLogger("bumble.controller").setLevel(logging.ERROR)


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
