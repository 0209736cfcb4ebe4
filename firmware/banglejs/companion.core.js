/* The companion band protocol for Espruino (Bangle.js): frames, CRC, fragments, plan,
 * timeline, Heart Rate Measurement and the band state machine, sans-I/O.
 *
 * Written for Espruino's JavaScript: no BigInt (64-bit fields are doubles, exact to
 * 2**53, which holds any microsecond time a band reaches), Uint8Array and DataView for
 * bytes, no classes or arrow functions. It is a module: on the watch it is the Storage
 * file "companioncore" (require("companioncore")); under node, require() it.
 * Every byte layout is a row of MESSAGES, in wire order; the behaviour is that of the
 * reference band (firmware_protocol/band.py), rule for rule. PROTOCOL.md and the golden
 * vectors beside it are the specification and the test.
 */

var FRAME_VERSION = 1;
var PROTOCOL_VERSION = 2;
var FRAME_OVERHEAD = 9;
var MAX_FRAME_BYTES = 2048;
var MAX_CHUNK_BYTES = 1024;
var MAX_RR = 32;
var TWO32 = 4294967296;

var T = {
  HELLO: 1, CAPABILITIES: 2, PLAN_CHUNK: 3, START: 4, PAUSE: 5, RESUME: 6, STOP: 7,
  SKIP: 8, TIME_SYNC_REQUEST: 9, TIME_SYNC_RESPONSE: 10, ADJUST: 11, ACK: 16, NACK: 17,
  EVENT_ACK: 18, CUE_FIRED: 32, SESSION_STATE: 33, HEART_RATE_SAMPLE: 34, BUTTON_PRESSED: 35
};
var COMMANDS = [1, 3, 4, 5, 6, 7, 8, 9, 11];
var CUE = { NEXT_EXERCISE: 1, SWITCH_SIDE: 2, COUNTDOWN: 3, ROUND_DONE: 4, WORKOUT_DONE: 5, STOPPED: 6 };
var BUTTON = { STOP: 1, PAIN: 2, SKIP: 3 };
var S = { IDLE: 0, RUNNING: 1, PAUSED: 2, ROUND_REST: 3, DONE: 4, STOPPED: 5 };
var CAUSE = { NONE: 0, BUTTON: 1, PAIN: 2, HOST: 3 };
var NACK = {
  MALFORMED: 1, UNSUPPORTED_VERSION: 2, NO_PLAN: 3, PLAN_TOO_LARGE: 4, PLAN_MISMATCH: 5,
  BAD_STATE: 6, UNKNOWN_COMMAND: 7, BUSY: 8, OUT_OF_RANGE: 9
};
var STOPPED_CUE_ID = 0xFFFF;
var REST_STEP = -1;

/* Field codes: B H I Q (u8 u16 u32 u64), b i q (i8 i32 i64), s str, p plan id (8 bytes),
 * d bytes (u16 length), f flag, r RR intervals (u8 count, u16 each). */
var EVENT = [["event_number", "I"], ["session_id", "I"], ["band_time_us", "Q"]];
var MESSAGES = {};
MESSAGES[1] = ["Hello", [["min_version", "B"], ["max_version", "B"]]];
MESSAGES[2] = ["Capabilities", [
  ["protocol_version", "B"], ["firmware_version", "s"], ["mtu", "H"], ["max_plan_bytes", "H"],
  ["max_steps", "B"], ["max_name_length", "B"], ["event_buffer", "H"], ["motor", "B"],
  ["plan_id", "p"], ["band_time_us", "Q"], ["boot_id", "I"], ["first_unacked_event", "I"],
  ["session_id", "I"], ["session_state", "B"], ["session_round", "B"], ["session_step", "b"],
  ["session_start_us", "Q"], ["session_shift_us", "q"], ["session_adjust_us", "q"],
  ["session_elapsed_us", "Q"]]];
MESSAGES[3] = ["PlanChunk", [["plan_id", "p"], ["total_length", "H"], ["offset", "H"], ["data", "d"]]];
MESSAGES[4] = ["Start", [["plan_id", "p"], ["start_at_us", "Q"], ["session_id", "I"]]];
MESSAGES[5] = ["Pause", []];
MESSAGES[6] = ["Resume", []];
MESSAGES[7] = ["Stop", []];
MESSAGES[8] = ["Skip", []];
MESSAGES[9] = ["TimeSyncRequest", [["host_send_us", "Q"]]];
MESSAGES[10] = ["TimeSyncResponse", [["host_send_us", "Q"], ["band_receive_us", "Q"], ["band_send_us", "Q"]]];
MESSAGES[11] = ["Adjust", [["delta_us", "i"]]];
MESSAGES[16] = ["Ack", []];
MESSAGES[17] = ["Nack", [["code", "B"], ["detail", "s"]]];
MESSAGES[18] = ["EventAck", [["event_number", "I"]]];
MESSAGES[32] = ["CueFired", EVENT.concat([["cue_id", "H"], ["kind", "B"], ["round", "B"],
  ["step_index", "b"], ["planned_us", "Q"], ["fired_us", "Q"]])];
MESSAGES[33] = ["SessionState", EVENT.concat([["state", "B"], ["round", "B"], ["step_index", "b"],
  ["shift_us", "q"], ["cause", "B"]])];
MESSAGES[34] = ["HeartRateSample", EVENT.concat([["bpm", "H"], ["contact", "f"], ["rr_1024", "r"]])];
MESSAGES[35] = ["ButtonPressed", EVENT.concat([["button", "B"]])];

var SIZES = { B: 1, H: 2, I: 4, Q: 8, b: 1, i: 4, q: 8 };
var RANGES = {
  B: [0, 0xFF], H: [0, 0xFFFF], I: [0, 0xFFFFFFFF], Q: [0, 18446744073709551615],
  b: [-128, 127], i: [-2147483648, 2147483647], q: [-9223372036854775808, 9223372036854775807]
};

function ProtocolError(kind, message, path) {
  this.kind = kind; // "FrameError", "UnsupportedVersionError" or "EncodeError"
  this.message = message;
  this.path = path || "";
}
ProtocolError.prototype.toString = function () { return this.kind + ": " + this.message; };
function frameError(message, path) { return new ProtocolError("FrameError", message, path); }

