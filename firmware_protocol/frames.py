"""The byte layout of every frame, message, plan and Heart Rate Measurement.

This is the only module that imports ``construct``: the formats are data
here, compiled once for speed, and everything leaving this module is one of
our frozen dataclasses. Any ``ConstructError`` (or bad UTF-8, or a value a
dataclass refuses) becomes a :class:`FrameError` naming the field.

Frame (little endian)::

    version u8 | type u8 | seq u16 | flags u8 | length u16 | payload[length] | crc u16

The CRC is CRC-16/CCITT-FALSE over header and payload. A frame travels in one
or more fragments, each one ATT payload (MTU - 3 bytes), with a one-byte
fragment header: bit 7 first, bit 6 last, bits 0-5 the fragment index mod 64.
"""

from __future__ import annotations

import binascii
import dataclasses
import struct
from dataclasses import dataclass
from typing import Any, Final

import construct as c

from . import messages as m
from .enums import (
    Button,
    CueKind,
    MessageType,
    MotorFlags,
    NackCode,
    SessionStateCode,
    StepKind,
    StopCause,
)
from .errors import FrameError, LocalProtocolError, ProtocolError, UnsupportedVersionError
from .plan import PLAN_ID_BYTES, Pattern, Pulse, WirePlan, WireStep

__all__ = [
    "FRAME_OVERHEAD",
    "FRAME_VERSION",
    "MAX_FRAME_BYTES",
    "Frame",
    "FrameFlags",
    "Reassembler",
    "decode_frame",
    "decode_header",
    "decode_hrs_fields",
    "decode_plan",
    "encode_frame",
    "encode_hrs_fields",
    "encode_plan",
    "fragment",
]

FRAME_VERSION: Final = 1
HEADER_BYTES: Final = 7
FRAME_OVERHEAD: Final = HEADER_BYTES + 2
MAX_FRAME_BYTES: Final = 2048
MIN_FRAGMENT_PAYLOAD: Final = 20  # MTU 23
MAX_FRAGMENT_PAYLOAD: Final = 514  # MTU 517

_FIRST: Final = 0x80
_LAST: Final = 0x40
_INDEX_MASK: Final = 0x3F


class FrameFlags:
    """Bits of the header's ``flags`` byte."""

    NONE: Final = 0x00
    RETRANSMIT: Final = 0x01  # informational: a resend of an earlier frame with the same seq


_String = c.PascalString(c.Int8ul, "utf8")
_PlanId = c.Bytes(PLAN_ID_BYTES)

_Header = c.Struct(
    "version" / c.Int8ul,
    "type" / c.Int8ul,
    "seq" / c.Int16ul,
    "flags" / c.Int8ul,
    "length" / c.Int16ul,
).compile()


def _payload(*fields: Any) -> Any:
    return c.Struct(*fields, c.Terminated).compile()


def _checked_payload(*fields: Any) -> Any:
    """A payload ending in a length-prefixed field, left uncompiled on purpose: construct's
    compiled code reads such a field short without complaint when the length claims more
    bytes than the payload holds; the interpreted parser raises."""
    return c.Struct(*fields, c.Terminated)


_EMPTY = _payload()

