# The companion band protocol for MicroPython: frames, CRC, fragments, plans, timeline.
#
# Sans-I/O and written for MicroPython (it also runs under CPython, which is how the
# virtual band uses it): ``struct`` and plain classes only -- no construct, no
# dataclasses, no ``match``. Every byte layout is a row of ``MESSAGES`` below, in wire
# order, so a protocol change is an edit of that table. The layouts are those of
# firmware_protocol/vectors/PROTOCOL.md; the golden vectors beside it are the test.

import hashlib
import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


FRAME_VERSION = const(1)  # the header's version byte
PROTOCOL_VERSION = const(2)  # what HELLO negotiates (v2: workouts have an identity)
HEADER_BYTES = const(7)
FRAME_OVERHEAD = const(9)
MAX_FRAME_BYTES = const(2048)
MIN_FRAGMENT_PAYLOAD = const(20)  # MTU 23
MAX_FRAGMENT_PAYLOAD = const(514)  # MTU 517
MAX_CHUNK_BYTES = const(1024)
MAX_RR_INTERVALS = const(32)
PLAN_ID_BYTES = const(8)
NO_PLAN_ID = b"\x00" * 8
RETRANSMIT = const(0x01)

_FIRST = const(0x80)
_LAST = const(0x40)
_INDEX_MASK = const(0x3F)

# Message types.
HELLO = const(0x01)
CAPABILITIES = const(0x02)
PLAN_CHUNK = const(0x03)
START = const(0x04)
PAUSE = const(0x05)
RESUME = const(0x06)
STOP = const(0x07)
SKIP = const(0x08)
TIME_SYNC_REQUEST = const(0x09)
TIME_SYNC_RESPONSE = const(0x0A)
ADJUST = const(0x0B)
ACK = const(0x10)
NACK = const(0x11)
EVENT_ACK = const(0x12)
CUE_FIRED = const(0x20)
SESSION_STATE = const(0x21)
HEART_RATE_SAMPLE = const(0x22)
BUTTON_PRESSED = const(0x23)

COMMANDS = (HELLO, PLAN_CHUNK, START, PAUSE, RESUME, STOP, SKIP, TIME_SYNC_REQUEST, ADJUST)

# Codes (open: any 0..255 decodes and is kept).
CUE_NEXT_EXERCISE = const(1)
CUE_SWITCH_SIDE = const(2)
CUE_COUNTDOWN = const(3)
CUE_ROUND_DONE = const(4)
CUE_WORKOUT_DONE = const(5)
CUE_STOPPED = const(6)

BUTTON_STOP = const(1)
BUTTON_PAIN = const(2)
BUTTON_SKIP = const(3)

IDLE = const(0)
RUNNING = const(1)
PAUSED = const(2)
ROUND_REST = const(3)
DONE = const(4)
STOPPED = const(5)

CAUSE_NONE = const(0)
CAUSE_BUTTON = const(1)
CAUSE_PAIN = const(2)
CAUSE_HOST = const(3)

NACK_MALFORMED = const(1)
NACK_UNSUPPORTED_VERSION = const(2)
NACK_NO_PLAN = const(3)
NACK_PLAN_TOO_LARGE = const(4)
NACK_PLAN_MISMATCH = const(5)
NACK_BAD_STATE = const(6)
NACK_UNKNOWN_COMMAND = const(7)
NACK_BUSY = const(8)
NACK_OUT_OF_RANGE = const(9)

MOTOR_VIBRATE = const(0x01)
MOTOR_INTENSITY = const(0x02)

STOPPED_CUE_ID = const(0xFFFF)
REST_STEP = const(-1)

# Field codes: a struct format letter, or
#   "s" str (u8 length + UTF-8), "p" plan id (8 bytes), "d" bytes (u16 length, at most 1024),
#   "f" flag (u8, any non-zero is true), "r" RR intervals (u8 count, at most 32, u16 each).
_EVENT = (("event_number", "I"), ("session_id", "I"), ("band_time_us", "Q"))