/* -- bytes --------------------------------------------------------------------------- */

function concat(parts) {
  var n = 0, i;
  for (i = 0; i < parts.length; i++) n += parts[i].length;
  var out = new Uint8Array(n), at = 0;
  for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
  return out;
}

/* A copy of bytes[start:end] (Espruino's typed arrays have subarray, not always slice). */
function copy(bytes, start, end) { return new Uint8Array(bytes.subarray(start, end)); }

function equalBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function utf8Encode(text) {
  var out = [];
  for (var i = 0; i < text.length; i++) {
    var c = text.charCodeAt(i);
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < text.length) {
      var d = text.charCodeAt(i + 1);
      if (d >= 0xDC00 && d < 0xE000) { c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00); i++; }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xC0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xE0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xF0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

function utf8Decode(bytes, what) {
  var out = "", i = 0;
  function bad() { return frameError("malformed " + what + ": text that is not UTF-8", what); }
  while (i < bytes.length) {
    var c = bytes[i], n, min;
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue; }
    if (c >= 0xC2 && c < 0xE0) { n = 1; c &= 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c < 0xF0) { n = 2; c &= 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c < 0xF5) { n = 3; c &= 0x07; min = 0x10000; }
    else throw bad();
    if (i + n >= bytes.length) throw bad();
    for (var k = 1; k <= n; k++) {
      var x = bytes[i + k];
      if ((x & 0xC0) !== 0x80) throw bad();
      c = (c << 6) | (x & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) throw bad();
    if (c >= 0x10000) {
      c -= 0x10000;
      out += String.fromCharCode(0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
    } else out += String.fromCharCode(c);
    i += n + 1;
  }
  return out;
}

/* -- CRC-16/CCITT-FALSE ------------------------------------------------------------------ */

var CRC_TABLE = (function () {
  var table = new Uint16Array(256);
  for (var byte = 0; byte < 256; byte++) {
    var crc = byte << 8;
    for (var k = 0; k < 8; k++) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
    table[byte] = crc & 0xFFFF;
  }
  return table;
})();

function crc16(data, length) {
  var crc = 0xFFFF, n = length === undefined ? data.length : length;
  for (var i = 0; i < n; i++) crc = ((crc << 8) & 0xFFFF) ^ CRC_TABLE[((crc >> 8) ^ data[i]) & 0xFF];
  return crc;
}

/* -- payloads ------------------------------------------------------------------------------ */

function getInt(view, pos, code) {
  switch (code) {
    case "B": return view.getUint8(pos);
    case "H": return view.getUint16(pos, true);
    case "I": return view.getUint32(pos, true);
    case "Q": return view.getUint32(pos + 4, true) * TWO32 + view.getUint32(pos, true);
    case "b": return view.getInt8(pos);
    case "i": return view.getInt32(pos, true);
    case "q": return view.getInt32(pos + 4, true) * TWO32 + view.getUint32(pos, true);
  }
}

function putInt(view, pos, code, value) {
  var hi;
  switch (code) {
    case "B": view.setUint8(pos, value); break;
    case "H": view.setUint16(pos, value, true); break;
    case "I": view.setUint32(pos, value, true); break;
    case "b": view.setInt8(pos, value); break;
    case "i": view.setInt32(pos, value, true); break;
    case "Q": case "q":
      hi = Math.floor(value / TWO32);
      view.setUint32(pos, value - hi * TWO32, true);
      view.setInt32(pos + 4, hi | 0, true);
      break;
  }
}

function decodePayload(type, payload) {
  var spec = MESSAGES[type], name = spec[0], fields = spec[1], out = {};
  var view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  var pos = 0, end = payload.length;
  function short(field) { return frameError("malformed " + name + ": " + field + " is cut short", name); }
  for (var i = 0; i < fields.length; i++) {
    var field = fields[i][0], code = fields[i][1], n, k;
    if (SIZES[code]) {
      if (pos + SIZES[code] > end) throw short(field);
      out[field] = getInt(view, pos, code);
      pos += SIZES[code];
    } else if (code === "p") {
      if (pos + 8 > end) throw short(field);
      out[field] = copy(payload, pos, pos + 8);
      pos += 8;
    } else if (code === "s") {
      if (pos >= end || pos + 1 + payload[pos] > end) throw short(field);
      n = payload[pos];
      out[field] = utf8Decode(payload.subarray(pos + 1, pos + 1 + n), name);
      pos += 1 + n;
    } else if (code === "d") {
      if (pos + 2 > end) throw short(field);
      n = view.getUint16(pos, true);
      if (pos + 2 + n > end) throw short(field);
      if (n > MAX_CHUNK_BYTES) throw frameError("invalid " + name + ": more than 1024 data bytes", name);
      out[field] = copy(payload, pos + 2, pos + 2 + n);
      pos += 2 + n;
    } else if (code === "f") {
      if (pos + 1 > end) throw short(field);
      out[field] = payload[pos] !== 0;
      pos += 1;
    } else if (code === "r") {
      if (pos + 1 > end || pos + 1 + 2 * payload[pos] > end) throw short(field);
      n = payload[pos];
      if (n > MAX_RR) throw frameError("invalid " + name + ": at most 32 RR intervals", name);
      var rr = [];
      for (k = 0; k < n; k++) rr.push(view.getUint16(pos + 1 + 2 * k, true));
      out[field] = rr;
      pos += 1 + 2 * n;
    }
  }
  if (pos !== end) throw frameError("malformed " + name + ": " + (end - pos) + " bytes left over", name);
  return out;
}

function checkRange(name, field, code, value) {
  var r = RANGES[code];
  if (typeof value !== "number" || Math.floor(value) !== value || value < r[0] || value > r[1]) {
    throw new ProtocolError("EncodeError", name + "." + field + " out of range: " + value);
  }
}

function encodePayload(type, values) {
  var spec = MESSAGES[type], name = spec[0], fields = spec[1], parts = [];
  for (var i = 0; i < fields.length; i++) {
    var field = fields[i][0], code = fields[i][1], value = values[field], part, view, k;
    if (SIZES[code]) {
      checkRange(name, field, code, value);
      part = new Uint8Array(SIZES[code]);
      putInt(new DataView(part.buffer), 0, code, value);
    } else if (code === "p") {
      if (value.length !== 8) throw new ProtocolError("EncodeError", name + "." + field + " must be 8 bytes");
      part = new Uint8Array(value);
    } else if (code === "s") {
      var raw = utf8Encode(value);
      if (raw.length > 255) throw new ProtocolError("EncodeError", name + "." + field + " too long");
      part = concat([new Uint8Array([raw.length]), raw]);
    } else if (code === "d") {
      if (value.length > MAX_CHUNK_BYTES) throw new ProtocolError("EncodeError", name + "." + field + " too long");
      part = new Uint8Array(2 + value.length);
      new DataView(part.buffer).setUint16(0, value.length, true);
      part.set(value, 2);
    } else if (code === "f") {
      part = new Uint8Array([value ? 1 : 0]);
    } else if (code === "r") {
      if (value.length > MAX_RR) throw new ProtocolError("EncodeError", name + "." + field + " holds more than 32");
      part = new Uint8Array(1 + 2 * value.length);
      view = new DataView(part.buffer);
      part[0] = value.length;
      for (k = 0; k < value.length; k++) {
        checkRange(name, field, "H", value[k]);
        view.setUint16(1 + 2 * k, value[k], true);
      }
    }
    parts.push(part);
  }
  return concat(parts);
}

/* -- frames -------------------------------------------------------------------------------- */

function encodeFrame(type, values, seq, flags) {
  flags = flags || 0;
  if (!(seq >= 0 && seq <= 0xFFFF) || !(flags >= 0 && flags <= 0xFF)) {
    throw new ProtocolError("EncodeError", "seq must be 0..65535 and flags 0..255");
  }
  var payload = encodePayload(type, values);
  if (payload.length + FRAME_OVERHEAD > MAX_FRAME_BYTES) throw new ProtocolError("EncodeError", "frame too long");
  var frame = new Uint8Array(payload.length + FRAME_OVERHEAD);
  var view = new DataView(frame.buffer);
  frame[0] = FRAME_VERSION;
  frame[1] = type;
  view.setUint16(2, seq, true);
  frame[4] = flags;
  view.setUint16(5, payload.length, true);
  frame.set(payload, 7);
  view.setUint16(7 + payload.length, crc16(frame, 7 + payload.length), true);
  return frame;
}

function checkEnvelope(data, checkVersion) {
  var size = data.length;
  if (size < FRAME_OVERHEAD) throw frameError("frame of " + size + " bytes is shorter than 9");
  if (size > MAX_FRAME_BYTES) throw frameError("frame of " + size + " bytes exceeds 2048");
  var length = data[5] | (data[6] << 8);
  if (length !== size - FRAME_OVERHEAD) throw frameError("header says " + length + " payload bytes", "header.length");
  if (crc16(data, size - 2) !== (data[size - 2] | (data[size - 1] << 8))) {
    throw frameError("CRC mismatch: the frame was corrupted", "crc");
  }
  if (checkVersion && data[0] !== FRAME_VERSION) {
    throw new ProtocolError("UnsupportedVersionError", "frame version " + data[0] + "; this band speaks " + FRAME_VERSION);
  }
}

function decodeHeader(data) {
  checkEnvelope(data, false);
  return { type: data[1], seq: data[2] | (data[3] << 8) };
}

function decodeFrame(data) {
  checkEnvelope(data, true);
  var type = data[1];
  if (!MESSAGES[type]) throw frameError("unknown message type " + type, "header.type");
  var fields = decodePayload(type, data.subarray(7, data.length - 2));
  return { type: type, seq: data[2] | (data[3] << 8), flags: data[4], fields: fields };
}

/* -- fragments ----------------------------------------------------------------------------- */

function fragment(frame, maxPayload) {
  if (!(maxPayload >= 20 && maxPayload <= 514)) throw new ProtocolError("EncodeError", "fragment payload must be 20..514");
  var size = maxPayload - 1, count = Math.max(1, Math.ceil(frame.length / size)), out = [];
  for (var i = 0; i < count; i++) {
    var piece = frame.subarray(i * size, Math.min(frame.length, (i + 1) * size));
    var f = new Uint8Array(piece.length + 1);
    f[0] = (i === 0 ? 0x80 : 0) | (i === count - 1 ? 0x40 : 0) | (i & 0x3F);
    f.set(piece, 1);
    out.push(f);
  }
  return out;
}

function Reassembler() { this.reset(); }
Reassembler.prototype.reset = function () { this.parts = []; this.size = 0; this.expected = -1; };
Reassembler.prototype.feed = function (data) {
  if (!data.length) throw frameError("empty fragment", "fragment");
  var head = data[0], index = head & 0x3F;
  if (head & 0x80) { this.parts = []; this.size = 0; this.expected = 0; }
  if (this.expected < 0) throw frameError("fragment without a first fragment before it", "fragment");
  var due = this.expected & 0x3F;
  if (index !== due) { this.reset(); throw frameError("fragment " + index + " arrived where " + due + " was due", "fragment"); }
  if (this.size + data.length - 1 > MAX_FRAME_BYTES) { this.reset(); throw frameError("reassembled frame too long", "fragment"); }
  this.parts.push(copy(data, 1, data.length));
  this.size += data.length - 1;
  this.expected++;
  if (head & 0x40) { var frame = concat(this.parts); this.reset(); return frame; }
  return null;
};

/* -- plans --------------------------------------------------------------------------------- */

var DEFAULT_PATTERNS = {};
DEFAULT_PATTERNS[3] = { cue: 3, intensity: 160, pulses: [[120, 0]] };
DEFAULT_PATTERNS[1] = { cue: 1, intensity: 255, pulses: [[600, 0]] };
DEFAULT_PATTERNS[2] = { cue: 2, intensity: 220, pulses: [[150, 120], [150, 0]] };
DEFAULT_PATTERNS[4] = { cue: 4, intensity: 230, pulses: [[300, 150], [300, 150], [300, 0]] };
DEFAULT_PATTERNS[5] = { cue: 5, intensity: 255, pulses: [[600, 150], [200, 150], [600, 0]] };
DEFAULT_PATTERNS[6] = { cue: 6, intensity: 255, pulses: [[80, 60], [80, 60], [80, 60], [80, 60], [80, 0]] };

function defaultPattern(cue) { return DEFAULT_PATTERNS[cue] || DEFAULT_PATTERNS[1]; }

function patternFor(plan, cue) {
  for (var i = 0; i < plan.patterns.length; i++) if (plan.patterns[i].cue === cue) return plan.patterns[i];
  return defaultPattern(cue);
}

function decodePlan(data) {
  var view = new DataView(data.buffer, data.byteOffset, data.length), pos = 0;
  function need(n) { if (pos + n > data.length) throw frameError("malformed plan: cut short", "plan"); }
  function u8() { need(1); return data[pos++]; }
  function u16() { need(2); pos += 2; return view.getUint16(pos - 2, true); }
  function u32() { need(4); pos += 4; return view.getUint32(pos - 4, true); }
  function text() { var n = u8(); need(n); pos += n; return utf8Decode(data.subarray(pos - n, pos), "plan"); }
  var plan = { name: text(), rounds: u8(), round_rest_ms: u32(), countdown: u8(), steps: [], patterns: [] };
  var count = u8(), i, k;
  for (i = 0; i < count; i++) {
    var step = { name: text(), kind: u8(), duration_ms: u32(), switch_side: (u8() & 1) === 1 };
    if (step.duration_ms === 0) throw frameError("invalid plan: a step of zero duration", "plan");
    plan.steps.push(step);
  }
  count = u8();
  for (i = 0; i < count; i++) {
    var pattern = { cue: u8(), intensity: u8(), pulses: [] }, pulses = u8();
    if (pulses < 1 || pulses > 32) throw frameError("invalid plan: a pattern needs 1 to 32 pulses", "plan");
    for (k = 0; k < pulses; k++) pattern.pulses.push([u16(), u16()]);
    plan.patterns.push(pattern);
  }
  if (pos !== data.length) throw frameError("malformed plan: bytes after the last pattern", "plan");
  if (plan.rounds < 1) throw frameError("invalid plan: rounds must be at least 1", "plan");
  if (plan.countdown > 5) throw frameError("invalid plan: countdown must be 0 to 5", "plan");
  if (!plan.steps.length) throw frameError("invalid plan: no steps", "plan");
  return plan;
}

function encodePlan(plan) {
  var parts = [];
  function u8(v) { parts.push(new Uint8Array([v])); }
  function u16(v) { var b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v, true); parts.push(b); }
  function u32(v) { var b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); parts.push(b); }
  function text(v) { var raw = utf8Encode(v); u8(raw.length); parts.push(raw); }
  text(plan.name); u8(plan.rounds); u32(plan.round_rest_ms); u8(plan.countdown); u8(plan.steps.length);
  plan.steps.forEach(function (s) { text(s.name); u8(s.kind); u32(s.duration_ms); u8(s.switch_side ? 1 : 0); });
  u8(plan.patterns.length);
  plan.patterns.forEach(function (p) {
    u8(p.cue); u8(p.intensity); u8(p.pulses.length);
    p.pulses.forEach(function (u) { u16(u[0]); u16(u[1]); });
  });
  return concat(parts);
}