# Field names match the dataclass fields one for one (the wire order is the one given here:
# an event's ``session_id`` follows its number, although the dataclass field comes last).
_PAYLOADS: Final[dict[type[Any], Any]] = {
    m.Hello: _payload("min_version" / c.Int8ul, "max_version" / c.Int8ul),
    m.PlanChunk: _checked_payload(
        "plan_id" / _PlanId,
        "total_length" / c.Int16ul,
        "offset" / c.Int16ul,
        "data" / c.Prefixed(c.Int16ul, c.GreedyBytes),
    ),
    m.Start: _payload("plan_id" / _PlanId, "start_at_us" / c.Int64ul, "session_id" / c.Int32ul),
    m.Pause: _EMPTY,
    m.Resume: _EMPTY,
    m.Stop: _EMPTY,
    m.Skip: _EMPTY,
    m.TimeSyncRequest: _payload("host_send_us" / c.Int64ul),
    m.Adjust: _payload("delta_us" / c.Int32sl),
    m.EventAck: _payload("event_number" / c.Int32ul),
    m.Ack: _EMPTY,
    m.Nack: _checked_payload("code" / c.Int8ul, "detail" / _String),
    m.Capabilities: _payload(
        "protocol_version" / c.Int8ul,
        "firmware_version" / _String,
        "mtu" / c.Int16ul,
        "max_plan_bytes" / c.Int16ul,
        "max_steps" / c.Int8ul,
        "max_name_length" / c.Int8ul,
        "event_buffer" / c.Int16ul,
        "motor" / c.Int8ul,
        "plan_id" / _PlanId,
        "band_time_us" / c.Int64ul,
        "boot_id" / c.Int32ul,
        "first_unacked_event" / c.Int32ul,
        "session_id" / c.Int32ul,
        "session_state" / c.Int8ul,
        "session_round" / c.Int8ul,
        "session_step" / c.Int8sl,
        "session_start_us" / c.Int64ul,
        "session_shift_us" / c.Int64sl,
        "session_adjust_us" / c.Int64sl,
        "session_elapsed_us" / c.Int64ul,
    ),
    m.TimeSyncResponse: _payload(
        "host_send_us" / c.Int64ul, "band_receive_us" / c.Int64ul, "band_send_us" / c.Int64ul
    ),
    m.CueFired: _payload(
        "event_number" / c.Int32ul,
        "session_id" / c.Int32ul,
        "band_time_us" / c.Int64ul,
        "cue_id" / c.Int16ul,
        "kind" / c.Int8ul,
        "round" / c.Int8ul,
        "step_index" / c.Int8sl,
        "planned_us" / c.Int64ul,
        "fired_us" / c.Int64ul,
    ),
    m.SessionState: _payload(
        "event_number" / c.Int32ul,
        "session_id" / c.Int32ul,
        "band_time_us" / c.Int64ul,
        "state" / c.Int8ul,
        "round" / c.Int8ul,
        "step_index" / c.Int8sl,
        "shift_us" / c.Int64sl,
        "cause" / c.Int8ul,
    ),
    m.HeartRateSample: _payload(
        "event_number" / c.Int32ul,
        "session_id" / c.Int32ul,
        "band_time_us" / c.Int64ul,
        "bpm" / c.Int16ul,
        "contact" / c.Flag,
        "rr_1024" / c.PrefixedArray(c.Int8ul, c.Int16ul),
    ),
    m.ButtonPressed: _payload(
        "event_number" / c.Int32ul,
        "session_id" / c.Int32ul,
        "band_time_us" / c.Int64ul,
        "button" / c.Int8ul,
    ),
}

_CLASS_BY_TYPE: Final = {cls.TYPE: cls for cls in _PAYLOADS}

# Fields whose wire integer becomes one of our (open) enums.
_ENUM_FIELDS: Final[dict[str, Any]] = {
    "code": NackCode,
    "motor": MotorFlags,
    "kind": CueKind,
    "state": SessionStateCode,
    "session_state": SessionStateCode,
    "cause": StopCause,
    "button": Button,
}

_Plan = c.Struct(
    "name" / _String,
    "rounds" / c.Int8ul,
    "round_rest_ms" / c.Int32ul,
    "countdown" / c.Int8ul,
    "steps"
    / c.PrefixedArray(
        c.Int8ul,
        c.Struct(
            "name" / _String,
            "kind" / c.Int8ul,
            "duration_ms" / c.Int32ul,
            "flags" / c.Int8ul,
        ),
    ),
    "patterns"
    / c.PrefixedArray(
        c.Int8ul,
        c.Struct(
            "cue" / c.Int8ul,
            "intensity" / c.Int8ul,
            "pulses"
            / c.PrefixedArray(c.Int8ul, c.Struct("on_ms" / c.Int16ul, "off_ms" / c.Int16ul)),
        ),
    ),
    c.Terminated,
).compile()

_STEP_SWITCH_SIDE: Final = 0x01

