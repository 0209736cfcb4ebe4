/* Companion band for Bangle.js 2: the watch times its own workout cues.
 *
 * Serves the companion GATT service (control: write, needs a MITM-paired link; events:
 * notify) and Heart Rate, runs the band state machine of companioncore on the watch's
 * clock, buzzes each cue's pattern with chained Bangle.buzz calls and shows the exercise,
 * a hint, the time left and what comes next. Button: stop. PAIN box on the screen: pain.
 * Cues come from setTimeout at the next absolute deadline the core names (never from
 * counting interval ticks), so a late timer never moves the cues after it.
 */
var core = require("companioncore");

var SERVICE = "6d2c0001-6f6e-4f9c-8a3b-636f6d70616e";
var CONTROL = "6d2c0002-6f6e-4f9c-8a3b-636f6d70616e";
var EVENTS = "6d2c0003-6f6e-4f9c-8a3b-636f6d70616e";
var MAX_WAIT_MS = 1000; // look at the clock at least this often
var JUMP_S = 2; // a clock step larger than this is setTime(), not time passing

/* -- a monotonic band clock in microseconds ------------------------------------------
 * getTime() is wall-clock seconds (a double: microseconds since 1970 stay exact below
 * 2**53, until the year 2255) and jumps when a phone sets the time; the band clock must
 * not. The driver reads the clock at least once a second, so a step backwards or of
 * more than MAX_WAIT + JUMP seconds is setTime(), folded into `skew`. */
var clock = { last: getTime(), skew: 0 };
function nowUs() {
  var t = getTime(), step = t - clock.last;
  if (step < 0 || step > MAX_WAIT_MS / 1000 + JUMP_S) clock.skew -= step;
  clock.last = t;
  return Math.round((t + clock.skew) * 1e6);
}

var band = new core.Band({ firmware_version: "1.0.0-bangle", boot_id: Math.floor(Math.random() * 2147483647) + 1 });
var timer = null;
var subscribed = false;

/* -- the motor: a pattern is a chain of Bangle.buzz promises ---------------------------- */
var playing = 0;
function play(action) {
  var pattern = action[2], token = ++playing, i = 0;
  E.emit("companion:cue", { cue_id: action[0], kind: action[1], intensity: pattern.intensity,
    pulses: pattern.pulses, at_us: action[3] });
  function next() {
    if (token !== playing || i >= pattern.pulses.length) return;
    var pulse = pattern.pulses[i++];
    Bangle.buzz(pulse[0], pattern.intensity / 255).then(function () {
      if (pulse[1]) setTimeout(next, pulse[1]); else next();
    });
  }
  next();
}

/* -- radio ------------------------------------------------------------------------------ */
function flush() {
  band.motorActions().forEach(play);
  var fragments = band.dataToSend();
  if (!subscribed) return;
  fragments.forEach(function (f) {
    var update = {};
    update[SERVICE] = {};
    update[SERVICE][EVENTS] = { value: f.buffer, notify: true };
    try { NRF.updateServices(update); } catch (e) { print("notify:", e); }
  });
}

function drive() {
  timer = null;
  band.tick(nowUs());
  flush();
  draw();
  schedule();
}

function schedule() {
  if (timer !== null) clearTimeout(timer);
  var deadline = band.nextDeadline(), wait = MAX_WAIT_MS;
  if (deadline !== null) wait = Math.max(0, Math.min(wait, (deadline - nowUs()) / 1000));
  timer = setTimeout(drive, wait);
}

function onControlWrite(evt) {
  var now = nowUs();
  if (!subscribed) {
    // Espruino reports no CCCD write: the host subscribes, then writes HELLO.
    subscribed = true;
    band.connectionMade(23, now);
  }
  band.receiveData(new Uint8Array(evt.data), now);
  flush();
  draw();
  schedule();
}