/* SHA-256 (plan ids), by hand: Espruino builds differ in their crypto module. */
var SHA_K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];

function sha256(data) {
  var n = data.length, blocks = Math.ceil((n + 9) / 64), msg = new Uint8Array(blocks * 64);
  msg.set(data); msg[n] = 0x80;
  var mv = new DataView(msg.buffer);
  mv.setUint32(msg.length - 8, Math.floor(n / 0x20000000), false);
  mv.setUint32(msg.length - 4, (n * 8) >>> 0, false);
  var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  var w = new Array(64), i, j;
  function rot(x, r) { return (x >>> r) | (x << (32 - r)); }
  for (i = 0; i < blocks; i++) {
    for (j = 0; j < 16; j++) w[j] = mv.getUint32(i * 64 + j * 4, false);
    for (j = 16; j < 64; j++) {
      var s0 = rot(w[j - 15], 7) ^ rot(w[j - 15], 18) ^ (w[j - 15] >>> 3);
      var s1 = rot(w[j - 2], 17) ^ rot(w[j - 2], 19) ^ (w[j - 2] >>> 10);
      w[j] = (w[j - 16] + s0 + w[j - 7] + s1) | 0;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (j = 0; j < 64; j++) {
      var t1 = (hh + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[j] + w[j]) | 0;
      var t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  }
  var out = new Uint8Array(32), ov = new DataView(out.buffer);
  for (i = 0; i < 8; i++) ov.setUint32(i * 4, h[i] >>> 0, false);
  return out;
}

function planId(data) { return copy(sha256(data), 0, 8); }

/* -- timeline: cues [cue_id, kind, round, step, offset_us], segments [round, step, start, end] */

function countdown(count, start, end, taken, cues, round, step) {
  for (var k = count; k > 0; k--) {
    var at = end - k * 1000000;
    if (at > start && taken.indexOf(at) < 0) cues.push([at, cues.length, CUE.COUNTDOWN, round, step]);
  }
}

function buildTimeline(plan) {
  var cues = [], segments = [], t = 0, last = plan.steps.length - 1, r, i;
  for (r = 1; r <= plan.rounds; r++) {
    for (i = 0; i < plan.steps.length; i++) {
      var step = plan.steps[i], start = t, duration = step.duration_ms * 1000, end = start + duration;
      segments.push([r, i, start, end]);
      cues.push([start, cues.length, CUE.NEXT_EXERCISE, r, i]);
      var taken = [start];
      if (step.switch_side) {
        var half = start + Math.floor(duration / 2);
        cues.push([half, cues.length, CUE.SWITCH_SIDE, r, i]);
        taken.push(half);
      }
      countdown(plan.countdown, start, end, taken, cues, r, i);
      t = end;
    }
    if (r < plan.rounds) {
      cues.push([t, cues.length, CUE.ROUND_DONE, r, last]);
      if (plan.round_rest_ms) {
        var rs = t, re = t + plan.round_rest_ms * 1000;
        segments.push([r, REST_STEP, rs, re]);
        countdown(plan.countdown, rs, re, [rs], cues, r, REST_STEP);
        t = re;
      }
    } else {
      cues.push([t, cues.length, CUE.WORKOUT_DONE, r, last]);
    }
  }
  cues.sort(function (x, y) { return x[0] - y[0] || x[1] - y[1]; }); // stable by insertion
  var planned = cues.map(function (c, id) { return [id, c[2], c[3], c[4], c[0]]; });
  return { cues: planned, segments: segments, total_us: t };
}

function nextSegmentStartAfter(timeline, elapsed) {
  for (var i = 0; i < timeline.segments.length; i++) if (timeline.segments[i][2] > elapsed) return timeline.segments[i][2];
  return null;
}

/* -- Heart Rate Measurement (0x2A37); contact: null (not supported), true, false ------------- */

function encodeHrs(bpm, contact, energy, rr, wide) {
  var flags = (wide || bpm > 255) ? 1 : 0, parts = [];
  if (contact !== null && contact !== undefined) flags |= 0x04 | (contact ? 0x02 : 0);
  if (energy !== null && energy !== undefined) flags |= 0x08;
  if (rr && rr.length) flags |= 0x10;
  parts.push(new Uint8Array([flags]));
  parts.push(flags & 1 ? new Uint8Array([bpm & 255, bpm >> 8]) : new Uint8Array([bpm]));
  if (flags & 0x08) parts.push(new Uint8Array([energy & 255, energy >> 8]));
  (rr || []).forEach(function (x) { parts.push(new Uint8Array([x & 255, x >> 8])); });
  return concat(parts);
}

function decodeHrs(data) {
  if (!data.length) throw frameError("empty Heart Rate Measurement", "hrs");
  var flags = data[0], wide = (flags & 1) === 1, pos = wide ? 3 : 2, bpm, energy = null, rr = [];
  if (data.length < pos) throw frameError("heart rate cut short", "hrs");
  bpm = wide ? data[1] | (data[2] << 8) : data[1];
  if (flags & 0x08) {
    if (data.length < pos + 2) throw frameError("energy expended cut short", "hrs");
    energy = data[pos] | (data[pos + 1] << 8); pos += 2;
  }
  if (flags & 0x10) {
    if ((data.length - pos) % 2) throw frameError("an odd byte after the RR intervals", "hrs");
    for (; pos < data.length; pos += 2) rr.push(data[pos] | (data[pos + 1] << 8));
  }
  if (pos !== data.length) throw frameError("bytes after the last field", "hrs");
  return { bpm: bpm, contact: (flags & 0x04) ? (flags & 0x02) !== 0 : null, energy_kj: energy, rr_1024: rr, wide: wide };
}

/* -- the band state machine ------------------------------------------------------------------ */

var MAX_BAND_TIME_US = 4611686018427387903; // 2**62 - 1 (rounded: a double)
var MAX_START_LEAD_US = 3600000000;
var MAX_START_LATE_US = 60000000;
var ACTIVE = [S.RUNNING, S.ROUND_REST];
var LIVE = [S.RUNNING, S.ROUND_REST, S.PAUSED];
var SAME = -1;

function moving() {
  return { pause: S.PAUSED, skip: SAME, adjust: SAME, exercise: S.RUNNING, rest: S.ROUND_REST, finish: S.DONE, stop: S.STOPPED };
}
var TRANSITIONS = {};
TRANSITIONS[S.IDLE] = { start: S.RUNNING };
TRANSITIONS[S.RUNNING] = moving();
TRANSITIONS[S.ROUND_REST] = moving();
TRANSITIONS[S.PAUSED] = { resume_exercise: S.RUNNING, resume_rest: S.ROUND_REST, skip: SAME, adjust: SAME, stop: S.STOPPED };
TRANSITIONS[S.DONE] = { start: S.RUNNING };
TRANSITIONS[S.STOPPED] = { start: S.RUNNING };

function transition(state, trigger) {
  var moves = TRANSITIONS[state];
  if (!moves || moves[trigger] === undefined) return null;
  return moves[trigger] === SAME ? state : moves[trigger];
}

function isIn(value, list) { return list.indexOf(value) >= 0; }
var NO_PLAN_ID = new Uint8Array(8);
function ack() { return [T.ACK, {}]; }
function nack(code, detail) { return [T.NACK, { code: code, detail: detail }]; }

function Band(options) {
  options = options || {};
  this.info = {
    firmware_version: options.firmware_version || "1.0.0-bangle",
    max_plan_bytes: options.max_plan_bytes || 4096,
    max_steps: options.max_steps || 64,
    max_name_length: options.max_name_length || 32,
    motor: options.motor === undefined ? 3 : options.motor
  };
  this.ringSize = options.ring_size || 256;
  this.retransmitUs = options.retransmit_us || 400000;
  this.bootId = options.boot_id === undefined ? 1 : options.boot_id;
  this.errors = 0;
  this.eventsLost = 0;
  this.resetMemory();
}

Band.prototype.resetMemory = function () {
  this.mtu = 23; this.connected = false; this.reassembler = new Reassembler();
  this.outgoing = []; this.motor = []; this.ring = []; this.nextEvent = 1;
  this.lastSeq = null; this.helloSeq = null; this.lastReply = null;
  this.uploadId = null; this.upload = null; this.uploadLength = 0;
  this.plan = null; this.planId = null; this.timeline = null; this.run = null;
  this.state = S.IDLE; this.round = 0; this.stepIndex = REST_STEP;
};

Band.prototype.sessionId = function () {
  return this.run && isIn(this.state, LIVE) ? this.run.session_id : 0;
};

Band.prototype.move = function (trigger) {
  var target = transition(this.state, trigger);
  if (target === null) return false;
  this.state = target;
  return true;
};

Band.prototype.connectionMade = function (mtu, now) {
  this.mtu = mtu; this.connected = true; this.reassembler.reset();
  this.sendUnacked(now, false);
};
Band.prototype.connectionLost = function () {
  this.connected = false; this.outgoing = []; this.reassembler.reset();
  this.ring.forEach(function (e) { e.sent = null; });
};
Band.prototype.setMtu = function (mtu) { this.mtu = mtu; };
Band.prototype.reboot = function () { this.bootId = (this.bootId + 1) % TWO32; this.resetMemory(); };

Band.prototype.receiveData = function (data, now) {
  var frame, decoded;
  try { frame = this.reassembler.feed(data); } catch (e) { if (!(e instanceof ProtocolError)) throw e; this.errors++; return; }
  if (frame === null) return;
  try { decoded = decodeFrame(frame); } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    this.errors++; this.nackUndecodable(frame, e); return;
  }
  var type = decoded.type, seq = decoded.seq;
  if (type === T.EVENT_ACK) { this.onEventAck(decoded.fields.event_number); return; }
  if (COMMANDS.indexOf(type) < 0) {
    this.errors++;
    this.reply(seq, nack(NACK.UNKNOWN_COMMAND, MESSAGES[type][0]));
    return;
  }
  if (this.isDuplicate(seq, type === T.HELLO)) return;
  if (type === T.HELLO) this.helloSeq = seq;
  this.lastSeq = seq;
  this.reply(seq, this.apply(type, decoded.fields, now));
  // HELLO's answer names the oldest event kept as the next one: it follows at once,
  // before a full ring can drop it for a newer one.
  if (type === T.HELLO) this.sendUnacked(now, false);
  this.tick(now);
};

Band.prototype.tick = function (now) {
  if (this.run && isIn(this.state, ACTIVE)) this.advance(this.run, now);
  this.sendUnacked(now, true);
};

Band.prototype.pressButton = function (button, now) {
  this.emit(T.BUTTON_PRESSED, { band_time_us: now, button: button }, now);
  if (button === BUTTON.STOP) this.stop(CAUSE.BUTTON, now);
  else if (button === BUTTON.PAIN) this.stop(CAUSE.PAIN, now);
  else if (button === BUTTON.SKIP) this.skip(now);
};

Band.prototype.recordHeartRate = function (bpm, rr, contact, now) {
  this.emit(T.HEART_RATE_SAMPLE, { band_time_us: now, bpm: bpm, contact: !!contact, rr_1024: rr }, now);
};

Band.prototype.dataToSend = function () { var out = this.outgoing; this.outgoing = []; return out; };
/* [cue_id, kind, pattern, at_us] for each pattern to play */
Band.prototype.motorActions = function () { var out = this.motor; this.motor = []; return out; };

Band.prototype.nextDeadline = function () {
  var best = null, run = this.run, tl = this.timeline, self = this;
  if (run && tl && isIn(this.state, ACTIVE)) {
    var up = tl.total_us;
    if (run.next_cue < tl.cues.length) up = Math.min(up, tl.cues[run.next_cue][4]);
    if (run.next_segment < tl.segments.length) up = Math.min(up, tl.segments[run.next_segment][2]);
    best = this.bandTimeOf(run, up);
  }
  if (this.connected) {
    this.ring.forEach(function (e) {
      if (e.sent !== null && (best === null || e.sent + self.retransmitUs < best)) best = e.sent + self.retransmitUs;
    });
  }
  return best;
};

Band.prototype.firstUnackedEvent = function () { return this.ring.length ? this.ring[0].number : this.nextEvent; };
Band.prototype.elapsed = function (run, now) { return now - run.start_us - run.shift_us - run.adjust_us; };
Band.prototype.bandTimeOf = function (run, offset) { return run.start_us + run.shift_us + run.adjust_us + offset; };

Band.prototype.isDuplicate = function (seq, hello) {
  var last = this.lastSeq;
  if (last === null) return false;
  if (seq === last) {
    if (this.lastReply && this.connected) this.outgoing = this.outgoing.concat(fragment(this.lastReply, this.mtu - 3));
    return true;
  }
  if (hello) return seq === this.helloSeq;
  var behind = ((last - seq) % 0x10000 + 0x10000) % 0x10000;
  return behind > 0 && behind < 0x8000;
};

Band.prototype.apply = function (type, f, now) {
  switch (type) {
    case T.HELLO: return this.hello(f, now);
    case T.TIME_SYNC_REQUEST:
      return [T.TIME_SYNC_RESPONSE, { host_send_us: f.host_send_us, band_receive_us: now, band_send_us: now }];
    case T.PLAN_CHUNK: return this.planChunk(f);
    case T.START: return this.start(f, now);
    case T.PAUSE: return this.pause(now);
    case T.RESUME: return this.resume(now);
    case T.SKIP: return this.skip(now) ? ack() : nack(NACK.BAD_STATE, "no session is running");
    case T.STOP: return this.stop(CAUSE.HOST, now) ? ack() : nack(NACK.BAD_STATE, "no session is running");
    case T.ADJUST: return this.adjust(f.delta_us);
  }
  return nack(NACK.UNKNOWN_COMMAND, MESSAGES[type][0]);
};

Band.prototype.hello = function (f, now) {
  if (!(f.min_version <= PROTOCOL_VERSION && PROTOCOL_VERSION <= f.max_version)) {
    return nack(NACK.UNSUPPORTED_VERSION, "band speaks v" + PROTOCOL_VERSION + ", host v" + f.min_version + "..v" + f.max_version);
  }
  var info = this.info, run = this.run;
  var reply = {
    protocol_version: PROTOCOL_VERSION, firmware_version: info.firmware_version, mtu: this.mtu,
    max_plan_bytes: info.max_plan_bytes, max_steps: info.max_steps, max_name_length: info.max_name_length,
    event_buffer: this.ringSize, motor: info.motor, plan_id: this.planId || NO_PLAN_ID, band_time_us: now,
    boot_id: this.bootId, first_unacked_event: this.firstUnackedEvent(),
    session_id: 0, session_state: S.IDLE, session_round: 0, session_step: -1, session_start_us: 0,
    session_shift_us: 0, session_adjust_us: 0, session_elapsed_us: 0
  };
  if (run) {
    var at = this.state === S.PAUSED ? run.paused_at_us : isIn(this.state, ACTIVE) ? now : run.ended_at_us;
    var total = this.timeline ? this.timeline.total_us : 0;
    reply.session_id = run.session_id; reply.session_state = this.state; reply.session_round = this.round;
    reply.session_step = this.stepIndex; reply.session_start_us = run.start_us;
    reply.session_shift_us = run.shift_us; reply.session_adjust_us = run.adjust_us;
    reply.session_elapsed_us = Math.min(Math.max(this.elapsed(run, at), 0), total);
  }
  return [T.CAPABILITIES, reply];
};

Band.prototype.planChunk = function (c) {
  if (equalBytes(c.plan_id, this.planId)) return ack();
  if (isIn(this.state, LIVE)) return nack(NACK.BUSY, "a session is running; stop it before sending a plan");
  if (c.total_length > this.info.max_plan_bytes) {
    return nack(NACK.PLAN_TOO_LARGE, "plan of " + c.total_length + " bytes; this band holds " + this.info.max_plan_bytes);
  }
  if (!equalBytes(c.plan_id, this.uploadId) || c.offset === 0) {
    this.uploadId = c.plan_id; this.upload = new Uint8Array(c.total_length); this.uploadLength = 0;
  }
  if (c.offset > this.uploadLength) return nack(NACK.MALFORMED, "chunk at " + c.offset + ", expected " + this.uploadLength);
  var end = c.offset + c.data.length;
  if (end > c.total_length) return nack(NACK.MALFORMED, "chunk runs past the plan's total length");
  if (this.upload.length < c.total_length) { // a chunk of the same upload naming another total
    var grown = new Uint8Array(c.total_length);
    grown.set(this.upload.subarray(0, Math.min(this.upload.length, this.uploadLength)));
    this.upload = grown;
  }
  this.upload.set(c.data, c.offset);
  this.uploadLength = Math.max(this.uploadLength, end);
  if (this.uploadLength < c.total_length) return ack();
  return this.installPlan(copy(this.upload, 0, this.uploadLength), c.plan_id);
};

Band.prototype.installPlan = function (data, expected) {
  this.uploadId = null; this.upload = null; this.uploadLength = 0;
  if (!equalBytes(planId(data), expected)) return nack(NACK.PLAN_MISMATCH, "plan bytes do not hash to the plan id");
  var plan;
  try { plan = decodePlan(data); } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return nack(NACK.MALFORMED, String(e.message).slice(0, 200));
  }
  if (plan.steps.length > this.info.max_steps) {
    return nack(NACK.PLAN_TOO_LARGE, plan.steps.length + " steps; max " + this.info.max_steps);
  }
  var longest = 0;
  plan.steps.forEach(function (s) { longest = Math.max(longest, utf8Encode(s.name).length); });
  if (longest > this.info.max_name_length) {
    return nack(NACK.PLAN_TOO_LARGE, "a step name of " + longest + " bytes; max " + this.info.max_name_length);
  }
  this.plan = plan; this.planId = expected; this.timeline = buildTimeline(plan);
  return ack();
};

