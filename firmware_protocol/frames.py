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
import operator
import struct
from collections.abc import Callable
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
    "peek_fragment",
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

# PrefixedArray(count, item) declarations, by identity: construct builds them as a
# FocusedSeq whose parts are not meant to be read back, so the fast path learns their
# count and item formats here, where they are declared.
_ARRAYS: Final[dict[int, tuple[Any, Any]]] = {}


def _prefixed_array(count: Any, item: Any) -> Any:
    array = c.PrefixedArray(count, item)
    _ARRAYS[id(array)] = (count, item)
    return array


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
        "rr_1024" / _prefixed_array(c.Int8ul, c.Int16ul),
    ),
    m.ButtonPressed: _payload(
        "event_number" / c.Int32ul,
        "session_id" / c.Int32ul,
        "band_time_us" / c.Int64ul,
        "button" / c.Int8ul,
    ),
}

_CLASS_BY_TYPE: Final = {cls.TYPE: cls for cls in _PAYLOADS}
_FIELD_NAMES: Final = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _PAYLOADS}


# -- the fast path, read off the declarations above --------------------------------------
#
# construct's compiled parsers cost ~10 us a frame, most of it generic machinery. For a
# payload made of fixed-size fields (and at most one trailing array of them) the same
# layout is one struct.Struct, derived here field by field from the construct
# declaration, so there is still one declaration. The fast path takes only input that is
# exactly the right size; anything else (and every value struct would not check the way
# construct does) goes to the construct parser, so errors stay FrameError with their path.


@dataclass(frozen=True, slots=True)
class _FastLayout:
    names: tuple[str, ...]  # the fixed fields, in order
    fixed: struct.Struct
    bytes_fields: tuple[tuple[int, int], ...]  # (index, length) of Bytes(n) fields
    flag_fields: tuple[int, ...]
    array: tuple[str, struct.Struct, str] | None  # trailing array: name, count, item format
    getter: Callable[[Any], Any]  # the fixed fields' values of a message, in one C call

    def values_of(self, message: Any) -> tuple[Any, ...]:
        """The fixed fields' values of ``message``, in order."""
        values = self.getter(message)
        return (values,) if len(self.names) == 1 else tuple(values)


def _field_format(sub: Any) -> tuple[str, str] | None:
    """``(struct code, kind)`` of a fixed-size construct field, None for anything else."""
    if isinstance(sub, c.FormatField):
        code: str = sub.fmtstr
        return (code[1:], "int") if code[0] == "<" else None
    if isinstance(sub, type(c.Flag)):
        return "?", "flag"
    if isinstance(sub, c.Bytes) and isinstance(sub.length, int):
        return f"{sub.length}s", "bytes"
    return None


def _no_fields(_message: Any) -> tuple[()]:
    return ()


def _fast_layout(declared: Any) -> _FastLayout | None:
    """The struct form of a construct payload, or None when it has a variable field."""
    struct_con = getattr(declared, "defersubcon", declared)
    if not isinstance(struct_con, c.Struct):
        return None
    subcons = list(struct_con.subcons)
    if not subcons or not isinstance(subcons[-1], type(c.Terminated)):
        return None
    subcons.pop()
    array = None
    if subcons and id(subcons[-1].subcon) in _ARRAYS:
        last = subcons.pop()
        count, item = (_field_format(part) for part in _ARRAYS[id(last.subcon)])
        if count is None or item is None or count[1] != "int" or item[1] != "int":
            return None
        array = (last.name, struct.Struct("<" + count[0]), item[0])
    names, codes, bytes_fields, flag_fields = [], [], [], []
    for index, sub in enumerate(subcons):
        if not isinstance(sub, c.Renamed):
            return None
        described = _field_format(sub.subcon)
        if described is None:
            return None
        code, kind = described
        if kind == "bytes":
            bytes_fields.append((index, sub.subcon.length))
        elif kind == "flag":
            flag_fields.append(index)
        names.append(sub.name)
        codes.append(code)
    return _FastLayout(
        tuple(names),
        struct.Struct("<" + "".join(codes)),
        tuple(bytes_fields),
        tuple(flag_fields),
        array,
        operator.attrgetter(*names) if names else _no_fields,
    )