var services = {};
services[SERVICE] = {};
services[SERVICE][CONTROL] = {
  writable: true, value: [0], maxLen: 244, onWrite: onControlWrite,
  security: { write: { encrypted: true, mitm: true, lesc: true } }
};
services[SERVICE][EVENTS] = { notify: true, readable: true, value: [0], maxLen: 244 };
services["180d"] = { "2a37": { notify: true, value: [0, 0] }, "2a38": { readable: true, value: [2] } };
NRF.setServices(services, { advertise: [SERVICE], uart: true });
NRF.setSecurity({ display: true, keyboard: false, mitm: true, bond: true, lesc: true });
NRF.on("passkey", function (key) {
  g.clear(); g.setFont("Vector", 30).setFontAlign(0, 0);
  g.drawString("Pair?", g.getWidth() / 2, 50);
  g.drawString(key, g.getWidth() / 2, 100);
  g.setFont("6x8", 2).drawString("type it on the host", g.getWidth() / 2, 150);
  g.flip();
});
NRF.on("connect", function () { subscribed = false; });
NRF.on("disconnect", function () { subscribed = false; band.connectionLost(); draw(); });

/* -- heart rate: the watch's sensor, to the companion stream and to HRS ------------------ */
Bangle.setHRMPower(1, "companion");
Bangle.on("HRM", function (hrm) {
  if (!hrm.bpm) return;
  var now = nowUs();
  band.recordHeartRate(Math.round(hrm.bpm), [], hrm.confidence > 50, now);
  flush();
  var update = { "180d": { "2a37": { value: core.encodeHrs(Math.round(hrm.bpm), hrm.confidence > 50, null, [], false).buffer, notify: true } } };
  try { NRF.updateServices(update); } catch (e) { /* not connected */ }
});

/* -- button and screen ------------------------------------------------------------------- */
setWatch(function () { band.pressButton(core.BUTTON.STOP, nowUs()); flush(); draw(); schedule(); },
  BTN1, { repeat: true, edge: "falling", debounce: 50 });
Bangle.on("touch", function (button, xy) {
  if (xy && xy.y > 130 && band.state !== core.S.IDLE) {
    band.pressButton(core.BUTTON.PAIN, nowUs()); flush(); draw(); schedule();
  }
});

var STATE_NAMES = ["ready", "", "paused", "rest", "done", "stopped"];
function draw() {
  if (typeof g === "undefined") return;
  var W = g.getWidth(), plan = band.plan, run = band.run, step = null, next = null, left = "";
  if (plan && run) {
    if (band.stepIndex >= 0) step = plan.steps[band.stepIndex];
    var now = band.state === core.S.PAUSED ? run.paused_at_us : nowUs();
    var elapsed = band.elapsed(run, now), segments = band.timeline.segments;
    for (var i = 0; i < segments.length; i++) {
      if (segments[i][2] <= elapsed && elapsed < segments[i][3]) {
        left = Math.max(0, Math.ceil((segments[i][3] - elapsed) / 1e6)) + "s";
        if (i + 1 < segments.length) {
          var n = segments[i + 1];
          next = n[1] >= 0 ? plan.steps[n[1]].name : "rest";
        }
        break;
      }
    }
  }
  g.reset().clearRect(0, 24, W - 1, g.getHeight() - 1);
  g.setFontAlign(0, 0).setFont("Vector", 24);
  g.drawString(step ? step.name : (STATE_NAMES[band.state] || "rest"), W / 2, 50);
  g.setFont("6x8", 2);
  var hint = step && step.switch_side ? "switch side half way" : (band.state === core.S.ROUND_REST ? "breathe" : "");
  g.drawString(hint, W / 2, 78);
  g.setFont("Vector", 36).drawString(left, W / 2, 108);
  g.setFont("6x8", 2).drawString(next ? "next: " + next : "", W / 2, 140);
  if (band.state !== core.S.IDLE) {
    g.setColor(1, 0, 0).fillRect(10, 150, W - 10, 172).setColor(1, 1, 1).drawString("PAIN", W / 2, 162);
  }
  g.flip();
}

Bangle.loadWidgets && Bangle.loadWidgets();
Bangle.drawWidgets && Bangle.drawWidgets();
draw();
schedule();