Band.prototype.start = function (f, now) {
  var running = this.run, sid = f.session_id;
  if (running && isIn(this.state, LIVE) && sid === running.session_id) return ack();
  if (!this.planId || !this.timeline) return nack(NACK.NO_PLAN, "send the plan before START");
  if (!equalBytes(f.plan_id, this.planId)) return nack(NACK.PLAN_MISMATCH, "START names a plan this band does not hold");
  if (transition(this.state, "start") === null) return nack(NACK.BAD_STATE, "a workout is already running; stop it first");
  if (sid === 0) return nack(NACK.OUT_OF_RANGE, "session_id 0 means no workout: pick 1..2**32-1");
  if (running && sid === running.session_id) return nack(NACK.OUT_OF_RANGE, "that session_id was the last workout's");
  var late = now - f.start_at_us;
  if (late > MAX_START_LATE_US || -late > MAX_START_LEAD_US) {
    return nack(NACK.OUT_OF_RANGE, "start " + late + " us from the band's clock: sync the clocks first");
  }
  if (f.start_at_us + this.timeline.total_us > MAX_BAND_TIME_US) {
    return nack(NACK.OUT_OF_RANGE, "the workout would end past the band's clock range");
  }
  this.move("start");
  this.run = { plan_id: f.plan_id, start_us: f.start_at_us, session_id: sid, shift_us: 0, adjust_us: 0,
    next_cue: 0, next_segment: 0, paused_at_us: 0, ended_at_us: 0 };
  this.round = 0; this.stepIndex = REST_STEP;
  return ack();
};

