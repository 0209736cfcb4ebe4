// Answers test cases (tests/firmware/cases.py) with the Bangle.js app's protocol core.
// usage: node banglejs_runner.js FIRMWARE_DIR CASES_JSON  -> results JSON on stdout
"use strict";
const fs = require("fs");
const path = require("path");
const core = require(path.join(process.argv[2], "companion.core.js"));
const cases = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));
const CONTACT = (c) => (c === null ? "NOT_SUPPORTED" : c ? "DETECTED" : "NOT_DETECTED");
const CONTACT_IN = { NOT_SUPPORTED: null, DETECTED: true, NOT_DETECTED: false };

function plainFields(type, fields) {
  const out = {};
  for (const [name, code] of core.MESSAGES[type][1]) {
    out[name] = code === "p" || code === "d" ? hex(fields[name]) : fields[name];
  }
  return out;
}

function wireFields(type, plain) {
  const out = {};
  for (const [name, code] of core.MESSAGES[type][1]) {
    out[name] = code === "p" || code === "d" ? unhex(plain[name]) : plain[name];
  }
  return out;
}

function planFields(plan) {
  return {
    name: plan.name, rounds: plan.rounds, round_rest_ms: plan.round_rest_ms, countdown: plan.countdown,
    steps: plan.steps.map((s) => ({ name: s.name, kind: s.kind, duration_ms: s.duration_ms, switch_side: s.switch_side })),
    patterns: plan.patterns.map((p) => ({
      cue: p.cue, intensity: p.intensity, pulses: p.pulses.map((u) => ({ on_ms: u[0], off_ms: u[1] })),
    })),
  };
}

function planFromFields(f) {
  return {
    name: f.name, rounds: f.rounds, round_rest_ms: f.round_rest_ms, countdown: f.countdown, steps: f.steps,
    patterns: f.patterns.map((p) => ({ cue: p.cue, intensity: p.intensity, pulses: p.pulses.map((u) => [u.on_ms, u.off_ms]) })),
  };
}

function band(c) {
  const b = new core.Band({ ring_size: c.ring_size, boot_id: c.boot_id, firmware_version: "1.0.0" });
  return c.steps.map((step) => {
    const now = step.now || 0;
    switch (step.do) {
      case "connect": b.connectionMade(step.mtu, now); break;
      case "disconnect": b.connectionLost(); break;
      case "write": b.receiveData(unhex(step.hex), now); break;
      case "tick": b.tick(now); break;
      case "press": b.pressButton(step.button, now); break;
      case "hr": b.recordHeartRate(step.bpm, step.rr, step.contact, now); break;
      case "mtu": b.setMtu(step.mtu); break;
      case "reboot": b.reboot(); break;
    }
    return {
      sent: b.dataToSend().map(hex),
      motor: b.motorActions().map((a) => [a[0], a[1], a[2].intensity, a[2].pulses.map((u) => [u[0], u[1]]), a[3]]),
      deadline: b.nextDeadline(),
      state: b.state,
    };
  });
}

function runCase(c) {
  switch (c.op) {
    case "crc": return core.crc16(unhex(c.hex));
    case "decode": {
      const d = core.decodeFrame(unhex(c.frame));
      return { type: d.type, seq: d.seq, flags: d.flags, fields: plainFields(d.type, d.fields) };
    }
    case "encode": return hex(core.encodeFrame(c.type, wireFields(c.type, c.fields), c.seq, c.flags));
    case "fragment": return core.fragment(unhex(c.frame), c.max_payload).map(hex);
    case "reassemble": {
      const r = new core.Reassembler(), refused = [], frames = [];
      c.fragments.forEach((f, i) => {
        let frame;
        try { frame = r.feed(unhex(f)); } catch (e) {
          if (!(e instanceof core.ProtocolError)) throw e;
          refused.push(i); return;
        }
        if (frame !== null) frames.push(hex(frame));
      });
      return { refused, frames };
    }
    case "plan_decode": return planFields(core.decodePlan(unhex(c.hex)));
    case "plan_encode": return hex(core.encodePlan(planFromFields(c.fields)));
    case "plan_id": return hex(core.planId(unhex(c.hex)));
    case "timeline": {
      const t = core.buildTimeline(core.decodePlan(unhex(c.hex)));
      return {
        total_us: t.total_us,
        cues: t.cues.map((x) => ({ cue_id: x[0], kind: x[1], round: x[2], step_index: x[3], offset_us: x[4] })),
        segments: t.segments.map((s) => ({ round: s[0], step_index: s[1], start_us: s[2], end_us: s[3] })),
      };
    }
    case "hrs_decode": {
      const h = core.decodeHrs(unhex(c.hex));
      return { bpm: h.bpm, wide: h.wide, contact: CONTACT(h.contact), energy_kj: h.energy_kj, rr_1024: h.rr_1024 };
    }
    case "hrs_encode": {
      const f = c.fields;
      return hex(core.encodeHrs(f.bpm, CONTACT_IN[f.contact], f.energy_kj, f.rr_1024, f.wide));
    }
    case "band": return band(c);
  }
  throw new Error("unknown op " + c.op);
}

const results = cases.map((c) => {
  try {
    return { id: c.id, out: runCase(c) };
  } catch (e) {
    if (e instanceof core.ProtocolError) return { id: c.id, error: e.kind, path: e.path };
    return { id: c.id, crash: String(e && e.stack ? e.stack : e) };
  }
});
process.stdout.write(JSON.stringify(results));
