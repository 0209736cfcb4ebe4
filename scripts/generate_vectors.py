"""Build the golden vectors (``firmware_protocol/vectors/*.json``) from the codec itself.

Every vector is made from fixed, readable values, so regenerating gives the
same bytes; a test checks that the committed JSON equals what this script
builds now, so the vectors cannot drift from the codec silently::

    python scripts/generate_vectors.py           # rewrite the JSON files
    python scripts/generate_vectors.py --check   # exit 1 if any file is stale

It lives in the repository, not in the package: an installed firmware_protocol
ships the vectors, and the tool that writes them into this clone stays here.

Malformed vectors state the error expected by hand; generation fails if the
codec does not raise exactly that error, so a vector never pins a bug.
"""

from __future__ import annotations

import argparse
import binascii
import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import firmware_protocol as fp
from firmware_protocol import frames
from firmware_protocol import messages as m

__all__ = ["VECTORS_DIR", "build_all", "main", "render", "to_json"]

VECTORS_DIR: Final = Path(__file__).resolve().parent.parent / "firmware_protocol" / "vectors"
DEFAULT_MTU: Final = 23
LARGE_MTU: Final = 247
PLAN_CHUNK_BYTES: Final = 128  # what companion.band sends per PlanChunk
SECOND: Final = 1_000_000
SESSION: Final = 0x5E55_1D01  # the workout id the host picked in START
EARLIER_SESSION: Final = 0x0BAD_F00D  # a workout that ended before it

# The reference plan: the built-in "back-5" (companion/plans/back-5.toml), here with two
# rounds and a 20 s rest between them so that round-done and rest countdowns appear.
REFERENCE_PLAN: Final = fp.WirePlan(
    name="back-5",
    rounds=2,
    round_rest_ms=20_000,
    countdown=3,
    steps=(
        fp.WireStep("QL lifts", fp.StepKind.EXERCISE, 60_000, switch_side=True),
        fp.WireStep("Hip roll", fp.StepKind.EXERCISE, 60_000),
        fp.WireStep("Cat scratch", fp.StepKind.EXERCISE, 60_000),
        fp.WireStep("Superman", fp.StepKind.EXERCISE, 60_000),
        fp.WireStep("Crunches", fp.StepKind.EXERCISE, 60_000),
    ),
)
REFERENCE_PLAN_BYTES: Final = fp.encode_plan(REFERENCE_PLAN)
REFERENCE_PLAN_ID: Final = fp.plan_id(REFERENCE_PLAN_BYTES)


