"""Every message of the protocol as a frozen dataclass that validates on construction.

Commands go host -> band and are acknowledged; replies carry the command's
sequence number; band events carry a monotonically increasing event number
and the band's time, and are acknowledged cumulatively by :class:`EventAck`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from . import _validate as v
from .enums import (
    Button,
    CueKind,
    MessageType,
    MotorFlags,
    NackCode,
    SessionStateCode,
    StopCause,
)
from .errors import LocalProtocolError
from .plan import PLAN_ID_BYTES

__all__ = [
    "NO_PLAN_ID",
    "PLAN_ID_BYTES",
    "Ack",
    "Adjust",
    "BandEvent",
    "ButtonPressed",
    "Capabilities",
    "Command",
    "CueFired",
    "EventAck",
    "HeartRateSample",
    "Hello",
    "Message",
    "Nack",
    "Pause",
    "PlanChunk",
    "Reply",
    "Resume",
    "SessionState",
    "Skip",
    "Start",
    "Stop",
    "TimeSyncRequest",
    "TimeSyncResponse",
]

MAX_CHUNK_BYTES = 1024
MAX_RR_INTERVALS = 32
NO_PLAN_ID = bytes(PLAN_ID_BYTES)


# -- host -> band commands ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Opens a conversation: the range of protocol versions the host speaks."""

    TYPE: ClassVar = MessageType.HELLO
    min_version: int
    max_version: int

    def __post_init__(self) -> None:
        v.check_uint(self, "min_version", self.min_version, 8)
        v.check_uint(self, "max_version", self.max_version, 8)


