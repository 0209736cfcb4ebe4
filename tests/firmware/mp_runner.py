# Runs test cases against the MicroPython band core; written for MicroPython and CPython.
#
# tests/firmware/cases.py turns the golden vectors (and band scenarios) into a list of
# cases {"id", "op", ...}; this file answers each with {"id", "out"} or {"id", "error",
# "path"} (a refusal) or {"id", "crash"} (a bug). The comparison is done in Python.
#
# Under MicroPython: the node driver (run_micropython.mjs) puts the cases at
# /cases.json and reads /results.json. Under CPython: mp_runner.py CASES RESULTS.

import json

import companion_band as b
import companion_proto as p

_CONTACT = {None: "NOT_SUPPORTED", True: "DETECTED", False: "NOT_DETECTED"}
_CONTACT_IN = {"NOT_SUPPORTED": None, "DETECTED": True, "NOT_DETECTED": False}


def _hex(data):
    return "".join(["%02x" % x for x in data])


def _unhex(text):
    return bytes.fromhex(text)


def _plain_fields(message_type, fields):
    out = {}
    for name, code in p.MESSAGES[message_type][1]:
        value = fields[name]
        out[name] = _hex(value) if code in ("p", "d") else value
    return out


def _wire_fields(message_type, plain):
    out = {}
    for name, code in p.MESSAGES[message_type][1]:
        value = plain[name]
        out[name] = _unhex(value) if code in ("p", "d") else value
    return out


def _plan_fields(plan):
    return {
        "name": plan.name,
        "rounds": plan.rounds,
        "round_rest_ms": plan.round_rest_ms,
        "countdown": plan.countdown,
        "steps": [
            {
                "name": s.name,
                "kind": s.kind,
                "duration_ms": s.duration_ms,
                "switch_side": s.switch_side,
            }
            for s in plan.steps
        ],
        "patterns": [
            {
                "cue": x.cue,
                "intensity": x.intensity,
                "pulses": [{"on_ms": on, "off_ms": off} for on, off in x.pulses],
            }
            for x in plan.pattern_list
        ],
    }


def _plan_from_fields(f):
    steps = [p.Step(s["name"], s["kind"], s["duration_ms"], s["switch_side"]) for s in f["steps"]]
    patterns = [
        p.Pattern(x["cue"], x["intensity"], [(u["on_ms"], u["off_ms"]) for u in x["pulses"]])
        for x in f["patterns"]
    ]
    return p.Plan(f["name"], f["rounds"], f["round_rest_ms"], f["countdown"], steps, patterns)


def _band(case):
    core = b.BandCore(ring_size=case.get("ring_size", 256), boot_id=case.get("boot_id", 1))
    outputs = []
    for step in case["steps"]:
        do = step["do"]
        now = step.get("now", 0)
        if do == "connect":
            core.connection_made(step["mtu"], now)
        elif do == "disconnect":
            core.connection_lost()
        elif do == "write":
            core.receive_data(_unhex(step["hex"]), now)
        elif do == "tick":
            core.tick(now)
        elif do == "press":
            core.press_button(step["button"], now)
        elif do == "hr":
            core.record_heart_rate(step["bpm"], step["rr"], step["contact"], now)
        elif do == "mtu":
            core.set_mtu(step["mtu"])
        elif do == "reboot":
            core.reboot()
        outputs.append(
            {
                "sent": [_hex(x) for x in core.data_to_send()],
                "motor": [
                    [a[0], a[1], a[2].intensity, [list(u) for u in a[2].pulses], a[3]]
                    for a in core.motor_actions()
                ],
                "deadline": core.next_deadline_us(),
                "state": core.state,
            }
        )
    return outputs


def run_case(case):
    op = case["op"]
    if op == "crc":
        return p.crc16(_unhex(case["hex"]))
    if op == "decode":
        message_type, seq, flags, fields = p.decode_frame(_unhex(case["frame"]))
        return {
            "type": message_type,
            "seq": seq,
            "flags": flags,
            "fields": _plain_fields(message_type, fields),
        }
    if op == "encode":
        fields = _wire_fields(case["type"], case["fields"])
        return _hex(p.encode_frame(case["type"], fields, case["seq"], case["flags"]))
    if op == "fragment":
        return [_hex(x) for x in p.fragment(_unhex(case["frame"]), case["max_payload"])]
    if op == "reassemble":
        r = p.Reassembler()
        refused = []
        frames = []
        for i, fragment in enumerate(case["fragments"]):
            try:
                frame = r.feed(_unhex(fragment))
            except p.FrameError:
                refused.append(i)
                continue
            if frame is not None:
                frames.append(_hex(frame))
        return {"refused": refused, "frames": frames}
    if op == "plan_decode":
        return _plan_fields(p.decode_plan(_unhex(case["hex"])))
    if op == "plan_encode":
        return _hex(p.encode_plan(_plan_from_fields(case["fields"])))
    if op == "plan_id":
        return _hex(p.plan_id(_unhex(case["hex"])))
    if op == "timeline":
        t = p.build_timeline(p.decode_plan(_unhex(case["hex"])))
        return {
            "total_us": t.total_us,
            "cues": [
                {"cue_id": c[0], "kind": c[1], "round": c[2], "step_index": c[3], "offset_us": c[4]}
                for c in t.cues
            ],
            "segments": [
                {"round": s[0], "step_index": s[1], "start_us": s[2], "end_us": s[3]}
                for s in t.segments
            ],
        }
    if op == "hrs_decode":
        bpm, contact, energy, rr, wide = p.decode_hrs(_unhex(case["hex"]))
        return {
            "bpm": bpm,
            "wide": wide,
            "contact": _CONTACT[contact],
            "energy_kj": energy,
            "rr_1024": rr,
        }
    if op == "hrs_encode":
        f = case["fields"]
        return _hex(
            p.encode_hrs(
                f["bpm"], _CONTACT_IN[f["contact"]], f["energy_kj"], f["rr_1024"], f["wide"]
            )
        )
    if op == "band":
        return _band(case)
    if op == "clock64":
        return _clock64(case)
    raise ValueError("unknown op " + op)


def _clock64(case):
    # A fake ticks_us that wraps at case["period"], stepping by case["steps"].
    import clock64

    period = case["period"]
    state = [case.get("start", 0)]

    def ticks_us():
        return state[0]

    def ticks_diff(a, c):
        return ((a - c + period // 2) % period) - period // 2

    clock = clock64.Clock64(ticks_us, ticks_diff)
    out = []
    for step in case["steps"]:
        state[0] = (state[0] + step) % period
        out.append(clock.now_us())
    return out


def run(cases):
    results = []
    for case in cases:
        result = {"id": case["id"]}
        try:
            result["out"] = run_case(case)
        except p.ProtocolError as exc:
            result["error"] = type(exc).__name__
            result["path"] = exc.path
        except Exception as exc:  # a bug in the core: reported, never hidden
            result["crash"] = type(exc).__name__ + ": " + str(exc)
        results.append(result)
    return results


def main(cases_path="/cases.json", results_path="/results.json"):
    with open(cases_path) as f:
        cases = json.load(f)
    results = run(cases)
    with open(results_path, "w") as f:
        json.dump(results, f)
