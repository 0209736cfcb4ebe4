"""The golden vectors in ``firmware_protocol/vectors``: every vector decodes to its fields
and encodes back to its exact bytes, every malformed one raises its named error, and the
committed JSON is exactly what the generator builds from the codec today."""

from __future__ import annotations

import binascii
import dataclasses
import enum
import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest

import firmware_protocol as fp
from firmware_protocol import messages as m
from scripts import generate_vectors as generate

VECTORS = Path(fp.__file__).resolve().parent / "vectors"


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return document


MESSAGES = _load("messages.json")
FRAMES = _load("frames.json")
HRS = _load("hrs.json")
PLAN = _load("plan.json")


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [vector["name"] for vector in vectors]


def _plain(value: Any) -> Any:
    """What the vectors hold for a decoded value (written apart from the generator's)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _from_plain(hint: Any, value: Any) -> Any:
    """The Python value of a JSON field, led by the dataclass field's type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is bytes:
        return bytes.fromhex(value)
    if origin is tuple:
        return tuple(_from_plain(args[0], item) for item in value)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        return _from_plain(next(a for a in args if a is not type(None)), value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(
            **{f.name: _from_plain(hints[f.name], value[f.name]) for f in dataclasses.fields(hint)}
        )
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    return value


MESSAGE_CLASSES = {
    cls.__name__: cls for cls in (*m.COMMAND_TYPES, *m.REPLY_TYPES, *m.EVENT_TYPES, m.EventAck)
}


def _crc16_ccitt_false(data: bytes, poly: int, init: int) -> int:
    """Bit by bit, as a C firmware would write it without a table."""
    crc = init
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# -- the vectors cannot drift ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(generate.build_all()))
def test_committed_vector_file_is_what_the_generator_builds_now(name: str) -> None:
    committed = (VECTORS / name).read_text(encoding="utf-8")
    assert committed == generate.render(generate.build_all()[name]), (
        f"{name} is stale: run python scripts/generate_vectors.py"
    )


def test_vectors_cover_every_message_type_of_the_protocol() -> None:
    covered = {vector["message"] for vector in MESSAGES["vectors"]}
    assert covered == set(MESSAGE_CLASSES)
    assert {vector["type_name"] for vector in MESSAGES["vectors"]} == {
        member.name for member in fp.MessageType
    }


# -- messages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", MESSAGES["vectors"], ids=_ids(MESSAGES["vectors"]))
def test_message_vector_decodes_to_its_fields(vector: dict[str, Any]) -> None:
    frame = fp.decode_frame(bytes.fromhex(vector["frame"]))
    assert type(frame.message).__name__ == vector["message"]
    assert (frame.seq, frame.flags) == (vector["seq"], vector["flags"])
    assert _plain(frame.message) == vector["fields"]
    for field, name in vector.get("enum_names", {}).items():
        value = getattr(frame.message, field)
        shown = (
            "|".join(f.name or "" for f in value) if isinstance(value, enum.IntFlag) else value.name
        )
        assert shown == name


@pytest.mark.parametrize("vector", MESSAGES["vectors"], ids=_ids(MESSAGES["vectors"]))
def test_message_vector_encodes_to_its_exact_bytes(vector: dict[str, Any]) -> None:
    message = _from_plain(MESSAGE_CLASSES[vector["message"]], vector["fields"])
    frame = fp.encode_frame(message, vector["seq"], vector["flags"])
    assert frame.hex() == vector["frame"]
    assert frame[7:-2].hex() == vector["payload"]
    assert [p.hex() for p in fp.fragment(frame, 20)] == vector["fragments_mtu23"]


@pytest.mark.parametrize("vector", MESSAGES["vectors"], ids=_ids(MESSAGES["vectors"]))
def test_message_vector_header_and_crc_follow_the_documented_layout(vector: dict[str, Any]) -> None:
    frame = bytes.fromhex(vector["frame"])
    payload = bytes.fromhex(vector["payload"])
    assert frame[0] == MESSAGES["frame_version"]
    assert frame[1] == vector["type"] == MESSAGES["codes"]["MessageType"][vector["type_name"]]
    assert int.from_bytes(frame[2:4], "little") == vector["seq"]
    assert frame[4] == vector["flags"]
    assert int.from_bytes(frame[5:7], "little") == len(payload)
    assert frame[7:-2] == payload
    crc = FRAMES["crc"]
    expected = _crc16_ccitt_false(frame[:-2], int(crc["poly"], 16), int(crc["init"], 16))
    assert int.from_bytes(frame[-2:], "little") == expected


@pytest.mark.parametrize("vector", MESSAGES["vectors"], ids=_ids(MESSAGES["vectors"]))
def test_message_vector_fragments_at_mtu_23_reassemble_to_the_frame(vector: dict[str, Any]) -> None:
    pieces = [bytes.fromhex(p) for p in vector["fragments_mtu23"]]
    assert all(len(piece) <= 20 for piece in pieces)
    reassembler = fp.Reassembler()
    outputs = [reassembler.feed(piece) for piece in pieces]
    assert outputs[:-1] == [None] * (len(pieces) - 1)
    assert outputs[-1] == bytes.fromhex(vector["frame"])


def test_unknown_cue_kind_vector_keeps_its_code() -> None:
    (vector,) = [v for v in MESSAGES["vectors"] if v["name"] == "cue_fired_unknown_kind"]
    message = fp.decode_frame(bytes.fromhex(vector["frame"])).message
    assert isinstance(message, fp.CueFired)
    assert message.kind == 0x7E
    assert vector["enum_names"]["kind"] == "UNKNOWN_0x7E"


def test_retransmitted_command_differs_only_in_its_flags_and_crc() -> None:
    by_name = {v["name"]: bytes.fromhex(v["frame"]) for v in MESSAGES["vectors"]}
    first, again = by_name["start"], by_name["start_retransmitted"]
    assert len(first) == len(again)
    assert [i for i in range(len(first)) if first[i] != again[i]] == [
        4,
        len(first) - 2,
        len(first) - 1,
    ]


# -- CRC, fragmentation and malformed frames --------------------------------------------------


def test_crc_parameters_give_the_published_check_value() -> None:
    crc = FRAMES["crc"]
    value = _crc16_ccitt_false(
        crc["check_input"].encode(), int(crc["poly"], 16), int(crc["init"], 16)
    )
    assert f"0x{value:04X}" == crc["check"] == "0x29B1"
    example = bytes.fromhex(crc["example_frame"])
    assert int.from_bytes(example[-2:], "little") == int(crc["example_crc"], 16)


@pytest.mark.parametrize("vector", FRAMES["fragmentation"], ids=_ids(FRAMES["fragmentation"]))
def test_fragmentation_vector_splits_and_rejoins_exactly(vector: dict[str, Any]) -> None:
    frame = bytes.fromhex(vector["frame"])
    pieces = fp.fragment(frame, vector["max_fragment"])
    assert [p.hex() for p in pieces] == vector["fragments"]
    heads = [piece[0] for piece in pieces]
    assert heads[0] & 0x80
    assert heads[-1] & 0x40
    assert [head & 0x3F for head in heads] == [i % 64 for i in range(len(pieces))]
    reassembler = fp.Reassembler()
    assert [reassembler.feed(piece) for piece in pieces][-1] == frame


@pytest.mark.parametrize("vector", FRAMES["malformed"], ids=_ids(FRAMES["malformed"]))
def test_malformed_frame_vector_raises_its_named_error(vector: dict[str, Any]) -> None:
    error = getattr(fp, vector["error"])
    assert issubclass(error, fp.ProtocolError)
    with pytest.raises(error) as caught:
        fp.decode_frame(bytes.fromhex(vector["frame"]))
    assert type(caught.value) is error
    if "path" in vector:
        assert caught.value.path == vector["path"]


@pytest.mark.parametrize("vector", FRAMES["fragment_errors"], ids=_ids(FRAMES["fragment_errors"]))
def test_fragment_error_vector_refuses_the_named_fragments(vector: dict[str, Any]) -> None:
    reassembler = fp.Reassembler()
    refused, frames = [], []
    for index, piece in enumerate(vector["fragments"]):
        try:
            whole = reassembler.feed(bytes.fromhex(piece))
        except fp.FrameError:
            refused.append(index)
            continue
        if whole is not None:
            frames.append(whole.hex())
    assert refused == vector["refused"]
    assert frames == vector["frames"]


def test_a_length_prefix_running_past_the_payload_is_refused() -> None:
    body = bytes([1, 0x11, 1, 0, 0, 4, 0]) + b"\x03\x10ab"  # NACK detail claims 16 bytes, holds 2
    frame = body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "little")
    with pytest.raises(fp.FrameError):
        fp.decode_frame(frame)