# Heart Rate Measurement (Bluetooth SIG 0x2A37): flags decide which fields follow.
_HRS_WIDE: Final = 0x01
_HRS_CONTACT_DETECTED: Final = 0x02
_HRS_CONTACT_SUPPORTED: Final = 0x04
_HRS_ENERGY: Final = 0x08
_HRS_RR: Final = 0x10
_Hrs = c.Struct(
    "flags" / c.Int8ul,
    "bpm" / c.IfThenElse(c.this.flags & _HRS_WIDE, c.Int16ul, c.Int8ul),
    "energy" / c.If(c.this.flags & _HRS_ENERGY, c.Int16ul),
    "rr" / c.If(c.this.flags & _HRS_RR, c.GreedyRange(c.Int16ul)),
    c.Terminated,
).compile()


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded frame: its sequence number, flags and message."""

    seq: int
    flags: int
    message: m.Message


def _crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


# What a compiled construct parser may raise on bad input: construct's own errors, and the
# stdlib errors of the generated code (struct.error on truncation, bad UTF-8...).
_PARSE_ERRORS = (c.ConstructError, struct.error, UnicodeDecodeError, ValueError, OverflowError)


def _parse(compiled: Any, data: bytes, what: str) -> Any:
    """Parse with a compiled construct; every failure becomes a :class:`FrameError`."""
    try:
        return compiled.parse(data)
    except _PARSE_ERRORS as exc:
        inner = getattr(exc, "path", None)
        path = f"{what} {inner}" if inner else what
        reason = "text that is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise FrameError(f"malformed {what}: {reason}", path=path) from None


def encode_frame(message: m.Message, seq: int, flags: int = FrameFlags.NONE) -> bytes:
    """The bytes of one frame carrying ``message`` with sequence number ``seq``."""
    if not 0 <= seq <= 0xFFFF or not 0 <= flags <= 0xFF:
        raise LocalProtocolError(f"seq must be 0..65535 and flags 0..255, got {seq}, {flags}")
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    try:
        payload = _PAYLOADS[type(message)].build(fields)
    except (c.ConstructError, UnicodeError, KeyError) as exc:
        raise LocalProtocolError(f"cannot encode {type(message).__name__}: {exc}") from exc
    if len(payload) + FRAME_OVERHEAD > MAX_FRAME_BYTES:
        raise LocalProtocolError(
            f"{type(message).__name__} needs {len(payload) + FRAME_OVERHEAD} bytes; "
            f"frames are at most {MAX_FRAME_BYTES}"
        )
    header = _Header.build(
        {
            "version": FRAME_VERSION,
            "type": int(message.TYPE),
            "seq": seq,
            "flags": flags,
            "length": len(payload),
        }
    )
    body: bytes = header + payload
    return body + _crc(body).to_bytes(2, "little")


def decode_header(data: bytes) -> tuple[MessageType, int]:
    """The message type and sequence number of a frame whose CRC checks, without its payload.

    A band uses it to NACK a frame it cannot decode (even one of another version).
    """
    _check_envelope(data, check_version=False)
    return MessageType(data[1]), int.from_bytes(data[2:4], "little")


def _check_envelope(data: bytes, *, check_version: bool = True) -> None:
    if len(data) < FRAME_OVERHEAD:
        raise FrameError(
            f"frame of {len(data)} bytes is shorter than the {FRAME_OVERHEAD}-byte minimum"
        )
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    length = int.from_bytes(data[5:7], "little")
    if length != len(data) - FRAME_OVERHEAD:
        raise FrameError(
            f"header says {length} payload bytes, frame holds {len(data) - FRAME_OVERHEAD}",
            path="header.length",
        )
    if _crc(data[:-2]) != int.from_bytes(data[-2:], "little"):
        raise FrameError("CRC mismatch: the frame was corrupted", path="crc")
    if check_version and data[0] != FRAME_VERSION:
        raise UnsupportedVersionError(
            f"frame version {data[0]}; this implementation speaks version {FRAME_VERSION}"
        )


def decode_frame(data: bytes) -> Frame:
    """Decode one whole frame; raises only :class:`ProtocolError` subclasses."""
    data = bytes(data)
    _check_envelope(data)
    # Item access: a construct Container's attribute access costs ~0.5 us a field.
    header = _Header.parse(data[:HEADER_BYTES])
    message_type = MessageType(header["type"])
    cls = _CLASS_BY_TYPE.get(message_type)
    if cls is None:
        raise FrameError(f"unknown message type {message_type.name}", path="header.type")
    payload = data[HEADER_BYTES:-2]
    parsed = _parse(_PAYLOADS[cls], payload, cls.__name__)
    return Frame(header["seq"], header["flags"], _build_message(cls, parsed))


def _build_message(cls: type[Any], parsed: Any) -> m.Message:
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value = parsed[field.name]
        enum_type = _ENUM_FIELDS.get(field.name)
        if enum_type is not None:
            value = enum_type(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    try:
        message: m.Message = cls(**kwargs)
    except (ProtocolError, ValueError) as exc:
        raise FrameError(f"invalid {cls.__name__}: {exc}", path=cls.__name__) from None
    return message


# -- plans -------------------------------------------------------------------------------


def encode_plan(plan: WirePlan) -> bytes:
    """The plan's bytes as they travel in :class:`PlanChunk` messages."""
    try:
        data: bytes = _Plan.build(
            {
                "name": plan.name,
                "rounds": plan.rounds,
                "round_rest_ms": plan.round_rest_ms,
                "countdown": plan.countdown,
                "steps": [
                    {
                        "name": s.name,
                        "kind": int(s.kind),
                        "duration_ms": s.duration_ms,
                        "flags": _STEP_SWITCH_SIDE if s.switch_side else 0,
                    }
                    for s in plan.steps
                ],
                "patterns": [
                    {
                        "cue": int(p.cue),
                        "intensity": p.intensity,
                        "pulses": [{"on_ms": u.on_ms, "off_ms": u.off_ms} for u in p.pulses],
                    }
                    for p in plan.patterns
                ],
            }
        )
    except (c.ConstructError, UnicodeError) as exc:
        raise LocalProtocolError(f"cannot encode plan {plan.name!r}: {exc}") from exc
    return data


