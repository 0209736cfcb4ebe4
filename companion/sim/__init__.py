"""companion.sim: a virtual band, and the bleak backend that reaches it.

Only this package imports Bumble. The rest of companion gets a
:class:`~companion.ble.backend.BleakBackend` from here when the user asks for a
virtual band: ``VirtualWorld().backend`` for bands in this process
(``companion run --sim``, tests, benchmarks), ``remote_backend(url)`` for bands
another process serves with :class:`SimServer` (``companion sim``).
"""

from __future__ import annotations

from .band import BandClock, Motor, VirtualBand, VirtualBandConfig
from .bangle import BangleConfig, BangleJS, BangleMessage
from .cores import BandCore
from .infinitime import CallResponse, InfiniTime, InfiniTimeConfig, WatchNotification
from .peripheral import MotorPulse, MotorSource, Peripheral
from .remote import RemoteAdapter, parse_sim_url, remote_backend
from .serve import SimServer, run_sim_server
from .world import VirtualWorld

__all__ = [
    "BandClock",
    "BandCore",
    "BangleConfig",
    "BangleJS",
    "BangleMessage",
    "CallResponse",
    "InfiniTime",
    "InfiniTimeConfig",
    "Motor",
    "MotorPulse",
    "MotorSource",
    "Peripheral",
    "RemoteAdapter",
    "SimServer",
    "VirtualBand",
    "VirtualBandConfig",
    "VirtualWorld",
    "WatchNotification",
    "parse_sim_url",
    "remote_backend",
    "run_sim_server",
]
