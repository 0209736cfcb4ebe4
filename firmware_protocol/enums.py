"""Wire codes. Every enum is *open*: an unknown code from newer firmware parses
to a pseudo-member (named ``UNKNOWN_0x..``) instead of crashing the decoder."""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "Button",
    "CueKind",
    "MessageType",
    "MotorFlags",
    "NackCode",
    "OpenIntEnum",
    "SessionStateCode",
    "StepKind",
    "StopCause",
]


class OpenIntEnum(enum.IntEnum):
    """An ``IntEnum`` that accepts any value in 0..255, keeping unknown ones as pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or not 0 <= value <= 0xFF:
            return None
        pseudo = int.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_0x{value:02X}"
        pseudo._value_ = value
        return pseudo


class MessageType(OpenIntEnum):
    """The ``type`` byte of a frame header."""

    HELLO = 0x01
    CAPABILITIES = 0x02
    PLAN_CHUNK = 0x03
    START = 0x04
    PAUSE = 0x05
    RESUME = 0x06
    STOP = 0x07
    SKIP = 0x08
    TIME_SYNC_REQUEST = 0x09
    TIME_SYNC_RESPONSE = 0x0A
    ADJUST = 0x0B
    ACK = 0x10
    NACK = 0x11
    EVENT_ACK = 0x12
    CUE_FIRED = 0x20
    SESSION_STATE = 0x21
    HEART_RATE_SAMPLE = 0x22
    BUTTON_PRESSED = 0x23


class CueKind(OpenIntEnum):
    """What a cue means; each has its own vibration pattern, distinguishable by touch."""

    NEXT_EXERCISE = 1
    SWITCH_SIDE = 2
    COUNTDOWN = 3
    ROUND_DONE = 4
    WORKOUT_DONE = 5
    STOPPED = 6


class StepKind(OpenIntEnum):
    """What a step of the plan is."""

    EXERCISE = 1
    REST = 2
    COUNTDOWN = 3


class Button(OpenIntEnum):
    """A gesture on the band."""

    STOP = 1
    PAIN = 2
    SKIP = 3


class SessionStateCode(OpenIntEnum):
    """Where the band's session is (the legal moves between them are in ``_state.py``)."""

    IDLE = 0
    RUNNING = 1
    PAUSED = 2
    ROUND_REST = 3
    DONE = 4
    STOPPED = 5


class StopCause(OpenIntEnum):
    """Why a session stopped."""

    NONE = 0
    BUTTON = 1
    PAIN = 2
    HOST = 3


class NackCode(OpenIntEnum):
    """Why the band refused a command."""

    MALFORMED = 1
    UNSUPPORTED_VERSION = 2
    NO_PLAN = 3
    PLAN_TOO_LARGE = 4
    PLAN_MISMATCH = 5
    BAD_STATE = 6
    UNKNOWN_COMMAND = 7
    BUSY = 8
    OUT_OF_RANGE = 9  # well formed, but a value the band cannot run (a time it cannot hold)


class MotorFlags(enum.IntFlag):
    """What the band's vibration motor can do."""

    NONE = 0
    VIBRATE = 0x01
    INTENSITY = 0x02  # intensity levels, not just on/off