Band.prototype.pause = function (now) {
  var run = this.run;
  if (this.state === S.PAUSED) return nack(NACK.BAD_STATE, "the session is already paused");
  if (!run || transition(this.state, "pause") === null) return nack(NACK.BAD_STATE, "no session is running");
  this.advance(run, now);
  if (!this.move("pause")) return nack(NACK.BAD_STATE, "the session has just ended");
  run.paused_at_us = now;
  this.report(S.PAUSED, now, CAUSE.NONE, null);
  return ack();
};

Band.prototype.inRest = function () { return this.stepIndex === REST_STEP && this.round > 0; };

Band.prototype.resume = function (now) {
  var run = this.run, trigger = this.inRest() ? "resume_rest" : "resume_exercise";
  if (!run || transition(this.state, trigger) === null) return nack(NACK.BAD_STATE, "the session is not paused");
  var pausedFor = now - run.paused_at_us;
  if (!this.fits(run, run.shift_us + pausedFor, run.adjust_us)) return nack(NACK.OUT_OF_RANGE, "the pause is too long for the band's clock");
  run.shift_us += pausedFor;
  this.move(trigger);
  this.report(this.state, now, CAUSE.NONE, null);
  return ack();
};

Band.prototype.adjust = function (delta) {
  var run = this.run;
  if (!run || transition(this.state, "adjust") === null) return nack(NACK.BAD_STATE, "no session to adjust");
  if (!this.fits(run, run.shift_us, run.adjust_us + delta)) {
    return nack(NACK.OUT_OF_RANGE, "an adjustment of " + delta + " us would put the rest of the timeline outside the band's clock");
  }
  run.adjust_us += delta;
  return ack();
};

