"""companion: the host library for BLE fitness bands that run band-timed workout cues.

The names most scripts need are here; the MQTT relay is :mod:`companion.mqtt`
and the virtual band :mod:`companion.sim` (imported only when used).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .band import Band
from .clock import Clock, LoopClock
from .errors import CompanionError
from .events import SessionEvent
from .plan import Plan, Step, builtin_plan, load_plan
from .session import Session
from .state import SessionPhase, SessionSnapshot
from .store import Store

__all__ = [
    "Band",
    "Clock",
    "CompanionError",
    "LoopClock",
    "Plan",
    "Session",
    "SessionEvent",
    "SessionPhase",
    "SessionSnapshot",
    "Step",
    "Store",
    "__version__",
    "builtin_plan",
    "load_plan",
]