# -- heart rate measurement -----------------------------------------------------------------------


def _measurement(fields: dict[str, Any]) -> fp.HeartRateMeasurement:
    return fp.HeartRateMeasurement(
        fields["bpm"],
        fp.ContactStatus[fields["contact"]],
        fields["energy_kj"],
        tuple(fields["rr_1024"]),
        fields["wide"],
    )


def _hrs_fields(measurement: fp.HeartRateMeasurement) -> dict[str, Any]:
    return {
        "bpm": measurement.bpm,
        "wide": measurement.wide,
        "contact": measurement.contact.name,
        "energy_kj": measurement.energy_kj,
        "rr_1024": list(measurement.rr_1024),
    }


@pytest.mark.parametrize("vector", HRS["vectors"], ids=_ids(HRS["vectors"]))
def test_heart_rate_vector_decodes_to_its_fields_and_encodes_back(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["bytes"])
    assert data[0] == vector["flags"]
    assert _hrs_fields(fp.HeartRateMeasurement.from_bytes(data)) == vector["fields"]
    assert bytes(_measurement(vector["fields"])) == data


def test_heart_rate_vectors_cover_every_flag_combination_and_rr_count() -> None:
    bits = HRS["flag_bits"]
    contacts = {0, bits["contact_supported"], bits["contact_supported"] | bits["contact_detected"]}
    wanted = {
        wide | contact | energy | rr
        for wide in (0, bits["value_format_u16"])
        for contact in contacts
        for energy in (0, bits["energy_expended_present"])
        for rr in (0, bits["rr_intervals_present"])
    }
    assert {vector["flags"] for vector in HRS["vectors"]} == wanted
    counts = {len(vector["fields"]["rr_1024"]) for vector in HRS["vectors"]}
    assert {0, 1, 3} <= counts
    assert (
        max(len(bytes.fromhex(v["bytes"])) for v in HRS["vectors"]) <= 20
    )  # one MTU-23 notification