# type -> (message name, fields in wire order)
MESSAGES = {
    HELLO: ("Hello", (("min_version", "B"), ("max_version", "B"))),
    CAPABILITIES: (
        "Capabilities",
        (
            ("protocol_version", "B"),
            ("firmware_version", "s"),
            ("mtu", "H"),
            ("max_plan_bytes", "H"),
            ("max_steps", "B"),
            ("max_name_length", "B"),
            ("event_buffer", "H"),
            ("motor", "B"),
            ("plan_id", "p"),
            ("band_time_us", "Q"),
            ("boot_id", "I"),
            ("first_unacked_event", "I"),
            ("session_id", "I"),
            ("session_state", "B"),
            ("session_round", "B"),
            ("session_step", "b"),
            ("session_start_us", "Q"),
            ("session_shift_us", "q"),
            ("session_adjust_us", "q"),
            ("session_elapsed_us", "Q"),
        ),
    ),
    PLAN_CHUNK: (
        "PlanChunk",
        (("plan_id", "p"), ("total_length", "H"), ("offset", "H"), ("data", "d")),
    ),
    START: ("Start", (("plan_id", "p"), ("start_at_us", "Q"), ("session_id", "I"))),
    PAUSE: ("Pause", ()),
    RESUME: ("Resume", ()),
    STOP: ("Stop", ()),
    SKIP: ("Skip", ()),
    TIME_SYNC_REQUEST: ("TimeSyncRequest", (("host_send_us", "Q"),)),
    TIME_SYNC_RESPONSE: (
        "TimeSyncResponse",
        (("host_send_us", "Q"), ("band_receive_us", "Q"), ("band_send_us", "Q")),
    ),
    ADJUST: ("Adjust", (("delta_us", "i"),)),
    ACK: ("Ack", ()),
    NACK: ("Nack", (("code", "B"), ("detail", "s"))),
    EVENT_ACK: ("EventAck", (("event_number", "I"),)),
    CUE_FIRED: (
        "CueFired",
        _EVENT
        + (
            ("cue_id", "H"),
            ("kind", "B"),
            ("round", "B"),
            ("step_index", "b"),
            ("planned_us", "Q"),
            ("fired_us", "Q"),
        ),
    ),
    SESSION_STATE: (
        "SessionState",
        _EVENT
        + (
            ("state", "B"),
            ("round", "B"),
            ("step_index", "b"),
            ("shift_us", "q"),
            ("cause", "B"),
        ),
    ),
    HEART_RATE_SAMPLE: (
        "HeartRateSample",
        _EVENT + (("bpm", "H"), ("contact", "f"), ("rr_1024", "r")),
    ),
    BUTTON_PRESSED: ("ButtonPressed", _EVENT + (("button", "B"),)),
}

_RANGES = {
    "B": (0, 0xFF),
    "H": (0, 0xFFFF),
    "I": (0, 0xFFFFFFFF),
    "Q": (0, 0xFFFFFFFFFFFFFFFF),
    "b": (-0x80, 0x7F),
    "i": (-0x80000000, 0x7FFFFFFF),
    "q": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
}
_SIZES = {"B": 1, "H": 2, "I": 4, "Q": 8, "b": 1, "i": 4, "q": 8}


class ProtocolError(Exception):
    """Every error of this module. ``path`` names where in the bytes it was."""

    def __init__(self, message, path=""):
        super().__init__(message)
        self.path = path


class FrameError(ProtocolError):
    """Bytes that are not a frame, fragment, plan or message of this protocol."""


class UnsupportedVersionError(ProtocolError):
    """A sound frame of another protocol version."""


class EncodeError(ProtocolError):
    """A value this end tried to send does not fit its field."""