@dataclass(frozen=True, slots=True)
class PlanChunk:
    """A piece of the encoded plan at ``offset``; the band verifies ``plan_id`` when complete."""

    TYPE: ClassVar = MessageType.PLAN_CHUNK
    plan_id: bytes
    total_length: int
    offset: int
    data: bytes

    def __post_init__(self) -> None:
        v.check_bytes(self, "plan_id", self.plan_id, PLAN_ID_BYTES)
        v.check_uint(self, "total_length", self.total_length, 16)
        v.check_uint(self, "offset", self.offset, 16)
        if not isinstance(self.data, bytes) or len(self.data) > MAX_CHUNK_BYTES:
            raise LocalProtocolError(f"PlanChunk.data must be at most {MAX_CHUNK_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Start:
    """Run the plan ``plan_id`` from ``start_at_us`` on the band's clock as workout ``session_id``.

    The host picks ``session_id`` (1..2**32-1, random), so that it can recognise its own
    workout in CAPABILITIES after a crash, and tell its events from any other workout's.
    """

    TYPE: ClassVar = MessageType.START
    plan_id: bytes
    start_at_us: int
    session_id: int

    def __post_init__(self) -> None:
        v.check_bytes(self, "plan_id", self.plan_id, PLAN_ID_BYTES)
        v.check_uint(self, "start_at_us", self.start_at_us, 64)
        v.check_uint(self, "session_id", self.session_id, 32)


@dataclass(frozen=True, slots=True)
class Pause:
    """Freeze the timeline; no cue fires until :class:`Resume`."""

    TYPE: ClassVar = MessageType.PAUSE


@dataclass(frozen=True, slots=True)
class Resume:
    """Continue the timeline, shifted by the pause."""

    TYPE: ClassVar = MessageType.RESUME


@dataclass(frozen=True, slots=True)
class Stop:
    """End the session now (the band plays the "stopped" pattern)."""

    TYPE: ClassVar = MessageType.STOP


@dataclass(frozen=True, slots=True)
class Skip:
    """Jump to the start of the next step."""

    TYPE: ClassVar = MessageType.SKIP


@dataclass(frozen=True, slots=True)
class TimeSyncRequest:
    """First half of an NTP-style exchange: the host's send time."""

    TYPE: ClassVar = MessageType.TIME_SYNC_REQUEST
    host_send_us: int

    def __post_init__(self) -> None:
        v.check_uint(self, "host_send_us", self.host_send_us, 64)


@dataclass(frozen=True, slots=True)
class Adjust:
    """Move the rest of the running timeline by ``delta_us`` (drift correction after a sync)."""

    TYPE: ClassVar = MessageType.ADJUST
    delta_us: int

    def __post_init__(self) -> None:
        v.check_int(self, "delta_us", self.delta_us, 32)


@dataclass(frozen=True, slots=True)
class EventAck:
    """Every band event up to ``event_number`` arrived; unsequenced, never answered."""

    TYPE: ClassVar = MessageType.EVENT_ACK
    event_number: int

    def __post_init__(self) -> None:
        v.check_uint(self, "event_number", self.event_number, 32)


# -- band -> host replies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """The command with this frame's sequence number was applied."""

    TYPE: ClassVar = MessageType.ACK


@dataclass(frozen=True, slots=True)
class Nack:
    """The command was refused; ``code`` says why, ``detail`` in words."""

    TYPE: ClassVar = MessageType.NACK
    code: NackCode
    detail: str = ""

    def __post_init__(self) -> None:
        v.check_uint(self, "code", int(self.code), 8)
        v.check_string(self, "detail", self.detail)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The band's answer to :class:`Hello`: what it is, what it can hold, which plan it holds.

    ``boot_id`` changes when the band reboots (its event numbers restart), and
    ``first_unacked_event`` is where the host's event stream resumes.

    The ``session_*`` fields are the band's workout: the last one started since boot
    (``session_id`` 0 and ``IDLE`` when none was), its state, where it stands, its START
    time, its shift (pauses add, skips subtract), the sum of its ADJUSTs and how far into
    the timeline it is now (frozen while paused).
    """

    TYPE: ClassVar = MessageType.CAPABILITIES
    protocol_version: int
    firmware_version: str
    mtu: int
    max_plan_bytes: int
    max_steps: int
    max_name_length: int
    event_buffer: int
    motor: MotorFlags
    plan_id: bytes
    band_time_us: int
    boot_id: int
    first_unacked_event: int
    session_id: int = 0
    session_state: SessionStateCode = SessionStateCode.IDLE
    session_round: int = 0
    session_step: int = -1
    session_start_us: int = 0
    session_shift_us: int = 0
    session_adjust_us: int = 0
    session_elapsed_us: int = 0

    def __post_init__(self) -> None:
        v.check_uint(self, "protocol_version", self.protocol_version, 8)
        v.check_string(self, "firmware_version", self.firmware_version)
        v.check_uint(self, "mtu", self.mtu, 16)
        v.check_uint(self, "max_plan_bytes", self.max_plan_bytes, 16)
        v.check_uint(self, "max_steps", self.max_steps, 8)
        v.check_uint(self, "max_name_length", self.max_name_length, 8)
        v.check_uint(self, "event_buffer", self.event_buffer, 16)
        v.check_uint(self, "motor", int(self.motor), 8)
        v.check_bytes(self, "plan_id", self.plan_id, PLAN_ID_BYTES)
        v.check_uint(self, "band_time_us", self.band_time_us, 64)
        v.check_uint(self, "boot_id", self.boot_id, 32)
        v.check_uint(self, "first_unacked_event", self.first_unacked_event, 32)
        v.check_uint(self, "session_id", self.session_id, 32)
        v.check_uint(self, "session_state", int(self.session_state), 8)
        v.check_uint(self, "session_round", self.session_round, 8)
        v.check_int(self, "session_step", self.session_step, 8)
        v.check_uint(self, "session_start_us", self.session_start_us, 64)
        v.check_int(self, "session_shift_us", self.session_shift_us, 64)
        v.check_int(self, "session_adjust_us", self.session_adjust_us, 64)
        v.check_uint(self, "session_elapsed_us", self.session_elapsed_us, 64)

    @property
    def workout_running(self) -> bool:
        """Whether a workout is under way on the band (running, resting or paused)."""
        return self.session_state in (
            SessionStateCode.RUNNING,
            SessionStateCode.ROUND_REST,
            SessionStateCode.PAUSED,
        )


@dataclass(frozen=True, slots=True)
class TimeSyncResponse:
    """Second half of the exchange: the band's receive and send times, in band clock."""

    TYPE: ClassVar = MessageType.TIME_SYNC_RESPONSE
    host_send_us: int
    band_receive_us: int
    band_send_us: int

    def __post_init__(self) -> None:
        v.check_uint(self, "host_send_us", self.host_send_us, 64)
        v.check_uint(self, "band_receive_us", self.band_receive_us, 64)
        v.check_uint(self, "band_send_us", self.band_send_us, 64)


# -- band events -----------------------------------------------------------------------
#
# Every event carries the ``session_id`` of the workout under way when it happened (0 when
# none was): events of one workout can never be counted in another.


def _check_event(owner: object, event_number: int, band_time_us: int, session_id: int) -> None:
    v.check_uint(owner, "event_number", event_number, 32)
    v.check_uint(owner, "band_time_us", band_time_us, 64)
    v.check_uint(owner, "session_id", session_id, 32)


@dataclass(frozen=True, slots=True)
class CueFired:
    """The band played cue ``cue_id``: when it was planned and when it fired, band clock."""

    TYPE: ClassVar = MessageType.CUE_FIRED
    event_number: int
    band_time_us: int
    cue_id: int
    kind: CueKind
    round: int
    step_index: int
    planned_us: int
    fired_us: int
    session_id: int = 0

    def __post_init__(self) -> None:
        _check_event(self, self.event_number, self.band_time_us, self.session_id)
        v.check_uint(self, "cue_id", self.cue_id, 16)
        v.check_uint(self, "kind", int(self.kind), 8)
        v.check_uint(self, "round", self.round, 8)
        v.check_int(self, "step_index", self.step_index, 8)
        v.check_uint(self, "planned_us", self.planned_us, 64)
        v.check_uint(self, "fired_us", self.fired_us, 64)


@dataclass(frozen=True, slots=True)
class SessionState:
    """The band's session changed: state, position, timeline shift and stop cause."""

    TYPE: ClassVar = MessageType.SESSION_STATE
    event_number: int
    band_time_us: int
    state: SessionStateCode
    round: int
    step_index: int
    shift_us: int
    cause: StopCause = StopCause.NONE
    session_id: int = 0

    def __post_init__(self) -> None:
        _check_event(self, self.event_number, self.band_time_us, self.session_id)
        v.check_uint(self, "state", int(self.state), 8)
        v.check_uint(self, "round", self.round, 8)
        v.check_int(self, "step_index", self.step_index, 8)
        v.check_int(self, "shift_us", self.shift_us, 64)
        v.check_uint(self, "cause", int(self.cause), 8)


@dataclass(frozen=True, slots=True)
class HeartRateSample:
    """A heart-rate measurement with the band's timestamp; RR intervals in 1/1024 s."""

    TYPE: ClassVar = MessageType.HEART_RATE_SAMPLE
    event_number: int
    band_time_us: int
    bpm: int
    rr_1024: tuple[int, ...] = ()
    contact: bool = True
    session_id: int = 0

    def __post_init__(self) -> None:
        _check_event(self, self.event_number, self.band_time_us, self.session_id)
        v.check_uint(self, "bpm", self.bpm, 16)
        if len(self.rr_1024) > MAX_RR_INTERVALS:
            raise LocalProtocolError(f"at most {MAX_RR_INTERVALS} RR intervals per sample")
        for rr in self.rr_1024:
            v.check_uint(self, "rr_1024", rr, 16)
        if not isinstance(self.contact, bool):
            raise LocalProtocolError("HeartRateSample.contact must be a bool")


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    """A gesture on the band (it also acts on it: stop, pain and skip need no host)."""

    TYPE: ClassVar = MessageType.BUTTON_PRESSED
    event_number: int
    band_time_us: int
    button: Button
    session_id: int = 0

    def __post_init__(self) -> None:
        _check_event(self, self.event_number, self.band_time_us, self.session_id)
        v.check_uint(self, "button", int(self.button), 8)


Command: TypeAlias = (
    Hello | PlanChunk | Start | Pause | Resume | Stop | Skip | TimeSyncRequest | Adjust
)
Reply: TypeAlias = Ack | Nack | Capabilities | TimeSyncResponse
BandEvent: TypeAlias = CueFired | SessionState | HeartRateSample | ButtonPressed
Message: TypeAlias = Command | EventAck | Reply | BandEvent

COMMAND_TYPES = (Hello, PlanChunk, Start, Pause, Resume, Stop, Skip, TimeSyncRequest, Adjust)
REPLY_TYPES = (Ack, Nack, Capabilities, TimeSyncResponse)
EVENT_TYPES = (CueFired, SessionState, HeartRateSample, ButtonPressed)