Band.prototype.fits = function (run, shift, adjust) {
  var tl = this.timeline, anchor = run.start_us + shift + adjust, up = tl.total_us;
  if (run.next_cue < tl.cues.length) up = Math.min(up, tl.cues[run.next_cue][4]);
  if (run.next_segment < tl.segments.length) up = Math.min(up, tl.segments[run.next_segment][2]);
  return anchor + up >= 0 && anchor + tl.total_us <= MAX_BAND_TIME_US;
};

Band.prototype.advance = function (run, now) {
  var tl = this.timeline, cues = tl.cues, segs = tl.segments, elapsed = this.elapsed(run, now);
  for (;;) {
    var segAt = run.next_segment < segs.length ? segs[run.next_segment][2] : null;
    var cueAt = run.next_cue < cues.length ? cues[run.next_cue][4] : null;
    if (segAt !== null && segAt <= elapsed && (cueAt === null || segAt <= cueAt)) {
      var seg = segs[run.next_segment++];
      this.round = seg[0]; this.stepIndex = seg[1];
      this.move(this.inRest() ? "rest" : "exercise");
      this.report(this.state, now, CAUSE.NONE, this.bandTimeOf(run, seg[2]));
    } else if (cueAt !== null && cueAt <= elapsed) {
      var cue = cues[run.next_cue++];
      this.fire(cue[0], cue[1], cue[2], cue[3], this.bandTimeOf(run, cue[4]), now);
    } else break;
  }
  if (elapsed >= tl.total_us && run.next_cue >= cues.length) {
    this.report(S.DONE, now, CAUSE.NONE, null);
    run.ended_at_us = now;
    this.move("finish");
  }
};

