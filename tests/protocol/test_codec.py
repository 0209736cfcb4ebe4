"""Every message, plan and heart-rate measurement survives encode -> decode, and
no byte string whatsoever makes the decoders raise anything but ProtocolError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import firmware_protocol as fp
from firmware_protocol.frames import MAX_FRAME_BYTES

from .strategies import heart_rates, messages, wire_plans


@given(messages, st.integers(0, 0xFFFF))
def test_every_message_round_trips_through_a_frame(message: fp.Message, seq: int) -> None:
    frame = fp.decode_frame(fp.encode_frame(message, seq))
    assert frame.message == message
    assert frame.seq == seq


@given(messages, st.sampled_from([20, 21, 64, 185, 244, 514]))
def test_any_frame_crosses_any_mtu_in_fragments(message: fp.Message, max_payload: int) -> None:
    frame = fp.encode_frame(message, 7)
    pieces = fp.fragment(frame, max_payload)
    assert all(len(piece) <= max_payload for piece in pieces)
    reassembler = fp.Reassembler()
    outputs = [reassembler.feed(piece) for piece in pieces]
    assert outputs[:-1] == [None] * (len(pieces) - 1)
    assert outputs[-1] == frame


@given(wire_plans)
def test_every_plan_round_trips_and_its_id_is_stable(plan: fp.WirePlan) -> None:
    data = fp.encode_plan(plan)
    assert fp.decode_plan(data) == plan
    assert fp.plan_id(fp.encode_plan(fp.decode_plan(data))) == fp.plan_id(data)


@given(heart_rates)
def test_every_heart_rate_measurement_round_trips(measurement: fp.HeartRateMeasurement) -> None:
    assert fp.HeartRateMeasurement.from_bytes(bytes(measurement)) == measurement


@given(st.binary(max_size=300))
@example(b"")
@example(b"\x01")
@example(bytes(9))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    for decode in (fp.decode_frame, fp.decode_plan, fp.HeartRateMeasurement.from_bytes):
        with contextlib.suppress(fp.ProtocolError):
            decode(data)


@given(messages, st.data())
def test_truncated_or_bit_flipped_frames_are_refused(
    message: fp.Message, data: st.DataObject
) -> None:
    frame = fp.encode_frame(message, 3)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(fp.FrameError):
        fp.decode_frame(frame[:cut])
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    flipped = bytearray(frame)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(fp.ProtocolError):  # CRC-16 catches every single-bit error
        fp.decode_frame(bytes(flipped))


@given(messages, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_after_a_frame_are_refused(message: fp.Message, extra: bytes) -> None:
    with pytest.raises(fp.FrameError):
        fp.decode_frame(fp.encode_frame(message, 1) + extra)


def test_a_frame_claiming_an_oversized_length_is_refused_without_allocating() -> None:
    frame = bytearray(fp.encode_frame(fp.Ack(), 1))
    frame[5:7] = (0xFFFF).to_bytes(2, "little")
    with pytest.raises(fp.FrameError, match="payload bytes"):
        fp.decode_frame(bytes(frame))


def test_reassembler_refuses_a_frame_larger_than_its_buffer() -> None:
    reassembler = fp.Reassembler(max_frame=100)
    pieces = fp.fragment(bytes(MAX_FRAME_BYTES), 20)
    for piece in pieces[:5]:
        reassembler.feed(piece)
    with pytest.raises(fp.FrameError, match="exceeds"):
        reassembler.feed(pieces[5])


def test_reassembler_drops_a_frame_missing_a_fragment_and_recovers() -> None:
    frame = fp.encode_frame(fp.PlanChunk(bytes(8), 60, 0, bytes(60)), 9)
    pieces = fp.fragment(frame, 20)
    reassembler = fp.Reassembler()
    reassembler.feed(pieces[0])
    with pytest.raises(fp.FrameError, match="was due"):
        reassembler.feed(pieces[2])
    assert [reassembler.feed(p) for p in pieces][-1] == frame


def test_unknown_codes_from_newer_firmware_parse_instead_of_crashing() -> None:
    event = fp.CueFired(1, 2, 3, fp.CueKind(0x7E), 1, 0, 4, 5)
    decoded = fp.decode_frame(fp.encode_frame(event, 0)).message
    assert isinstance(decoded, fp.CueFired)
    assert decoded.kind == 0x7E
    assert decoded.kind.name == "UNKNOWN_0x7E"


def test_a_frame_of_another_protocol_version_names_the_problem() -> None:
    frame = bytearray(fp.encode_frame(fp.Ack(), 1))
    frame[0] = 2
    frame[-2:] = __import__("binascii").crc_hqx(bytes(frame[:-2]), 0xFFFF).to_bytes(2, "little")
    with pytest.raises(fp.UnsupportedVersionError, match="version 2"):
        fp.decode_frame(bytes(frame))


def test_invalid_field_values_are_refused_on_construction() -> None:
    with pytest.raises(fp.LocalProtocolError, match="bpm"):
        fp.HeartRateMeasurement(300)
    with pytest.raises(fp.LocalProtocolError, match="plan_id"):
        fp.Start(b"short", 0, 1)
    with pytest.raises(fp.LocalProtocolError, match="step_index"):
        fp.CueFired(1, 1, 1, fp.CueKind.COUNTDOWN, 1, 200, 1, 1)