_FAST: Final[dict[type[Any], _FastLayout]] = {
    cls: layout for cls, declared in _PAYLOADS.items() if (layout := _fast_layout(declared))
}


def _header_layout() -> _FastLayout:
    layout = _fast_layout(c.Struct(*_Header.defersubcon.subcons, c.Terminated))
    if layout is None or layout.fixed.size != HEADER_BYTES:
        raise ImportError("the frame header is no longer a fixed-size layout")
    return layout


_FAST_HEADER: Final = _header_layout()


def _fast_parse(layout: _FastLayout, payload: bytes) -> dict[str, Any] | None:
    """The fields of a well-formed payload, or None to let construct parse (and explain) it."""
    size = layout.fixed.size
    if layout.array is None:
        if len(payload) != size:
            return None
        values = layout.fixed.unpack(payload)
        parsed = dict(zip(layout.names, values, strict=True))
    else:
        name, count_struct, item_code = layout.array
        if len(payload) < size + count_struct.size:
            return None
        parsed = dict(zip(layout.names, layout.fixed.unpack_from(payload), strict=True))
        (count,) = count_struct.unpack_from(payload, size)
        start = size + count_struct.size
        items = struct.Struct(f"<{count}{item_code}")
        if len(payload) != start + items.size:
            return None
        parsed[name] = list(items.unpack_from(payload, start))
    for index in layout.flag_fields:
        # construct reads any non-zero byte as True, as struct's "?" does
        parsed[layout.names[index]] = bool(parsed[layout.names[index]])
    return parsed


def _fast_build(layout: _FastLayout, message: Any) -> bytes | None:
    """The payload's bytes, or None when a value needs construct's checks (and error)."""
    values = layout.values_of(message)
    for index, length in layout.bytes_fields:
        value = values[index]
        if not isinstance(value, bytes) or len(value) != length:
            return None  # struct would pad or cut it silently
    for index in layout.flag_fields:
        if not isinstance(values[index], bool):
            return None
    try:
        data = layout.fixed.pack(*values)
        if layout.array is not None:
            name, count_struct, item_code = layout.array
            items = getattr(message, name)
            data += count_struct.pack(len(items)) + struct.pack(f"<{len(items)}{item_code}", *items)
    except (struct.error, TypeError):
        return None
    return data


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
    cls = type(message)
    layout = _FAST.get(cls)
    payload = _fast_build(layout, message) if layout is not None else None
    if payload is None:
        fields = {name: getattr(message, name) for name in _FIELD_NAMES[cls]}
        try:
            payload = _PAYLOADS[cls].build(fields)
        except (c.ConstructError, UnicodeError, KeyError) as exc:
            raise LocalProtocolError(f"cannot encode {cls.__name__}: {exc}") from exc
    if len(payload) + FRAME_OVERHEAD > MAX_FRAME_BYTES:
        raise LocalProtocolError(
            f"{type(message).__name__} needs {len(payload) + FRAME_OVERHEAD} bytes; "
            f"frames are at most {MAX_FRAME_BYTES}"
        )
    header = _FAST_HEADER.fixed.pack(FRAME_VERSION, int(message.TYPE), seq, flags, len(payload))
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
    _version, type_code, seq, flags, _length = _FAST_HEADER.fixed.unpack_from(data)
    message_type = MessageType(type_code)
    cls = _CLASS_BY_TYPE.get(message_type)
    if cls is None:
        raise FrameError(f"unknown message type {message_type.name}", path="header.type")
    payload = data[HEADER_BYTES:-2]
    layout = _FAST.get(cls)
    parsed = _fast_parse(layout, payload) if layout is not None else None
    if parsed is None:
        parsed = _parse(_PAYLOADS[cls], payload, cls.__name__)
    return Frame(seq, flags, _build_message(cls, parsed))


