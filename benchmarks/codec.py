"""Codec speed: our construct codec against a hand-written ``struct`` codec of the same layout.

Run from the repository root::

    python benchmarks/codec.py            # about 30 s
    python benchmarks/codec.py --quick    # under 10 s

Two workloads, each an encode followed by a decode, the unit a link carries:

- **frame**: a CUE_FIRED event (the band's commonest frame after heart rate):
  ``encode_frame`` then ``decode_frame``, envelope, CRC-16 and payload included.
- **hr**: a Heart Rate Measurement (0x2A37) notification with contact detected
  and two RR intervals: ``bytes(measurement)`` then ``HeartRateMeasurement.from_bytes``.

The baseline does the same work by hand with ``struct`` and ``binascii.crc_hqx``:
it checks what our decoder checks (length, CRC, version, type, exact payload
size) and returns the same frozen dataclasses, so the ratio is the price of
keeping the formats as construct data rather than the price of doing less.
Both run in the same process, interleaved, and each figure is the fastest of
several repeats (the least disturbed by other work on a shared machine).
"""

from __future__ import annotations

import argparse
import binascii
import json
import struct
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import firmware_protocol as fp

CUE: Final = fp.CueFired(
    event_number=1234,
    band_time_us=312_000_000,
    cue_id=17,
    kind=fp.CueKind.COUNTDOWN,
    round=2,
    step_index=3,
    planned_us=312_000_000,
    fired_us=312_000_180,
    session_id=0x5E55_1D01,
)
HR: Final = fp.HeartRateMeasurement(142, fp.ContactStatus.DETECTED, None, (432, 440))

# -- the hand-written baseline ------------------------------------------------------------------

_HEADER: Final = struct.Struct("<BBHBH")
_CUE: Final = struct.Struct("<IIQHBBbQQ")
_CRC: Final = struct.Struct("<H")


def struct_encode_cue(cue: fp.CueFired, seq: int) -> bytes:
    """CUE_FIRED as a frame, by hand."""
    payload = _CUE.pack(
        cue.event_number,
        cue.session_id,
        cue.band_time_us,
        cue.cue_id,
        cue.kind,
        cue.round,
        cue.step_index,
        cue.planned_us,
        cue.fired_us,
    )
    body = _HEADER.pack(1, 0x20, seq, 0, len(payload)) + payload
    return body + _CRC.pack(binascii.crc_hqx(body, 0xFFFF))


def struct_decode_cue(data: bytes) -> fp.Frame:
    """A CUE_FIRED frame, by hand, with the checks ``decode_frame`` makes."""
    if len(data) < 9 or len(data) > 2048:
        raise fp.FrameError("bad frame size")
    version, type_, seq, flags, length = _HEADER.unpack_from(data)
    if length != len(data) - 9:
        raise fp.FrameError("bad length", path="header.length")
    if binascii.crc_hqx(data[:-2], 0xFFFF) != _CRC.unpack_from(data, len(data) - 2)[0]:
        raise fp.FrameError("CRC mismatch", path="crc")
    if version != 1:
        raise fp.UnsupportedVersionError(f"frame version {version}")
    if type_ != 0x20 or length != _CUE.size:
        raise fp.FrameError("not a CUE_FIRED payload")
    number, session, band_time, cue_id, kind, round_, step, planned, fired = _CUE.unpack_from(
        data, 7
    )
    message = fp.CueFired(
        number, band_time, cue_id, fp.CueKind(kind), round_, step, planned, fired, session
    )
    return fp.Frame(seq, flags, message)


def struct_encode_hr(hr: fp.HeartRateMeasurement) -> bytes:
    """A 0x2A37 value, by hand."""
    flags = 0x01 if hr.wide else 0
    if hr.contact is not fp.ContactStatus.NOT_SUPPORTED:
        flags |= 0x04
    if hr.contact is fp.ContactStatus.DETECTED:
        flags |= 0x02
    if hr.energy_kj is not None:
        flags |= 0x08
    if hr.rr_1024:
        flags |= 0x10
    out = struct.pack("<BH" if hr.wide else "<BB", flags, hr.bpm)
    if hr.energy_kj is not None:
        out += struct.pack("<H", hr.energy_kj)
    if hr.rr_1024:
        out += struct.pack(f"<{len(hr.rr_1024)}H", *hr.rr_1024)
    return out