def decode_plan(data: bytes) -> WirePlan:
    """Decode a plan; raises only :class:`ProtocolError` subclasses."""
    parsed = _parse(_Plan, bytes(data), "plan")
    try:
        return WirePlan(
            name=parsed.name,
            rounds=parsed.rounds,
            round_rest_ms=parsed.round_rest_ms,
            countdown=parsed.countdown,
            steps=tuple(
                WireStep(s.name, StepKind(s.kind), s.duration_ms, bool(s.flags & _STEP_SWITCH_SIDE))
                for s in parsed.steps
            ),
            patterns=tuple(
                Pattern(
                    CueKind(p.cue),
                    p.intensity,
                    tuple(Pulse(u.on_ms, u.off_ms) for u in p.pulses),
                )
                for p in parsed.patterns
            ),
        )
    except (ProtocolError, ValueError) as exc:
        raise FrameError(f"invalid plan: {exc}", path="plan") from None


# -- Heart Rate Measurement ----------------------------------------------------------------


def decode_hrs_fields(data: bytes) -> tuple[int, int, int | None, tuple[int, ...]]:
    """``(flags, bpm, energy_kj, rr_1024)`` of a 0x2A37 value; only :class:`FrameError`."""
    parsed = _parse(_Hrs, bytes(data), "Heart Rate Measurement")
    rr = parsed["rr"]  # item access: a Container's attribute access is slow
    return parsed["flags"], parsed["bpm"], parsed["energy"], tuple(rr) if rr is not None else ()


def encode_hrs_fields(
    flags: int, bpm: int, energy_kj: int | None, rr_1024: tuple[int, ...]
) -> bytes:
    """A 0x2A37 value from its fields (``flags`` must agree with what is present)."""
    try:
        data: bytes = _Hrs.build(
            {
                "flags": flags,
                "bpm": bpm,
                "energy": energy_kj,
                "rr": list(rr_1024) if rr_1024 else None,
            }
        )
    except c.ConstructError as exc:
        raise LocalProtocolError(f"cannot encode Heart Rate Measurement: {exc}") from exc
    return data


# -- fragmentation ------------------------------------------------------------------------


def fragment(frame: bytes, max_payload: int) -> list[bytes]:
    """Split a frame into fragments of at most ``max_payload`` bytes (ATT MTU - 3)."""
    if not MIN_FRAGMENT_PAYLOAD <= max_payload <= MAX_FRAGMENT_PAYLOAD:
        raise LocalProtocolError(
            f"fragment payload must be {MIN_FRAGMENT_PAYLOAD}..{MAX_FRAGMENT_PAYLOAD} "
            f"(MTU 23..517), got {max_payload}"
        )
    size = max_payload - 1
    pieces = [frame[i : i + size] for i in range(0, len(frame), size)] or [b""]
    last = len(pieces) - 1
    return [
        bytes([(_FIRST if i == 0 else 0) | (_LAST if i == last else 0) | (i & _INDEX_MASK)]) + piece
        for i, piece in enumerate(pieces)
    ]


class Reassembler:
    """Joins fragments into frames; bounded memory, resynchronises on the next first fragment."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._expected: int | None = None  # index of the next fragment, None between frames

    def reset(self) -> None:
        """Forget a partly received frame (the link dropped)."""
        self._buffer.clear()
        self._expected = None

    def feed(self, data: bytes) -> bytes | None:
        """Take one fragment; return a whole frame when this was its last fragment.

        Raises :class:`FrameError` for a fragment that cannot belong where it
        arrived; the partial frame is dropped and the next first fragment starts afresh.
        """
        if not data:
            raise FrameError("empty fragment", path="fragment")
        head, body = data[0], data[1:]
        index = head & _INDEX_MASK
        if head & _FIRST:
            self._buffer.clear()
            self._expected = 0
        if self._expected is None:
            raise FrameError("fragment without a first fragment before it", path="fragment")
        due = self._expected & _INDEX_MASK
        if index != due:
            self.reset()
            raise FrameError(f"fragment {index} arrived where {due} was due", path="fragment")
        if len(self._buffer) + len(body) > self._max_frame:
            self.reset()
            raise FrameError(f"reassembled frame exceeds {self._max_frame} bytes", path="fragment")
        self._buffer += body
        self._expected += 1
        if head & _LAST:
            frame = bytes(self._buffer)
            self.reset()
            return frame
        return None