# -- CRC-16/CCITT-FALSE ----------------------------------------------------------------


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection; "123456789" -> 0x29B1."""
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


# -- message payloads --------------------------------------------------------------------


def _utf8(data, what):
    try:
        return str(data, "utf-8")
    except UnicodeError:
        raise FrameError("malformed " + what + ": text that is not UTF-8", what) from None


def decode_payload(message_type, payload):
    """The fields of a payload as a dict (bytes stay bytes); raises :class:`FrameError`."""
    name, fields = MESSAGES[message_type]
    out = {}
    pos = 0
    end = len(payload)
    for field, code in fields:
        size = _SIZES.get(code)
        if size is not None:
            if pos + size > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            out[field] = struct.unpack_from("<" + code, payload, pos)[0]
            pos += size
        elif code == "p":
            if pos + PLAN_ID_BYTES > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            out[field] = bytes(payload[pos : pos + PLAN_ID_BYTES])
            pos += PLAN_ID_BYTES
        elif code == "s":
            if pos >= end or pos + 1 + payload[pos] > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            n = payload[pos]
            out[field] = _utf8(bytes(payload[pos + 1 : pos + 1 + n]), name)
            pos += 1 + n
        elif code == "d":
            if pos + 2 > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            n = struct.unpack_from("<H", payload, pos)[0]
            if pos + 2 + n > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            if n > MAX_CHUNK_BYTES:
                raise FrameError("invalid " + name + ": more than 1024 data bytes", name)
            out[field] = bytes(payload[pos + 2 : pos + 2 + n])
            pos += 2 + n
        elif code == "f":
            if pos + 1 > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            out[field] = payload[pos] != 0
            pos += 1
        elif code == "r":
            if pos + 1 > end or pos + 1 + 2 * payload[pos] > end:
                raise FrameError("malformed " + name + ": " + field + " is cut short", name)
            n = payload[pos]
            if n > MAX_RR_INTERVALS:
                raise FrameError("invalid " + name + ": at most 32 RR intervals", name)
            out[field] = list(struct.unpack_from("<%dH" % n, payload, pos + 1))
            pos += 1 + 2 * n
    if pos != end:
        raise FrameError("malformed " + name + ": %d bytes left over" % (end - pos), name)
    return out


def _check_range(name, field, code, value):
    low, high = _RANGES[code]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EncodeError(name + "." + field + " out of range: " + repr(value))


def encode_payload(message_type, fields):
    """The payload of a message from its fields (a dict); raises :class:`EncodeError`."""
    name, layout = MESSAGES[message_type]
    parts = []
    for field, code in layout:
        value = fields[field]
        if code in _SIZES:
            _check_range(name, field, code, value)
            parts.append(struct.pack("<" + code, value))
        elif code == "p":
            if len(value) != PLAN_ID_BYTES:
                raise EncodeError(name + "." + field + " must be 8 bytes")
            parts.append(bytes(value))
        elif code == "s":
            raw = value.encode("utf-8")
            if len(raw) > 255:
                raise EncodeError(name + "." + field + " longer than 255 bytes")
            parts.append(bytes((len(raw),)) + raw)
        elif code == "d":
            if len(value) > MAX_CHUNK_BYTES:
                raise EncodeError(name + "." + field + " longer than 1024 bytes")
            parts.append(struct.pack("<H", len(value)) + bytes(value))
        elif code == "f":
            parts.append(b"\x01" if value else b"\x00")
        elif code == "r":
            if len(value) > MAX_RR_INTERVALS:
                raise EncodeError(name + "." + field + " holds more than 32 intervals")
            for rr in value:
                _check_range(name, field, "H", rr)
            parts.append(bytes((len(value),)) + struct.pack("<%dH" % len(value), *value))
    return b"".join(parts)


# -- frames ------------------------------------------------------------------------------


def encode_frame(message_type, fields, seq, flags=0):
    """One whole frame: header, payload, CRC (low byte first)."""
    if not 0 <= seq <= 0xFFFF or not 0 <= flags <= 0xFF:
        raise EncodeError("seq must be 0..65535 and flags 0..255")
    payload = encode_payload(message_type, fields)
    if len(payload) + FRAME_OVERHEAD > MAX_FRAME_BYTES:
        raise EncodeError("frame longer than 2048 bytes")
    body = struct.pack("<BBHBH", FRAME_VERSION, message_type, seq, flags, len(payload)) + payload
    return body + struct.pack("<H", crc16(body))


def check_envelope(data, check_version=True):
    """Raise unless ``data`` has a sound length and CRC (and, by default, our version)."""
    size = len(data)
    if size < FRAME_OVERHEAD:
        raise FrameError("frame of %d bytes is shorter than 9" % size)
    if size > MAX_FRAME_BYTES:
        raise FrameError("frame of %d bytes exceeds 2048" % size)
    length = data[5] | (data[6] << 8)
    if length != size - FRAME_OVERHEAD:
        raise FrameError("header says %d payload bytes" % length, "header.length")
    if crc16(data[: size - 2]) != data[size - 2] | (data[size - 1] << 8):
        raise FrameError("CRC mismatch: the frame was corrupted", "crc")
    if check_version and data[0] != FRAME_VERSION:
        raise UnsupportedVersionError(
            "frame version %d; this band speaks %d" % (data[0], FRAME_VERSION)
        )


def decode_header(data):
    """``(type, seq)`` of a frame whose length and CRC check, whatever its version."""
    check_envelope(data, False)
    return data[1], data[2] | (data[3] << 8)


def decode_frame(data):
    """``(type, seq, flags, fields)`` of one whole frame; raises only :class:`ProtocolError`."""
    data = bytes(data)
    check_envelope(data)
    message_type = data[1]
    if message_type not in MESSAGES:
        raise FrameError("unknown message type %d" % message_type, "header.type")
    fields = decode_payload(message_type, data[HEADER_BYTES:-2])
    return message_type, data[2] | (data[3] << 8), data[4], fields


# -- fragments ---------------------------------------------------------------------------


def fragment(frame, max_payload):
    """Split a frame into fragments of at most ``max_payload`` bytes (ATT MTU - 3)."""
    if not MIN_FRAGMENT_PAYLOAD <= max_payload <= MAX_FRAGMENT_PAYLOAD:
        raise EncodeError("fragment payload must be 20..514 (MTU 23..517)")
    size = max_payload - 1
    count = max(1, (len(frame) + size - 1) // size)
    out = []
    for i in range(count):
        head = (_FIRST if i == 0 else 0) | (_LAST if i == count - 1 else 0) | (i & _INDEX_MASK)
        out.append(bytes((head,)) + frame[i * size : (i + 1) * size])
    return out


class Reassembler:
    """Joins fragments into frames; a wrong fragment drops the partial frame."""

    def __init__(self, max_frame=MAX_FRAME_BYTES):
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._expected = None  # index of the next fragment; None between frames

    def reset(self):
        self._buffer = bytearray()
        self._expected = None

    def feed(self, data):
        """Take one fragment; return the whole frame after its last fragment, else None."""
        if not data:
            raise FrameError("empty fragment", "fragment")
        head = data[0]
        index = head & _INDEX_MASK
        if head & _FIRST:
            self._buffer = bytearray()
            self._expected = 0
        if self._expected is None:
            raise FrameError("fragment without a first fragment before it", "fragment")
        due = self._expected & _INDEX_MASK
        if index != due:
            self.reset()
            raise FrameError("fragment %d arrived where %d was due" % (index, due), "fragment")
        if len(self._buffer) + len(data) - 1 > self._max_frame:
            self.reset()
            raise FrameError("reassembled frame exceeds the limit", "fragment")
        self._buffer.extend(data[1:])
        self._expected += 1
        if head & _LAST:
            frame = bytes(self._buffer)
            self.reset()
            return frame
        return None


# -- plans -------------------------------------------------------------------------------
#
# A decoded plan is a Plan: name, rounds, round_rest_ms, countdown, steps (a list of
# Step) and patterns (a dict cue kind -> Pattern).


class Step:
    __slots__ = ("duration_ms", "kind", "name", "switch_side")

    def __init__(self, name, kind, duration_ms, switch_side):
        self.name = name
        self.kind = kind
        self.duration_ms = duration_ms
        self.switch_side = switch_side


class Pattern:
    """A vibration: ``pulses`` is a list of ``(on_ms, off_ms)`` at ``intensity`` 0..255."""

    __slots__ = ("cue", "intensity", "pulses")

    def __init__(self, cue, intensity, pulses):
        self.cue = cue
        self.intensity = intensity
        self.pulses = pulses

    def duration_ms(self):
        total = 0
        for on, off in self.pulses:
            total += on + off
        return total


class Plan:
    __slots__ = (
        "countdown",
        "name",
        "pattern_list",
        "patterns",
        "round_rest_ms",
        "rounds",
        "steps",
    )

    def __init__(self, name, rounds, round_rest_ms, countdown, steps, pattern_list):
        self.name = name
        self.rounds = rounds
        self.round_rest_ms = round_rest_ms
        self.countdown = countdown
        self.steps = steps
        self.pattern_list = pattern_list  # in plan order (for re-encoding)
        self.patterns = {}
        for pattern in pattern_list:
            if pattern.cue not in self.patterns:
                self.patterns[pattern.cue] = pattern

    def pattern_for(self, cue):
        pattern = self.patterns.get(cue)
        return pattern if pattern is not None else default_pattern(cue)


DEFAULT_PATTERNS = {
    CUE_COUNTDOWN: Pattern(CUE_COUNTDOWN, 160, [(120, 0)]),
    CUE_NEXT_EXERCISE: Pattern(CUE_NEXT_EXERCISE, 255, [(600, 0)]),
    CUE_SWITCH_SIDE: Pattern(CUE_SWITCH_SIDE, 220, [(150, 120), (150, 0)]),
    CUE_ROUND_DONE: Pattern(CUE_ROUND_DONE, 230, [(300, 150), (300, 150), (300, 0)]),
    CUE_WORKOUT_DONE: Pattern(CUE_WORKOUT_DONE, 255, [(600, 150), (200, 150), (600, 0)]),
    CUE_STOPPED: Pattern(CUE_STOPPED, 255, [(80, 60), (80, 60), (80, 60), (80, 60), (80, 0)]),
}


def default_pattern(cue):
    """The built-in pattern of ``cue``; a kind this firmware does not know: a long buzz."""
    pattern = DEFAULT_PATTERNS.get(cue)
    return pattern if pattern is not None else DEFAULT_PATTERNS[CUE_NEXT_EXERCISE]


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise FrameError("malformed plan: cut short", "plan")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def unpack(self, code):
        return struct.unpack("<" + code, self.take(_SIZES[code]))[0]

    def text(self):
        return _utf8(bytes(self.take(self.u8())), "plan")


def decode_plan(data):
    """A :class:`Plan` from its encoded bytes; raises only :class:`FrameError`."""
    r = _Reader(bytes(data))
    name = r.text()
    rounds = r.u8()
    round_rest_ms = r.unpack("I")
    countdown = r.u8()
    steps = []
    for _ in range(r.u8()):
        step_name = r.text()
        kind = r.u8()
        duration_ms = r.unpack("I")
        flags = r.u8()
        if duration_ms == 0:
            raise FrameError("invalid plan: a step of zero duration", "plan")
        steps.append(Step(step_name, kind, duration_ms, bool(flags & 0x01)))
    patterns = []
    for _ in range(r.u8()):
        cue = r.u8()
        intensity = r.u8()
        count = r.u8()
        if not 1 <= count <= 32:
            raise FrameError("invalid plan: a pattern needs 1 to 32 pulses", "plan")
        pulses = []
        for _ in range(count):
            pulses.append((r.unpack("H"), r.unpack("H")))
        patterns.append(Pattern(cue, intensity, pulses))
    if r.pos != len(r.data):
        raise FrameError("malformed plan: bytes after the last pattern", "plan")
    if rounds < 1:
        raise FrameError("invalid plan: rounds must be at least 1", "plan")
    if countdown > 5:
        raise FrameError("invalid plan: countdown must be 0 to 5", "plan")
    if not steps:
        raise FrameError("invalid plan: no steps", "plan")
    return Plan(name, rounds, round_rest_ms, countdown, steps, patterns)


def encode_plan(plan):
    """The bytes of a :class:`Plan` (the inverse of :func:`decode_plan`)."""

    def text(value):
        raw = value.encode("utf-8")
        return bytes((len(raw),)) + raw

    parts = [
        text(plan.name),
        struct.pack("<BIBB", plan.rounds, plan.round_rest_ms, plan.countdown, len(plan.steps)),
    ]
    for s in plan.steps:
        parts.append(text(s.name))
        parts.append(struct.pack("<BIB", s.kind, s.duration_ms, 1 if s.switch_side else 0))
    parts.append(bytes((len(plan.pattern_list),)))
    for p in plan.pattern_list:
        parts.append(struct.pack("<BBB", p.cue, p.intensity, len(p.pulses)))
        for on, off in p.pulses:
            parts.append(struct.pack("<HH", on, off))
    return b"".join(parts)


def plan_id(encoded):
    """First 8 bytes of SHA-256 of the encoded plan."""
    return hashlib.sha256(encoded).digest()[:PLAN_ID_BYTES]


# -- timeline ----------------------------------------------------------------------------
#
# cues: list of (cue_id, kind, round, step_index, offset_us), in time order;
# segments: list of (round, step_index, start_us, end_us); total_us.


class Timeline:
    __slots__ = ("cues", "segments", "total_us")

    def __init__(self, cues, segments, total_us):
        self.cues = cues
        self.segments = segments
        self.total_us = total_us

    def next_segment_start_after(self, elapsed_us):
        for segment in self.segments:
            if segment[2] > elapsed_us:
                return segment[2]
        return None


def _countdown(count, start, end, taken, out, round_number, step):
    for k in range(count, 0, -1):
        at = end - k * 1000000
        if at > start and at not in taken:
            out.append((at, len(out), CUE_COUNTDOWN, round_number, step))


def build_timeline(plan):
    """Every cue and segment of ``plan``: the rules are in PROTOCOL.md ("Timeline")."""
    cues = []  # (offset, insertion order, kind, round, step): the order keeps the sort stable
    segments = []
    t = 0
    last_step = len(plan.steps) - 1
    for round_number in range(1, plan.rounds + 1):
        for index in range(len(plan.steps)):
            step = plan.steps[index]
            start = t
            duration = step.duration_ms * 1000
            end = start + duration
            segments.append((round_number, index, start, end))
            cues.append((start, len(cues), CUE_NEXT_EXERCISE, round_number, index))
            taken = [start]
            if step.switch_side:
                half = start + duration // 2
                cues.append((half, len(cues), CUE_SWITCH_SIDE, round_number, index))
                taken.append(half)
            _countdown(plan.countdown, start, end, taken, cues, round_number, index)
            t = end
        if round_number < plan.rounds:
            cues.append((t, len(cues), CUE_ROUND_DONE, round_number, last_step))
            if plan.round_rest_ms:
                start = t
                end = t + plan.round_rest_ms * 1000
                segments.append((round_number, REST_STEP, start, end))
                _countdown(plan.countdown, start, end, [start], cues, round_number, REST_STEP)
                t = end
        else:
            cues.append((t, len(cues), CUE_WORKOUT_DONE, round_number, last_step))
    # MicroPython's sort is not stable: the insertion order breaks ties.
    cues.sort()
    planned = []
    for cue_id in range(len(cues)):
        at, _, kind, round_number, step = cues[cue_id]
        planned.append((cue_id, kind, round_number, step, at))
    return Timeline(planned, segments, t)


# -- Heart Rate Measurement (0x2A37) -----------------------------------------------------


def encode_hrs(bpm, contact=None, energy_kj=None, rr_1024=(), wide=False):
    """A 0x2A37 value. ``contact``: None (not supported), True or False (supported)."""
    flags = 0x01 if wide or bpm > 0xFF else 0
    if contact is not None:
        flags |= 0x04 | (0x02 if contact else 0)
    if energy_kj is not None:
        flags |= 0x08
    if rr_1024:
        flags |= 0x10
    out = bytes((flags,)) + (struct.pack("<H", bpm) if flags & 0x01 else bytes((bpm,)))
    if energy_kj is not None:
        out += struct.pack("<H", energy_kj)
    for rr in rr_1024:
        out += struct.pack("<H", rr)
    return out


def decode_hrs(data):
    """``(bpm, contact, energy_kj, rr_1024, wide)`` of a 0x2A37 value (contact as above)."""
    data = bytes(data)
    if not data:
        raise FrameError("empty Heart Rate Measurement", "hrs")
    flags = data[0]
    pos = 1
    wide = bool(flags & 0x01)
    if wide:
        if len(data) < 3:
            raise FrameError("heart rate cut short", "hrs")
        bpm = data[1] | (data[2] << 8)
        pos = 3
    else:
        if len(data) < 2:
            raise FrameError("heart rate cut short", "hrs")
        bpm = data[1]
        pos = 2
    energy = None
    if flags & 0x08:
        if len(data) < pos + 2:
            raise FrameError("energy expended cut short", "hrs")
        energy = data[pos] | (data[pos + 1] << 8)
        pos += 2
    rr = []
    if flags & 0x10:
        if (len(data) - pos) % 2:
            raise FrameError("an odd byte after the RR intervals", "hrs")
        while pos < len(data):
            rr.append(data[pos] | (data[pos + 1] << 8))
            pos += 2
    if pos != len(data):
        raise FrameError("bytes after the last field", "hrs")
    contact = bool(flags & 0x02) if flags & 0x04 else None
    return bpm, contact, energy, rr, wide