@pytest.mark.parametrize("vector", HRS["decode_only"], ids=_ids(HRS["decode_only"]))
def test_heart_rate_oddity_decodes_and_reencodes_canonically(vector: dict[str, Any]) -> None:
    measurement = fp.HeartRateMeasurement.from_bytes(bytes.fromhex(vector["bytes"]))
    assert _hrs_fields(measurement) == vector["fields"]
    assert bytes(measurement).hex() == vector["reencoded"]


@pytest.mark.parametrize("vector", HRS["malformed"], ids=_ids(HRS["malformed"]))
def test_malformed_heart_rate_vector_raises_its_named_error(vector: dict[str, Any]) -> None:
    error = getattr(fp, vector["error"])
    with pytest.raises(error) as caught:
        fp.HeartRateMeasurement.from_bytes(bytes.fromhex(vector["bytes"]))
    assert type(caught.value) is error


# -- the reference plan ----------------------------------------------------------------------------


def test_plan_vector_decodes_to_its_fields_and_encodes_back() -> None:
    encoded = bytes.fromhex(PLAN["encoded"])
    plan = _from_plain(fp.WirePlan, PLAN["fields"])
    assert fp.decode_plan(encoded) == plan
    assert fp.encode_plan(plan) == encoded
    assert len(encoded) == PLAN["length"]
    assert fp.plan_id(encoded).hex() == PLAN["plan_id"]


def test_plan_chunks_upload_the_whole_plan_in_order() -> None:
    uploaded = b""
    for chunk in PLAN["chunks"]:
        reassembler = fp.Reassembler()
        joined = [reassembler.feed(bytes.fromhex(p)) for p in chunk["fragments_mtu23"]][-1]
        assert joined is not None
        assert joined.hex() == chunk["frame"]
        frame = fp.decode_frame(joined)
        assert frame.seq == chunk["seq"]
        message = frame.message
        assert isinstance(message, fp.PlanChunk)
        assert (message.offset, message.total_length) == (len(uploaded), PLAN["length"])
        assert message.plan_id.hex() == PLAN["plan_id"]
        uploaded += message.data
    assert uploaded.hex() == PLAN["encoded"]


def test_plan_timeline_vector_is_what_the_timeline_builder_lays_out() -> None:
    timeline = fp.build_timeline(fp.decode_plan(bytes.fromhex(PLAN["encoded"])))
    expected = PLAN["timeline"]
    assert timeline.total_us == expected["total_us"]
    assert [
        {
            "cue_id": c.cue_id,
            "kind": int(c.kind),
            "kind_name": c.kind.name,
            "round": c.round,
            "step_index": c.step_index,
            "offset_us": c.offset_us,
        }
        for c in timeline.cues
    ] == expected["cues"]
    assert [_plain(s) for s in timeline.segments] == expected["segments"]
