"""The struct fast path agrees with the construct declarations, on every input.

The fast path is read off the construct declarations (one declaration of the
format); these tests hold it to construct's own parser and builder: the same
values for well-formed input, and for anything else the fast path declines and
construct raises its FrameError with the field path.
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import struct
from typing import Any

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

import firmware_protocol as fp
from firmware_protocol import frames

from .strategies import heart_rates, messages

FAST_CLASSES = sorted(frames._FAST, key=lambda cls: cls.__name__)


def construct_parse(cls: type[Any], payload: bytes) -> dict[str, Any] | Exception:
    try:
        parsed = frames._PAYLOADS[cls].parse(payload)
    except (c.ConstructError, struct.error, ValueError, UnicodeDecodeError) as exc:
        return exc
    return {name: parsed[name] for name in frames._FIELD_NAMES[cls]}


def test_every_fixed_layout_payload_has_a_fast_path_and_variable_ones_do_not() -> None:
    # Strings and length-prefixed bytes stay with construct (it checks their lengths).
    slow = set(frames._PAYLOADS) - set(frames._FAST)
    assert slow == {fp.Capabilities, fp.Nack, fp.PlanChunk}


@pytest.mark.parametrize("cls", FAST_CLASSES, ids=lambda cls: cls.__name__)
def test_the_fast_layout_is_the_declared_one_field_by_field(cls: type[Any]) -> None:
    layout = frames._FAST[cls]
    declared = frames._PAYLOADS[cls].defersubcon.subcons
    names = [sub.name for sub in declared if sub.name is not None]
    assert [*layout.names, *([layout.array[0]] if layout.array else [])] == names
    assert sorted(names) == sorted(frames._FIELD_NAMES[cls])  # wire order may differ
    sizes = [sub.subcon.sizeof() for sub in declared[: len(layout.names)]]
    assert layout.fixed.size == sum(sizes)


@given(messages, st.integers(0, 0xFFFF))
def test_fast_and_construct_build_the_same_bytes(message: fp.Message, seq: int) -> None:
    cls = type(message)
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    layout = frames._FAST.get(cls)
    if layout is not None:
        assert frames._fast_build(layout, message) == frames._PAYLOADS[cls].build(fields)
    frame = fp.encode_frame(message, seq)
    assert fp.decode_frame(frame) == fp.Frame(seq, 0, message)


@given(st.sampled_from(FAST_CLASSES), st.data())
def test_fast_and_construct_parse_every_payload_alike(cls: type[Any], data: st.DataObject) -> None:
    layout = frames._FAST[cls]
    size = layout.fixed.size
    # Near the right size as often as not: random bytes of any length rarely are.
    length = data.draw(st.one_of(st.integers(0, 64), st.integers(max(size - 2, 0), size + 12)))
    payload = data.draw(st.binary(min_size=length, max_size=length))
    fast = frames._fast_parse(layout, payload)
    slow = construct_parse(cls, payload)
    if fast is None:
        assert isinstance(slow, Exception)
    else:
        assert not isinstance(slow, Exception)
        assert fast == slow


@given(st.binary(max_size=24))
def test_fast_and_construct_decode_every_heart_rate_value_alike(data: bytes) -> None:
    fast = frames._fast_hrs(data)
    parsed: Any = None
    with contextlib.suppress(c.ConstructError, struct.error):
        parsed = frames._Hrs.parse(data)
    if parsed is None:
        assert fast is None
        with pytest.raises(fp.FrameError):
            fp.HeartRateMeasurement.from_bytes(data)
        return
    rr = tuple(parsed["rr"]) if parsed["rr"] is not None else ()
    assert fast == (parsed["flags"], parsed["bpm"], parsed["energy"], rr)


@given(st.binary(min_size=2, max_size=24))
def test_a_decoded_heart_rate_is_one_its_own_checks_accept(data: bytes) -> None:
    # from_bytes skips __init__'s checks (its fields are in range by construction): whatever
    # it returns, __init__ must accept with the same fields and re-encode to the same bytes.
    try:
        decoded = fp.HeartRateMeasurement.from_bytes(data)
    except fp.FrameError:
        return
    checked = fp.HeartRateMeasurement(*dataclasses.astuple(decoded))
    assert checked == decoded
    assert type(checked.contact) is fp.ContactStatus
    flags = data[0]
    detected, supported = bool(flags & 0x02), bool(flags & 0x04)
    expected = (
        fp.ContactStatus.NOT_SUPPORTED
        if not supported
        else fp.ContactStatus.DETECTED
        if detected
        else fp.ContactStatus.NOT_DETECTED
    )
    assert decoded.contact is expected
    assert fp.HeartRateMeasurement.from_bytes(bytes(decoded)) == decoded


@given(heart_rates)
def test_fast_and_construct_encode_every_heart_rate_alike(
    measurement: fp.HeartRateMeasurement,
) -> None:
    data = bytes(measurement)
    flags, bpm, energy, rr = frames._fast_hrs(data) or frames.decode_hrs_fields(data)
    built = frames._Hrs.build(
        {"flags": flags, "bpm": bpm, "energy": energy, "rr": list(rr) if rr else None}
    )
    assert built == data
    assert fp.HeartRateMeasurement.from_bytes(data) == measurement


def test_malformed_input_still_fails_with_constructs_path() -> None:
    frame = bytearray(fp.encode_frame(fp.TimeSyncRequest(1), 1))
    with pytest.raises(fp.FrameError, match="CRC"):
        fp.decode_frame(bytes(frame[:-1]) + b"\0")
    # A CUE_FIRED frame whose CRC checks but whose payload is 3 bytes: construct explains
    body = struct.pack("<BBHBH", 1, int(fp.MessageType.CUE_FIRED), 1, 0, 3) + b"\0\0\0"
    short = body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "little")
    assert frames._fast_parse(frames._FAST[fp.CueFired], b"\0" * 3) is None
    with pytest.raises(fp.FrameError, match="malformed CueFired") as refused:
        fp.decode_frame(short)
    assert refused.value.path is not None
    assert refused.value.path.startswith("CueFired")
    with pytest.raises(fp.FrameError, match="Heart Rate Measurement"):
        fp.HeartRateMeasurement.from_bytes(b"\x10\x50\x01")  # RR flag, an odd byte of RR
