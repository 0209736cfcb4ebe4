"""companion: the host library for BLE fitness bands that run band-timed workout cues.

The names most scripts need are here, every error among them (so one import
catches what the README lists); the MQTT relay is :mod:`companion.mqtt`
and the virtual band :mod:`companion.sim` (imported only when used).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .band import Band
from .clock import Clock, LoopClock
from .errors import (
    BandNotFoundError,
    BluetoothUnavailableError,
    BrokerError,
    CommandError,
    CompanionError,
    FitFileError,
    IncompatibleBandError,
    LinkLostError,
    PairingRequiredError,
    PlanError,
    PlanTooLargeError,
    ReportError,
    StoreError,
    WorkoutRunningError,
)
from .events import SessionEvent
from .group import Class, GroupClass, Participant
from .plan import Plan, Step, builtin_plan, load_plan
from .session import Session
from .state import SessionPhase, SessionSnapshot
from .store import Store

__all__ = [
    "Band",
    "BandNotFoundError",
    "BluetoothUnavailableError",
    "BrokerError",
    "Class",
    "Clock",
    "CommandError",
    "CompanionError",
    "FitFileError",
    "GroupClass",
    "IncompatibleBandError",
    "LinkLostError",
    "LoopClock",
    "PairingRequiredError",
    "Participant",
    "Plan",
    "PlanError",
    "PlanTooLargeError",
    "ReportError",
    "Session",
    "SessionEvent",
    "SessionPhase",
    "SessionSnapshot",
    "Step",
    "Store",
    "StoreError",
    "WorkoutRunningError",
    "__version__",
    "builtin_plan",
    "load_plan",
]
