// A small shim of the Espruino APIs the Bangle.js companion app uses, so the app's own
// code runs under node as a virtual band (companion/sim/cores.py drives it).
//
// usage: node espruino_shim.js APP_DIR NOW_US
// Time is virtual: getTime() is the band clock Python last sent, and setTimeout timers
// fire only when Python moves the clock past them. One JSON command per stdin line,
// one JSON answer per command on stdout:
//   {"t":"time","now":US}            move the clock, fire every timer due
//   {"t":"write","now":US,"data":HEX} a write to the control characteristic
//   {"t":"connect"|"disconnect","now":US}
//   {"t":"press","now":US} / {"t":"touch","now":US,"x":X,"y":Y} / {"t":"hrm","now":US,"bpm":N}
// answer: {"notify":[HEX...],"cues":[...],"buzz":[[at_us,ms,strength]...],
//          "next":US|null,"state":N,"screen":[text...],"print":[...]}
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const readline = require("readline");

const appDir = process.argv[2];
let now = Number(process.argv[3]); // band clock, microseconds
const CONTROL = "6d2c0002-6f6e-4f9c-8a3b-636f6d70616e";
const EVENTS = "6d2c0003-6f6e-4f9c-8a3b-636f6d70616e";

let out = null;
function fresh() { return { notify: [], cues: [], buzz: [], screen: [], print: [] }; }
out = fresh();

// -- timers on the virtual clock ------------------------------------------------------
let timers = [];
let nextTimerId = 1;
function addTimer(fn, ms, args) {
  const id = nextTimerId++;
  timers.push({ id, at: now + Math.max(0, Math.round((Number(ms) || 0) * 1000)), fn, args });
  return id;
}
function clearTimer(id) { timers = timers.filter((t) => t.id !== id); }

// -- an event emitter like Espruino's object.on / emit -----------------------------------
function emitter(target) {
  const handlers = {};
  target.on = (event, fn) => { (handlers[event] = handlers[event] || []).push(fn); };
  target.emit = (event, ...args) => { (handlers[event] || []).slice().forEach((fn) => fn(...args)); };
  return target;
}

let onControlWrite = null;
const NRF = emitter({
  setServices(services) {
    for (const service of Object.values(services)) {
      for (const [uuid, spec] of Object.entries(service)) {
        if (uuid.toLowerCase() === CONTROL) onControlWrite = spec.onWrite;
      }
    }
  },
  updateServices(update) {
    for (const service of Object.values(update)) {
      for (const [uuid, spec] of Object.entries(service)) {
        if (uuid.toLowerCase() === EVENTS && spec.notify) {
          out.notify.push(Buffer.from(new Uint8Array(spec.value)).toString("hex"));
        }
      }
    }
  },
  setSecurity() {},
  setAdvertising() {},
});

const Bangle = emitter({
  buzz(ms, strength) {
    out.buzz.push([now, ms, strength]);
    return new Promise((resolve) => addTimer(resolve, ms, []));
  },
  setHRMPower() {},
});
const E = emitter({});
E.on("companion:cue", (cue) => out.cues.push(cue));

// A graphics stub that keeps what the app writes on the screen.
const g = new Proxy({}, {
  get(target, name) {
    if (name === "getWidth" || name === "getHeight") return () => 176;
    if (name === "drawString") return (text) => { out.screen.push(String(text)); return g; };
    return () => g;
  },
});

let buttonWatch = null;
const sandbox = {
  getTime: () => now / 1e6,
  setTimeout: (fn, ms, ...args) => addTimer(fn, ms, args),
  clearTimeout: (id) => clearTimer(id),
  setWatch: (fn) => { buttonWatch = fn; return 1; },
  BTN1: "BTN1",
  print: (...args) => out.print.push(args.join(" ")),
  NRF, Bangle, E, g, Math, Uint8Array, Uint16Array, DataView, Array, String, Object, JSON, Promise,
  require: (name) => {
    if (name !== "companioncore") throw new Error("no module " + name + " on this watch");
    return require(path.join(appDir, "companion.core.js"));
  },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(path.join(appDir, "companion.app.js"), "utf8"), sandbox, {
  filename: "companion.app.js",
});
const band = vm.runInContext("band", sandbox);

async function settle() {
  // Run every timer due by `now`, in time order, letting promise callbacks run between.
  for (;;) {
    await new Promise((resolve) => setImmediate(resolve));
    const due = timers.filter((t) => t.at <= now).sort((a, b) => a.at - b.at || a.id - b.id);
    if (!due.length) return;
    const timer = due[0];
    clearTimer(timer.id);
    timer.fn(...timer.args);
  }
}

async function handle(command) {
  if (command.now !== undefined) now = Math.max(now, command.now);
  switch (command.t) {
    case "write": onControlWrite({ data: new Uint8Array(Buffer.from(command.data, "hex")).buffer }); break;
    case "connect": NRF.emit("connect", "host"); break;
    case "disconnect": NRF.emit("disconnect", 19); break;
    case "press": buttonWatch({ state: false, time: now / 1e6 }); break;
    case "touch": Bangle.emit("touch", 1, { x: command.x, y: command.y }); break;
    case "hrm": Bangle.emit("HRM", { bpm: command.bpm, confidence: 100 }); break;
    case "time": break;
  }
  await settle();
  const next = timers.length ? Math.min(...timers.map((t) => t.at)) : null;
  const answer = Object.assign(out, { next, state: band.state });
  out = fresh();
  process.stdout.write(JSON.stringify(answer) + "\n");
}

let queue = Promise.resolve();
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  queue = queue.then(() => handle(JSON.parse(line))).catch((error) => {
    process.stdout.write(JSON.stringify({ error: String(error && error.stack || error) }) + "\n");
  });
});
process.stdout.write(JSON.stringify({ ready: true, next: null }) + "\n");