def struct_decode_hr(data: bytes) -> fp.HeartRateMeasurement:
    """A 0x2A37 value, by hand, with the checks ``from_bytes`` makes."""
    try:
        flags = data[0]
        wide = bool(flags & 0x01)
        if wide:
            (bpm,) = struct.unpack_from("<H", data, 1)
            at = 3
        else:
            bpm, at = data[1], 2
        energy = None
        if flags & 0x08:
            (energy,) = struct.unpack_from("<H", data, at)
            at += 2
    except (IndexError, struct.error):
        raise fp.FrameError("truncated Heart Rate Measurement") from None
    rest = len(data) - at
    rr: tuple[int, ...] = ()
    if flags & 0x10:
        rr = struct.unpack_from(f"<{rest // 2}H", data, at)
        rest %= 2
    if rest:
        raise fp.FrameError("trailing bytes in Heart Rate Measurement")
    if not flags & 0x04:
        contact = fp.ContactStatus.NOT_SUPPORTED
    elif flags & 0x02:
        contact = fp.ContactStatus.DETECTED
    else:
        contact = fp.ContactStatus.NOT_DETECTED
    return fp.HeartRateMeasurement(bpm, contact, energy, rr, wide)


# -- measuring ---------------------------------------------------------------------------------


def _check_baselines_agree() -> None:
    """The baseline must produce our exact bytes and objects, or the comparison means nothing."""
    frame = fp.encode_frame(CUE, 0)
    assert struct_encode_cue(CUE, 0) == frame
    assert struct_decode_cue(frame) == fp.decode_frame(frame)
    hr = bytes(HR)
    assert struct_encode_hr(HR) == hr
    assert struct_decode_hr(hr) == fp.HeartRateMeasurement.from_bytes(hr) == HR


def _us_per_call(func: Callable[[], Any], number: int, repeat: int) -> float:
    """Fastest of ``repeat`` runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, end with the JSON line."""
    parser = argparse.ArgumentParser(description="codec speed against a struct baseline")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (under 10 s)")
    args = parser.parse_args(argv)
    number, repeat = (5_000, 5) if args.quick else (20_000, 15)

    _check_baselines_agree()
    hr_bytes = bytes(HR)
    cue_frame = fp.encode_frame(CUE, 0)
    cases: dict[str, Callable[[], Any]] = {
        "frame": lambda: fp.decode_frame(fp.encode_frame(CUE, 0)),
        "frame_struct": lambda: struct_decode_cue(struct_encode_cue(CUE, 0)),
        "frame_encode": lambda: fp.encode_frame(CUE, 0),
        "frame_struct_encode": lambda: struct_encode_cue(CUE, 0),
        "frame_decode": lambda: fp.decode_frame(cue_frame),
        "frame_struct_decode": lambda: struct_decode_cue(cue_frame),
        "hr": lambda: fp.HeartRateMeasurement.from_bytes(bytes(HR)),
        "hr_struct": lambda: struct_decode_hr(struct_encode_hr(HR)),
        "hr_encode": lambda: bytes(HR),
        "hr_struct_encode": lambda: struct_encode_hr(HR),
        "hr_decode": lambda: fp.HeartRateMeasurement.from_bytes(hr_bytes),
        "hr_struct_decode": lambda: struct_decode_hr(hr_bytes),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(repeat):  # interleaved, so a noisy spell hits every case alike
        for name, func in cases.items():
            best[name] = min(best[name], _us_per_call(func, number, 1))

    print(f"codec: encode + decode, fastest of {repeat} x {number:,} calls")
    print(f"{'workload':<24}{'ours µs':>10}{'struct µs':>11}{'ratio':>8}{'ours /s':>12}")
    for label, key, base in [
        ("CUE_FIRED frame", "frame", "frame_struct"),
        ("  encode only", "frame_encode", "frame_struct_encode"),
        ("  decode only", "frame_decode", "frame_struct_decode"),
        ("HR notification", "hr", "hr_struct"),
        ("  encode only", "hr_encode", "hr_struct_encode"),
        ("  decode only", "hr_decode", "hr_struct_decode"),
    ]:
        ours, baseline = best[key], best[base]
        print(
            f"{label:<24}{ours:>10.2f}{baseline:>11.2f}{ours / baseline:>8.1f}{1e6 / ours:>12,.0f}"
        )
    result = {
        "bench": "codec",
        "frame_us": round(best["frame"], 3),
        "frame_struct_us": round(best["frame_struct"], 3),
        "frame_ratio": round(best["frame"] / best["frame_struct"], 2),
        "hr_us": round(best["hr"], 3),
        "hr_struct_us": round(best["hr_struct"], 3),
        "hr_ratio": round(best["hr"] / best["hr_struct"], 2),
        "frame_decode_us": round(best["frame_decode"], 3),
        "hr_decode_us": round(best["hr_decode"], 3),
        "quick": args.quick,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
