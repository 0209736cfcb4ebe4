"""companion.sim: a virtual band, and the bleak backend that reaches it.

Only this package imports Bumble. The rest of companion gets a
:class:`~companion.ble.backend.BleakBackend` from here when the user asks for a
virtual band (``companion run --sim``, tests, benchmarks).
"""

from __future__ import annotations

from .band import BandClock, Motor, VirtualBand, VirtualBandConfig
from .world import VirtualWorld

__all__ = ["BandClock", "Motor", "VirtualBand", "VirtualBandConfig", "VirtualWorld"]