def _build_message(cls: type[Any], parsed: Any) -> m.Message:
    kwargs: dict[str, Any] = {}
    for name in _FIELD_NAMES[cls]:
        value = parsed[name]
        enum_type = _ENUM_FIELDS.get(name)
        if enum_type is not None:
            value = enum_type(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
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


_U16: Final = struct.Struct("<H")
_HRS_HEAD_NARROW: Final = struct.Struct("<BB")
_HRS_HEAD_WIDE: Final = struct.Struct("<BH")
# One compiled layout per RR count seen: formatting "<{n}H" on every call costs more than
# the packing. An ATT value is at most 512 bytes, so there are at most 256 entries.
_U16_RUNS: Final[dict[int, struct.Struct]] = {}


def _u16_run(count: int) -> struct.Struct:
    """The layout of ``count`` little-endian uint16s."""
    run = _U16_RUNS.get(count)
    if run is None:
        run = _U16_RUNS[count] = struct.Struct(f"<{count}H")
    return run


def _fast_hrs(data: bytes) -> tuple[int, int, int | None, tuple[int, ...]] | None:
    """``_Hrs`` by hand for well-formed input (None for anything else), because construct
    cannot compile its GreedyRange; tests hold it to ``_Hrs`` on every input, valid or not."""
    size = len(data)
    if size < 2:
        return None
    flags = data[0]
    if flags & _HRS_WIDE:
        if size < 3:
            return None
        bpm, at = data[1] | data[2] << 8, 3
    else:
        bpm, at = data[1], 2
    energy = None
    if flags & _HRS_ENERGY:
        if size < at + 2:
            return None
        energy, at = data[at] | data[at + 1] << 8, at + 2
    if not flags & _HRS_RR:
        return (flags, bpm, energy, ()) if at == size else None
    if (size - at) % 2:
        return None
    return flags, bpm, energy, _u16_run((size - at) // 2).unpack_from(data, at)


def decode_hrs_fields(data: bytes) -> tuple[int, int, int | None, tuple[int, ...]]:
    """``(flags, bpm, energy_kj, rr_1024)`` of a 0x2A37 value; only :class:`FrameError`."""
    fast = _fast_hrs(data)
    if fast is not None:
        return fast
    parsed = _parse(_Hrs, bytes(data), "Heart Rate Measurement")
    rr = parsed["rr"]  # item access: a Container's attribute access is slow
    return parsed["flags"], parsed["bpm"], parsed["energy"], tuple(rr) if rr is not None else ()


def encode_hrs_fields(
    flags: int, bpm: int, energy_kj: int | None, rr_1024: tuple[int, ...]
) -> bytes:
    """A 0x2A37 value from its fields (``flags`` must agree with what is present)."""
    fast = _fast_hrs_build(flags, bpm, energy_kj, rr_1024)
    if fast is not None:
        return fast
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


def _fast_hrs_build(
    flags: int, bpm: int, energy_kj: int | None, rr_1024: tuple[int, ...]
) -> bytes | None:
    """``_Hrs.build`` by hand when the fields agree with ``flags`` and fit; else None."""
    if (energy_kj is not None) != bool(flags & _HRS_ENERGY) or bool(rr_1024) != bool(
        flags & _HRS_RR
    ):
        return None
    try:
        data = (_HRS_HEAD_WIDE if flags & _HRS_WIDE else _HRS_HEAD_NARROW).pack(flags, bpm)
        if energy_kj is not None:
            data += _U16.pack(energy_kj)
        if rr_1024:
            data += _u16_run(len(rr_1024)).pack(*rr_1024)
    except (struct.error, OverflowError, TypeError, ValueError, AttributeError):
        return None
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


def peek_fragment(data: bytes) -> tuple[MessageType, int, int] | None:
    """``(type, seq, flags)`` of a fragment that carries one whole frame, else None.

    For the writer, which treats some messages specially (a TIME_SYNC request is
    stamped when it is written); it checks the header's length, not the CRC.
    """
    if len(data) < 1 + FRAME_OVERHEAD or data[0] & (_FIRST | _LAST) != _FIRST | _LAST:
        return None
    if int.from_bytes(data[6:8], "little") != len(data) - 1 - FRAME_OVERHEAD:
        return None
    return MessageType(data[2]), int.from_bytes(data[3:5], "little"), data[5]


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