Band.prototype.skip = function (now) {
  var run = this.run, tl = this.timeline;
  if (!run || !tl || transition(this.state, "skip") === null) return false;
  var paused = this.state === S.PAUSED;
  if (!paused) {
    this.advance(run, now);
    if (!isIn(this.state, ACTIVE)) return true;
  }
  var elapsed = this.elapsed(run, paused ? run.paused_at_us : now);
  var target = nextSegmentStartAfter(tl, elapsed);
  if (target === null) target = tl.total_us;
  run.shift_us -= Math.max(target - elapsed, 0);
  while (run.next_cue < tl.cues.length && tl.cues[run.next_cue][4] < target) run.next_cue++;
  while (run.next_segment < tl.segments.length && tl.segments[run.next_segment][2] < target) run.next_segment++;
  if (!paused) this.advance(run, now);
  return true;
};

Band.prototype.stop = function (cause, now) {
  if (transition(this.state, "stop") === null) return false;
  this.fire(STOPPED_CUE_ID, CUE.STOPPED, this.round, this.stepIndex, now, now);
  this.report(S.STOPPED, now, cause, null);
  if (this.run) this.run.ended_at_us = now;
  this.move("stop");
  return true;
};

Band.prototype.fire = function (cueId, kind, round, step, planned, now) {
  var pattern = this.plan ? patternFor(this.plan, kind) : defaultPattern(kind);
  this.motor.push([cueId, kind, pattern, now]);
  this.emit(T.CUE_FIRED, { band_time_us: now, cue_id: cueId, kind: kind, round: round, step_index: step,
    planned_us: planned, fired_us: now }, now);
};

