"""companion.sim: a virtual band, and the bleak backend that reaches it.

Only this package imports Bumble. The rest of companion gets a
:class:`~companion.ble.backend.BleakBackend` from here when the user asks for a
virtual band: ``VirtualWorld().backend`` for bands in this process
(``companion run --sim``, tests, benchmarks), ``remote_backend(url)`` for bands
another process serves with :class:`SimServer` (``companion sim``).

Bumble comes with the optional ``sim`` extra (``pip install 'companion[sim]'``);
without it, importing this package raises a
:class:`~companion.extras.MissingExtraError` that names the extra.
"""

from __future__ import annotations

from ..extras import MissingExtraError

try:
    import bumble  # noqa: F401  (checked first: every submodule below needs it)
except ImportError as exc:
    raise MissingExtraError("the virtual band", "sim", missing="bumble") from exc

from .band import (
    BandClock,
    Motor,
    PairingConfirmation,
    PairingRequest,
    VirtualBand,
    VirtualBandConfig,
)
from .bangle import BangleConfig, BangleJS, BangleMessage
from .cores import BandCore
from .infinitime import CallResponse, InfiniTime, InfiniTimeConfig, WatchNotification
from .peripheral import MotorPulse, MotorSource, Peripheral
from .remote import RemoteAdapter, parse_sim_url, remote_backend
from .serve import SimServer, class_band_configs, run_sim_server
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
    "PairingConfirmation",
    "PairingRequest",
    "Peripheral",
    "RemoteAdapter",
    "SimServer",
    "VirtualBand",
    "VirtualBandConfig",
    "VirtualWorld",
    "WatchNotification",
    "class_band_configs",
    "parse_sim_url",
    "remote_backend",
    "run_sim_server",
]