def to_json(value: Any) -> Any:
    """A field value as plain JSON: bytes as lower-case hex, codes as integers, tuples as lists."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int):
        return int(value)  # IntEnum / IntFlag members become their wire value
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"no JSON form for {value!r}")


def _enum_names(obj: Any) -> dict[str, str]:
    """Names of the coded fields of ``obj``, so a reader sees ``NEXT_EXERCISE`` beside ``1``."""
    names = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if isinstance(value, enum.IntFlag):
            names[field.name] = "|".join(flag.name or "" for flag in value) or "NONE"
        elif isinstance(value, enum.IntEnum):
            names[field.name] = value.name
    return names


def _hexes(pieces: Sequence[bytes]) -> list[str]:
    return [piece.hex() for piece in pieces]


def _kind(message: m.Message) -> str:
    if isinstance(message, m.COMMAND_TYPES):
        return "command"
    if isinstance(message, m.REPLY_TYPES):
        return "reply"
    if isinstance(message, m.EVENT_TYPES):
        return "event"
    return "event-ack"


def _direction(message: m.Message) -> str:
    return "host->band" if isinstance(message, (*m.COMMAND_TYPES, m.EventAck)) else "band->host"


# -- messages ------------------------------------------------------------------------------


def _message_vectors() -> list[tuple[str, m.Message, int, int, str]]:
    """``(name, message, seq, flags, note)`` for every message type, in a plausible session."""
    plan = REFERENCE_PLAN_BYTES
    last_chunk_offset = (len(plan) - 1) // PLAN_CHUNK_BYTES * PLAN_CHUNK_BYTES
    vibrate = fp.MotorFlags.VIBRATE | fp.MotorFlags.INTENSITY
    retransmit = fp.FrameFlags.RETRANSMIT
    none = fp.FrameFlags.NONE
    start_at = 12 * SECOND
    return [
        ("hello", fp.Hello(2, 2), 1, none, "host speaks protocol v2 only"),
        (
            "hello_range",
            fp.Hello(1, 3),
            1,
            none,
            "host speaks v1 to v3: a v2 band answers CAPABILITIES with protocol_version 2",
        ),
        (
            "capabilities_fresh_band",
            fp.Capabilities(
                protocol_version=2,
                firmware_version="1.0.0",
                mtu=23,
                max_plan_bytes=4096,
                max_steps=64,
                max_name_length=32,
                event_buffer=256,
                motor=vibrate,
                plan_id=fp.NO_PLAN_ID,
                band_time_us=5 * SECOND,
                boot_id=1,
                first_unacked_event=1,
            ),
            1,
            none,
            "reply to HELLO seq 1: no plan held (plan_id all zero), no event sent yet, no "
            "workout since boot (session_id 0, IDLE, step -1, every other session field 0)",
        ),
        (
            "capabilities_holding_plan",
            fp.Capabilities(
                protocol_version=2,
                firmware_version="fw-2.3.1",
                mtu=247,
                max_plan_bytes=4096,
                max_steps=64,
                max_name_length=32,
                event_buffer=256,
                motor=fp.MotorFlags.VIBRATE,
                plan_id=REFERENCE_PLAN_ID,
                band_time_us=3_600 * SECOND,
                boot_id=0x2A,
                first_unacked_event=17,
                session_id=SESSION,
                session_state=fp.SessionStateCode.RUNNING,
                session_round=1,
                session_step=2,
                session_start_us=3_450 * SECOND,
                session_shift_us=-5 * SECOND,
                session_adjust_us=-1_500,
                session_elapsed_us=3_600 * SECOND - 3_450 * SECOND + 5 * SECOND + 1_500,
            ),
            40,
            none,
            "reply to HELLO seq 40 after a reconnect: the band holds the reference plan, "
            "will replay events from number 17, and runs workout 0x5e551d01 (round 1, step 2), "
            "started at band time 3450 s, skipped 5 s, adjusted -1.5 ms: 155.0015 s into it",
        ),
        (
            "capabilities_paused_workout",
            fp.Capabilities(
                protocol_version=2,
                firmware_version="1.0.0",
                mtu=23,
                max_plan_bytes=4096,
                max_steps=64,
                max_name_length=32,
                event_buffer=256,
                motor=vibrate,
                plan_id=REFERENCE_PLAN_ID,
                band_time_us=200 * SECOND,
                boot_id=7,
                first_unacked_event=40,
                session_id=SESSION,
                session_state=fp.SessionStateCode.PAUSED,
                session_round=1,
                session_step=0,
                session_start_us=12 * SECOND,
                session_shift_us=0,
                session_adjust_us=0,
                session_elapsed_us=40 * SECOND,
            ),
            3,
            none,
            "a workout paused 40 s in: session_elapsed_us stays 40 s however long the pause",
        ),
        (
            "capabilities_workout_done",
            fp.Capabilities(
                protocol_version=2,
                firmware_version="1.0.0",
                mtu=23,
                max_plan_bytes=4096,
                max_steps=64,
                max_name_length=32,
                event_buffer=256,
                motor=vibrate,
                plan_id=REFERENCE_PLAN_ID,
                band_time_us=900 * SECOND,
                boot_id=7,
                first_unacked_event=81,
                session_id=EARLIER_SESSION,
                session_state=fp.SessionStateCode.DONE,
                session_round=2,
                session_step=4,
                session_start_us=12 * SECOND,
                session_shift_us=0,
                session_adjust_us=0,
                session_elapsed_us=620 * SECOND,
            ),
            1,
            none,
            "the last workout ended (DONE) and every event was acknowledged: it stays "
            "readable until the next START",
        ),
        (
            "plan_chunk_first",
            fp.PlanChunk(REFERENCE_PLAN_ID, len(plan), 0, plan[:PLAN_CHUNK_BYTES]),
            2,
            none,
            "first 128 bytes of the reference plan (plan.json)",
        ),
        (
            "plan_chunk_last",
            fp.PlanChunk(REFERENCE_PLAN_ID, len(plan), last_chunk_offset, plan[last_chunk_offset:]),
            2 + last_chunk_offset // PLAN_CHUNK_BYTES,
            none,
            "last chunk of the reference plan: offset + len(data) == total_length",
        ),
        ("ack", fp.Ack(), 2, none, "reply to the command with seq 2"),
        (
            "nack_no_plan",
            fp.Nack(fp.NackCode.NO_PLAN, "send the plan before START"),
            3,
            none,
            "reply to a START (seq 3) on a band holding no plan",
        ),
        ("nack_empty_detail", fp.Nack(fp.NackCode.BUSY), 4, none, "detail may be empty"),
        (
            "nack_out_of_range",
            fp.Nack(
                fp.NackCode.OUT_OF_RANGE,
                "an adjustment of -2000000000 us would put the rest of the timeline outside "
                "the band's clock",
            ),
            11,
            none,
            "well formed but not runnable: an ADJUST that would make a planned time negative",
        ),
        (
            "nack_workout_running",
            fp.Nack(fp.NackCode.BAD_STATE, "workout 0bad f00d is already running; stop it first"),
            5,
            none,
            "START while another workout runs (the host reads CAPABILITIES to know which)",
        ),
        (
            "start",
            fp.Start(REFERENCE_PLAN_ID, start_at, SESSION),
            5,
            none,
            "run the reference plan from band time 12 s as workout 0x5e551d01",
        ),
        (
            "start_retransmitted",
            fp.Start(REFERENCE_PLAN_ID, start_at, SESSION),
            5,
            retransmit,
            "the same START sent again: same seq, RETRANSMIT flag (only the CRC differs)",
        ),
        ("pause", fp.Pause(), 6, none, "empty payload"),
        ("resume", fp.Resume(), 7, none, "empty payload"),
        ("skip", fp.Skip(), 8, none, "empty payload"),
        ("stop", fp.Stop(), 9, none, "empty payload"),
        (
            "time_sync_request",
            fp.TimeSyncRequest(1_000_000),
            10,
            none,
            "host clock 1.000000 s",
        ),
        (
            "time_sync_response",
            fp.TimeSyncResponse(1_000_000, 5_010_000, 5_010_050),
            10,
            none,
            "band received at 5.010000 s and answered at 5.010050 s, band clock",
        ),
        ("adjust_earlier", fp.Adjust(-1_500), 11, none, "move the timeline 1.5 ms earlier"),
        ("adjust_later", fp.Adjust(250), 12, none, "move the timeline 0.25 ms later"),
        (
            "event_ack",
            fp.EventAck(7),
            0,
            none,
            "every event up to number 7 arrived; unsequenced (seq 0), never answered",
        ),
        (
            "cue_fired_next_exercise",
            fp.CueFired(
                1,
                start_at,
                0,
                fp.CueKind.NEXT_EXERCISE,
                1,
                0,
                start_at,
                start_at,
                session_id=SESSION,
            ),
            0,
            none,
            "first cue of the reference plan, fired on time",
        ),
        (
            "cue_fired_switch_side_late",
            fp.CueFired(
                5,
                start_at + 30 * SECOND + 200,
                2,
                fp.CueKind.SWITCH_SIDE,
                1,
                0,
                start_at + 30 * SECOND,
                start_at + 30 * SECOND + 200,
                session_id=SESSION,
            ),
            0,
            none,
            "half time of step 0, fired 200 us after its planned time",
        ),
        (
            "cue_fired_stopped",
            fp.CueFired(
                9,
                start_at + 95 * SECOND,
                fp.STOPPED_CUE_ID,
                fp.CueKind.STOPPED,
                1,
                1,
                start_at + 95 * SECOND,
                start_at + 95 * SECOND,
                session_id=SESSION,
            ),
            0,
            none,
            "the stopped pattern is not on the timeline: cue_id 0xFFFF, planned == fired",
        ),
        (
            "cue_fired_unknown_kind",
            fp.CueFired(
                10,
                2 * SECOND,
                3,
                fp.CueKind(0x7E),
                1,
                0,
                2 * SECOND,
                2 * SECOND,
                session_id=SESSION,
            ),
            0,
            none,
            "a cue kind from newer firmware: decoders keep the number (open enum)",
        ),
        (
            "session_state_running",
            fp.SessionState(2, start_at, fp.SessionStateCode.RUNNING, 1, 0, 0, session_id=SESSION),
            0,
            none,
            "step 0 of round 1 began at band time 12 s",
        ),
        (
            "session_state_paused",
            fp.SessionState(
                6, start_at + 40 * SECOND, fp.SessionStateCode.PAUSED, 1, 0, 0, session_id=SESSION
            ),
            0,
            none,
            "paused 40 s into the workout",
        ),
        (
            "session_state_round_rest_shifted",
            fp.SessionState(
                30,
                start_at + 310 * SECOND,
                fp.SessionStateCode.ROUND_REST,
                1,
                -1,
                10 * SECOND,
                session_id=SESSION,
            ),
            0,
            none,
            "rest between rounds (step_index -1) after a 10 s pause: shift_us +10 s",
        ),
        (
            "session_state_skipped",
            fp.SessionState(
                3,
                start_at + 25 * SECOND,
                fp.SessionStateCode.RUNNING,
                1,
                1,
                -35 * SECOND,
                session_id=SESSION,
            ),
            0,
            none,
            "SKIP 25 s into a 60 s step: step 1 begins now, shift_us -35 s",
        ),
        (
            "session_state_stopped_pain",
            fp.SessionState(
                11,
                start_at + 95 * SECOND,
                fp.SessionStateCode.STOPPED,
                1,
                1,
                0,
                fp.StopCause.PAIN,
                session_id=SESSION,
            ),
            0,
            none,
            "the pain gesture stopped the session on the band",
        ),
        (
            "session_state_done",
            fp.SessionState(
                80, start_at + 620 * SECOND, fp.SessionStateCode.DONE, 2, 4, 0, session_id=SESSION
            ),
            0,
            none,
            "the workout ended",
        ),
        (
            "heart_rate_sample",
            fp.HeartRateSample(4, start_at + 3 * SECOND, 72, (853, 840), True, session_id=SESSION),
            0,
            none,
            "72 bpm, two RR intervals (833 ms, 820 ms), skin contact",
        ),
        (
            "heart_rate_sample_no_contact",
            fp.HeartRateSample(12, 4 * SECOND, 0, (), False),
            0,
            none,
            "no skin contact: bpm 0, no RR intervals; before any START, so session_id 0",
        ),
        (
            "button_pressed_pain",
            fp.ButtonPressed(10, start_at + 95 * SECOND, fp.Button.PAIN, session_id=SESSION),
            0,
            none,
            "the pain gesture; the band stops the session itself",
        ),
    ]


def build_messages() -> dict[str, Any]:
    """Every message type as a frame, with its payload, fields and fragments at MTU 23."""
    vectors = []
    for name, message, seq, flags, note in _message_vectors():
        frame = fp.encode_frame(message, seq, flags)
        vector: dict[str, Any] = {
            "name": name,
            "message": type(message).__name__,
            "kind": _kind(message),
            "direction": _direction(message),
            "type": int(message.TYPE),
            "type_name": message.TYPE.name,
            "seq": seq,
            "flags": flags,
            "fields": to_json(message),
        }
        names = _enum_names(message)
        if names:
            vector["enum_names"] = names
        vector |= {
            "note": note,
            "payload": frame[frames.HEADER_BYTES : -2].hex(),
            "frame": frame.hex(),
            "fragments_mtu23": _hexes(fp.fragment(frame, DEFAULT_MTU - 3)),
        }
        vectors.append(vector)
    return {
        "description": (
            "Every message of protocol v2 as a whole frame (header | payload | crc) and as the "
            "fragments it travels in at the default ATT MTU of 23. 'fields' holds the decoded "
            "values: bytes as hex, coded values (enums, flags) as integers, named in "
            "'enum_names'. See PROTOCOL.md."
        ),
        "frame_version": frames.FRAME_VERSION,
        "codes": {
            cls.__name__: {member.name: int(member) for member in cls}
            for cls in (
                fp.MessageType,
                fp.CueKind,
                fp.StepKind,
                fp.Button,
                fp.SessionStateCode,
                fp.StopCause,
                fp.NackCode,
                fp.MotorFlags,
            )
        },
        "vectors": vectors,
    }


# -- heart rate measurement ------------------------------------------------------------------


def _hrs_vector(name: str, measurement: fp.HeartRateMeasurement) -> dict[str, Any]:
    data = bytes(measurement)
    return {
        "name": name,
        "flags": data[0],
        "bytes": data.hex(),
        "fields": {
            "bpm": measurement.bpm,
            "wide": measurement.wide,
            "contact": measurement.contact.name,
            "energy_kj": measurement.energy_kj,
            "rr_1024": list(measurement.rr_1024),
        },
    }


def _expect_error(
    decode: Callable[[bytes], object],
    data: bytes,
    error: type[Exception],
    path: str | None = None,
) -> None:
    """Fail unless ``decode`` raises exactly ``error`` (at ``path``, when given) on ``data``."""
    try:
        decode(data)
    except fp.ProtocolError as exc:
        if type(exc) is not error or (path is not None and getattr(exc, "path", None) != path):
            raise RuntimeError(f"{data.hex()}: expected {error.__name__}, got {exc!r}") from exc
        return
    raise RuntimeError(f"{data.hex()}: expected {error.__name__}, decoded fine")


def build_hrs() -> dict[str, Any]:
    """Every flag combination of 0x2A37, a few decode-only oddities, and malformed values."""
    contacts = list(fp.ContactStatus)
    rr_sets: list[tuple[int, ...]] = [(), (1000,), (1000, 980, 1024)]
    vectors = []
    for wide in (False, True):
        bpm = 300 if wide else 72
        for contact in contacts:
            for energy in (None, 1234):
                for rr in rr_sets:
                    name = "_".join(
                        [
                            "u16" if wide else "u8",
                            contact.name.lower(),
                            "energy" if energy is not None else "no_energy",
                            f"rr{len(rr)}",
                        ]
                    )
                    vectors.append(
                        _hrs_vector(name, fp.HeartRateMeasurement(bpm, contact, energy, rr, wide))
                    )
    vectors.append(_hrs_vector("u16_format_small_value", fp.HeartRateMeasurement(72, wide=True)))
    vectors.append(
        _hrs_vector(
            "u8_most_rr_at_mtu23",
            fp.HeartRateMeasurement(
                180, fp.ContactStatus.DETECTED, None, tuple(340 + i for i in range(9))
            ),
        )
    )
    decode_only = []
    for name, data, note in [
        ("detected_without_supported", bytes([0x02, 72]), "bit 1 alone is ignored"),
        ("rr_flag_without_intervals", bytes([0x10, 72]), "RR bit set, zero intervals follow"),
        ("reserved_bits_set", bytes([0xE0, 72]), "bits 5-7 are reserved and ignored"),
    ]:
        measurement = fp.HeartRateMeasurement.from_bytes(data)
        entry = _hrs_vector(name, measurement)
        entry["bytes"] = data.hex()
        entry["flags"] = data[0]
        entry["reencoded"] = bytes(measurement).hex()
        entry["note"] = note
        decode_only.append(entry)
    malformed = []
    for name, data in [
        ("empty", b""),
        ("u16_value_truncated", bytes([0x01, 0x2C])),
        ("energy_missing", bytes([0x08, 72])),
        ("rr_odd_byte", bytes([0x10, 72, 0xE8, 0x03, 0xD4])),
        ("trailing_byte_without_rr_flag", bytes([0x00, 72, 0x00])),
    ]:
        _expect_error(fp.HeartRateMeasurement.from_bytes, data, fp.FrameError)
        malformed.append({"name": name, "bytes": data.hex(), "error": "FrameError"})
    return {
        "description": (
            "Heart Rate Measurement (Bluetooth SIG characteristic 0x2A37) as the band notifies "
            "it on the standard Heart Rate service. 'vectors' decode to 'fields' and encode "
            "back to 'bytes'; 'decode_only' decode to 'fields' and re-encode to 'reencoded'; "
            "'malformed' raise 'error'. contact is NOT_SUPPORTED, NOT_DETECTED or DETECTED; "
            "rr_1024 are RR intervals in 1/1024 s."
        ),
        "flag_bits": {
            "value_format_u16": 0x01,
            "contact_detected": 0x02,
            "contact_supported": 0x04,
            "energy_expended_present": 0x08,
            "rr_intervals_present": 0x10,
        },
        "vectors": vectors,
        "decode_only": decode_only,
        "malformed": malformed,
    }


# -- frames: CRC, fragmentation, malformed ----------------------------------------------------


def _crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def _raw_frame(
    payload: bytes, *, version: int = 1, type_: int = 0x10, seq: int = 1, length: int | None = None
) -> bytes:
    """A frame built by hand, with a correct CRC unless the caller breaks it afterwards."""
    header = bytes([version, type_]) + seq.to_bytes(2, "little") + b"\x00"
    header += (len(payload) if length is None else length).to_bytes(2, "little")
    body = header + payload
    return body + _crc(body).to_bytes(2, "little")


def _malformed_frames() -> list[tuple[str, bytes, type[Exception], str | None, str]]:
    ack = fp.encode_frame(fp.Ack(), 1)
    start = fp.encode_frame(fp.Start(REFERENCE_PLAN_ID, 12 * SECOND, SESSION), 5)
    bad_crc = ack[:-1] + bytes([ack[-1] ^ 0x01])
    flipped_payload = bytearray(start)
    flipped_payload[9] ^= 0x80
    too_many_rr = (
        (1).to_bytes(4, "little")
        + (0).to_bytes(4, "little")
        + (0).to_bytes(8, "little")
        + (60).to_bytes(2, "little")
        + b"\x01"
        + bytes([33])
        + bytes(66)
    )
    return [
        ("bad_crc", bad_crc, fp.FrameError, "crc", "an ACK whose last CRC byte is off by one bit"),
        (
            "bit_flipped_payload",
            bytes(flipped_payload),
            fp.FrameError,
            "crc",
            "a START with one payload bit flipped: the CRC no longer matches",
        ),
        (
            "truncated",
            start[:-3],
            fp.FrameError,
            "header.length",
            "a START missing its last three bytes",
        ),
        (
            "shorter_than_header",
            ack[:5],
            fp.FrameError,
            "",
            "fewer than the 9 bytes of header and CRC",
        ),
        (
            "oversized_length",
            _raw_frame(b"", length=0xFFFF),
            fp.FrameError,
            "header.length",
            "header claims 65535 payload bytes; refused without reading them",
        ),
        (
            "length_too_short",
            _raw_frame(b"\x00", length=0),
            fp.FrameError,
            "header.length",
            "one payload byte present, header says 0",
        ),
        (
            "frame_too_large",
            _raw_frame(bytes(frames.MAX_FRAME_BYTES - frames.FRAME_OVERHEAD + 1), type_=0x03),
            fp.FrameError,
            "",
            "2049 bytes: more than the 2048-byte frame limit",
        ),
        (
            "unsupported_version",
            _raw_frame(b"", version=2),
            fp.UnsupportedVersionError,
            None,
            "an ACK of protocol version 2 with a valid CRC",
        ),
        (
            "unknown_message_type",
            _raw_frame(b"", type_=0x7F),
            fp.FrameError,
            "header.type",
            "type 0x7F is not a v2 message; a band answers it with NACK UNKNOWN_COMMAND",
        ),
        (
            "payload_too_long_for_type",
            _raw_frame(b"\x00"),
            fp.FrameError,
            None,
            "an ACK with one payload byte: payloads must be exactly their message's size",
        ),
        (
            "payload_too_short_for_type",
            _raw_frame((1).to_bytes(4, "little"), type_=0x0A),
            fp.FrameError,
            "TimeSyncResponse",
            "a TIME_SYNC_RESPONSE with 4 of its 24 payload bytes",
        ),
        (
            "string_not_utf8",
            _raw_frame(b"\x03\x02\xff\xfe", type_=0x11),
            fp.FrameError,
            "Nack",
            "a NACK whose detail is not UTF-8",
        ),
        (
            "too_many_rr_intervals",
            _raw_frame(too_many_rr, type_=0x22, seq=0),
            fp.FrameError,
            "HeartRateSample",
            "a HEART_RATE_SAMPLE with 33 RR intervals (at most 32)",
        ),
    ]


def _fragment_errors() -> list[dict[str, Any]]:
    """Fragment sequences the reassembler refuses, with the index of the refused fragment."""
    frame = fp.encode_frame(fp.PlanChunk(REFERENCE_PLAN_ID, 60, 0, bytes(range(60))), 2)
    pieces = fp.fragment(frame, DEFAULT_MTU - 3)
    cases = [
        ("empty_fragment", [b""], "an empty write"),
        ("continuation_without_first", pieces[1:2], "fragment 1 with no first fragment before"),
        ("missing_fragment", [pieces[0], pieces[2]], "fragment 1 lost: fragment 2 is refused"),
        (
            "recovery_after_error",
            [pieces[0], pieces[2], *pieces],
            "after a refused fragment the next first fragment starts afresh and completes",
        ),
    ]
    out = []
    for name, sequence, note in cases:
        reassembler = fp.Reassembler()
        refused: list[int] = []
        completed: list[str] = []
        for index, piece in enumerate(sequence):
            try:
                whole = reassembler.feed(piece)
            except fp.FrameError:
                refused.append(index)
                continue
            if whole is not None:
                completed.append(whole.hex())
        out.append(
            {
                "name": name,
                "fragments": _hexes(sequence),
                "error": "FrameError",
                "refused": refused,
                "frames": completed,
                "note": note,
            }
        )
    return out


def _fragmentation_vectors() -> list[dict[str, Any]]:
    chunk = fp.PlanChunk(
        REFERENCE_PLAN_ID, len(REFERENCE_PLAN_BYTES), 0, REFERENCE_PLAN_BYTES[:PLAN_CHUNK_BYTES]
    )
    plan_frame = fp.encode_frame(chunk, 2)
    ack = fp.encode_frame(fp.Ack(), 2)
    # Raw bytes, not a frame: long enough for the 6-bit fragment index to wrap past 63.
    wrapping = bytes(i & 0xFF for i in range(64 * (DEFAULT_MTU - 4) + 10))
    cases = [
        ("ack_mtu23", ack, DEFAULT_MTU, "a short frame is one fragment: header 0xC0"),
        ("plan_chunk_mtu23", plan_frame, DEFAULT_MTU, "19 frame bytes per fragment"),
        ("plan_chunk_mtu247", plan_frame, LARGE_MTU, "one fragment at MTU 247"),
        (
            "index_wraps_mtu23",
            wrapping,
            DEFAULT_MTU,
            "raw bytes (not a frame): fragment 64 carries index 0 again",
        ),
    ]
    return [
        {
            "name": name,
            "mtu": mtu,
            "max_fragment": mtu - 3,
            "frame": frame.hex(),
            "fragments": _hexes(fp.fragment(frame, mtu - 3)),
            "note": note,
        }
        for name, frame, mtu, note in cases
    ]


def build_frames() -> dict[str, Any]:
    """The CRC, the fragment layout, and frames and fragments a decoder must refuse."""
    malformed = []
    for name, data, error, path, note in _malformed_frames():
        _expect_error(fp.decode_frame, data, error, path)
        vector: dict[str, Any] = {"name": name, "frame": data.hex(), "error": error.__name__}
        if path is not None:
            vector["path"] = path
        malformed.append(vector | {"note": note})
    header_example = fp.encode_frame(fp.Ack(), 2)
    return {
        "description": (
            "Frame envelope, CRC and fragmentation. 'fragmentation' vectors split 'frame' into "
            "'fragments' of at most mtu - 3 bytes; 'malformed' frames raise 'error' when "
            "decoded; 'fragment_errors' feed 'fragments' in order to one reassembler, which "
            "refuses the fragments at the indexes in 'refused' and completes 'frames'."
        ),
        "header": {
            "layout": "version u8 | type u8 | seq u16 | flags u8 | length u16",
            "byte_order": "little",
            "header_bytes": frames.HEADER_BYTES,
            "crc_bytes": 2,
            "max_frame_bytes": frames.MAX_FRAME_BYTES,
            "version": frames.FRAME_VERSION,
            "flags": {"RETRANSMIT": fp.FrameFlags.RETRANSMIT},
        },
        "crc": {
            "name": "CRC-16/CCITT-FALSE",
            "width": 16,
            "poly": "0x1021",
            "init": "0xFFFF",
            "refin": False,
            "refout": False,
            "xorout": "0x0000",
            "check_input": "123456789",
            "check": f"0x{_crc(b'123456789'):04X}",
            "covers": "header and payload (every byte before the CRC)",
            "byte_order": "little (low byte first)",
            "example_frame": header_example.hex(),
            "example_crc": f"0x{_crc(header_example[:-2]):04X}",
        },
        "fragment_header": {
            "first": 0x80,
            "last": 0x40,
            "index_mask": 0x3F,
            "min_mtu": frames.MIN_FRAGMENT_PAYLOAD + 3,
            "max_mtu": frames.MAX_FRAGMENT_PAYLOAD + 3,
        },
        "fragmentation": _fragmentation_vectors(),
        "malformed": malformed,
        "fragment_errors": _fragment_errors(),
    }


# -- the reference plan and its timeline ------------------------------------------------------


def build_plan() -> dict[str, Any]:
    """The reference plan's bytes, id, upload chunks and the timeline both ends compute."""
    data = REFERENCE_PLAN_BYTES
    chunks = []
    for seq, offset in enumerate(range(0, len(data), PLAN_CHUNK_BYTES), start=2):
        chunk = fp.PlanChunk(
            REFERENCE_PLAN_ID, len(data), offset, data[offset : offset + PLAN_CHUNK_BYTES]
        )
        frame = fp.encode_frame(chunk, seq)
        chunks.append(
            {
                "seq": seq,
                "offset": offset,
                "frame": frame.hex(),
                "fragments_mtu23": _hexes(fp.fragment(frame, DEFAULT_MTU - 3)),
            }
        )
    timeline = fp.build_timeline(REFERENCE_PLAN)
    return {
        "description": (
            "The reference plan ('back-5', here two rounds with a 20 s rest): its fields, its "
            "encoding, its id (first 8 bytes of SHA-256 of the encoding), the PLAN_CHUNK frames "
            "that upload it (128 plan bytes each, seq from 2), and the timeline both ends "
            "compute from it (times in microseconds from the start)."
        ),
        "fields": to_json(REFERENCE_PLAN),
        "encoded": data.hex(),
        "length": len(data),
        "plan_id": REFERENCE_PLAN_ID.hex(),
        "chunks": chunks,
        "timeline": {
            "total_us": timeline.total_us,
            "cues": [
                {
                    "cue_id": cue.cue_id,
                    "kind": int(cue.kind),
                    "kind_name": cue.kind.name,
                    "round": cue.round,
                    "step_index": cue.step_index,
                    "offset_us": cue.offset_us,
                }
                for cue in timeline.cues
            ],
            "segments": [to_json(segment) for segment in timeline.segments],
        },
    }


def build_all() -> dict[str, dict[str, Any]]:
    """Every vector file's content, by file name."""
    return {
        "messages.json": build_messages(),
        "frames.json": build_frames(),
        "hrs.json": build_hrs(),
        "plan.json": build_plan(),
    }


def render(document: dict[str, Any]) -> str:
    """The exact text committed for ``document``."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the vector files (or, with ``--check``, report the stale ones)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for name, document in build_all().items():
        path = VECTORS_DIR / name
        text = render(document)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python scripts/generate_vectors.py")
        return 1
    if not stale:
        print("vectors are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