Band.prototype.report = function (state, now, cause, at) {
  this.emit(T.SESSION_STATE, { band_time_us: at === null ? now : at, state: state, round: this.round,
    step_index: this.stepIndex, shift_us: this.run ? this.run.shift_us : 0, cause: cause }, now);
};

Band.prototype.emit = function (type, f, now) {
  f.event_number = this.nextEvent++;
  f.session_id = this.sessionId();
  if (this.ring.length >= this.ringSize) { this.ring.shift(); this.eventsLost++; }
  var allSent = this.ring.every(function (e) { return e.sent !== null; });
  var entry = { number: f.event_number, frame: encodeFrame(type, f, 0), sent: null };
  this.ring.push(entry);
  if (this.connected && allSent) this.transmit(entry, now);
};

Band.prototype.transmit = function (entry, now) {
  this.outgoing = this.outgoing.concat(fragment(entry.frame, this.mtu - 3));
  entry.sent = now;
};

Band.prototype.sendUnacked = function (now, onlyDue) {
  if (!this.connected || !this.ring.length) return;
  var oldest = this.ring[0].sent, self = this;
  if (onlyDue && oldest !== null && now < oldest + this.retransmitUs) {
    this.ring.forEach(function (e) { if (e.sent === null) self.transmit(e, now); });
    return;
  }
  this.ring.forEach(function (e) { self.transmit(e, now); });
};

Band.prototype.onEventAck = function (number) {
  var drop = 0;
  while (drop < this.ring.length && this.ring[drop].number <= number) drop++;
  if (drop) this.ring.splice(0, drop);
};

Band.prototype.reply = function (seq, reply) {
  var frame = encodeFrame(reply[0], reply[1], seq, 0);
  this.lastReply = frame;
  if (this.connected) this.outgoing = this.outgoing.concat(fragment(frame, this.mtu - 3));
};

Band.prototype.nackUndecodable = function (frame, error) {
  var header;
  try { header = decodeHeader(frame); } catch (e) { return; }
  var code = error.kind === "UnsupportedVersionError" ? NACK.UNSUPPORTED_VERSION
    : !MESSAGES[header.type] ? NACK.UNKNOWN_COMMAND : NACK.MALFORMED;
  if (this.connected) {
    var n = encodeFrame(T.NACK, { code: code, detail: String(error.message).slice(0, 200) }, header.seq, 0);
    this.outgoing = this.outgoing.concat(fragment(n, this.mtu - 3));
  }
};

exports.FRAME_VERSION = FRAME_VERSION;
exports.PROTOCOL_VERSION = PROTOCOL_VERSION;
exports.T = T;
exports.CUE = CUE;
exports.BUTTON = BUTTON;
exports.S = S;
exports.CAUSE = CAUSE;
exports.NACK = NACK;
exports.MESSAGES = MESSAGES;
exports.ProtocolError = ProtocolError;
exports.crc16 = crc16;
exports.encodeFrame = encodeFrame;
exports.decodeFrame = decodeFrame;
exports.decodeHeader = decodeHeader;
exports.fragment = fragment;
exports.Reassembler = Reassembler;
exports.decodePlan = decodePlan;
exports.encodePlan = encodePlan;
exports.planId = planId;
exports.sha256 = sha256;
exports.buildTimeline = buildTimeline;
exports.defaultPattern = defaultPattern;
exports.encodeHrs = encodeHrs;
exports.decodeHrs = decodeHrs;
exports.transition = transition;
exports.Band = Band;
exports.utf8Encode = utf8Encode;
exports.utf8Decode = utf8Decode;
