"""Test cases for band firmware in any language, built from the golden vectors.

Each case is ``{"id", "op", ...inputs}`` with an expected answer: an ``out`` value, or an
``error`` (and maybe a ``path``) for input that must be refused. A firmware test runner
(``mp_runner.py`` for MicroPython, ``banglejs/runner.js`` for the Bangle.js app) answers
every case; :func:`check` compares. The vectors are read as they are on disk, so a
protocol change that regenerates them changes these cases with no edit here.

``band`` cases are scenarios (connect, writes, ticks, buttons, drops) whose expected
answers come from running the reference band, ``firmware_protocol.BandProtocol``, on
the same inputs: the firmware must notify the same frames, play the same patterns and
want the same deadlines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import firmware_protocol as fp

VECTORS = Path(fp.__file__).resolve().parent / "vectors"


@dataclass
class Case:
    id: str
    op: str
    args: dict[str, Any]
    out: Any = None
    error: str | None = None
    path: str | None = None

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "op": self.op, **self.args}


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return document


def vector_cases() -> list[Case]:
    """Every golden vector, both ways: decode to fields, encode back to the same bytes."""
    cases: list[Case] = []
    messages = _load("messages.json")
    for v in messages["vectors"]:
        name = "messages/" + v["name"]
        frame = {"type": v["type"], "seq": v["seq"], "flags": v["flags"], "fields": v["fields"]}
        cases.append(Case(name + "/decode", "decode", {"frame": v["frame"]}, out=frame))
        cases.append(Case(name + "/encode", "encode", frame, out=v["frame"]))
        cases.append(
            Case(
                name + "/fragments_mtu23",
                "fragment",
                {"frame": v["frame"], "max_payload": 20},
                out=v["fragments_mtu23"],
            )
        )
        cases.append(
            Case(
                name + "/reassemble_mtu23",
                "reassemble",
                {"fragments": v["fragments_mtu23"]},
                out={"refused": [], "frames": [v["frame"]]},
            )
        )
    frames = _load("frames.json")
    crc = frames["crc"]
    cases.append(
        Case(
            "frames/crc/check",
            "crc",
            {"hex": crc["check_input"].encode().hex()},
            out=int(crc["check"], 16),
        )
    )
    cases.append(
        Case(
            "frames/crc/example_frame",
            "crc",
            {"hex": crc["example_frame"][:-4]},
            out=int(crc["example_crc"], 16),
        )
    )
    for v in frames["fragmentation"]:
        name = "frames/fragmentation/" + v["name"]
        cases.append(
            Case(
                name,
                "fragment",
                {"frame": v["frame"], "max_payload": v["max_fragment"]},
                out=v["fragments"],
            )
        )
        cases.append(
            Case(
                name + "/reassemble",
                "reassemble",
                {"fragments": v["fragments"]},
                out={"refused": [], "frames": [v["frame"]]},
            )
        )
    for v in frames["malformed"]:
        cases.append(
            Case(
                "frames/malformed/" + v["name"],
                "decode",
                {"frame": v["frame"]},
                error=v["error"],
                path=v.get("path"),
            )
        )
    for v in frames["fragment_errors"]:
        cases.append(
            Case(
                "frames/fragment_errors/" + v["name"],
                "reassemble",
                {"fragments": v["fragments"]},
                out={"refused": v["refused"], "frames": v["frames"]},
            )
        )
    hrs = _load("hrs.json")
    for v in hrs["vectors"]:
        name = "hrs/" + v["name"]
        cases.append(Case(name + "/decode", "hrs_decode", {"hex": v["bytes"]}, out=v["fields"]))
        cases.append(Case(name + "/encode", "hrs_encode", {"fields": v["fields"]}, out=v["bytes"]))
    for v in hrs["decode_only"]:
        name = "hrs/decode_only/" + v["name"]
        cases.append(Case(name + "/decode", "hrs_decode", {"hex": v["bytes"]}, out=v["fields"]))
        cases.append(
            Case(name + "/reencode", "hrs_encode", {"fields": v["fields"]}, out=v["reencoded"])
        )
    for v in hrs["malformed"]:
        cases.append(
            Case("hrs/malformed/" + v["name"], "hrs_decode", {"hex": v["bytes"]}, error=v["error"])
        )
    plan = _load("plan.json")
    fields = dict(plan["fields"])
    cases.append(Case("plan/decode", "plan_decode", {"hex": plan["encoded"]}, out=fields))
    cases.append(Case("plan/encode", "plan_encode", {"fields": fields}, out=plan["encoded"]))
    cases.append(Case("plan/plan_id", "plan_id", {"hex": plan["encoded"]}, out=plan["plan_id"]))
    timeline = {
        "total_us": plan["timeline"]["total_us"],
        "cues": [
            {k: v for k, v in cue.items() if k != "kind_name"} for cue in plan["timeline"]["cues"]
        ],
        "segments": plan["timeline"]["segments"],
    }
    cases.append(Case("plan/timeline", "timeline", {"hex": plan["encoded"]}, out=timeline))
    for i, chunk in enumerate(plan["chunks"]):
        cases.append(
            Case(
                f"plan/chunks/{i}/fragments_mtu23",
                "fragment",
                {"frame": chunk["frame"], "max_payload": 20},
                out=chunk["fragments_mtu23"],
            )
        )
        cases.append(
            Case(
                f"plan/chunks/{i}/reassemble_mtu23",
                "reassemble",
                {"fragments": chunk["fragments_mtu23"]},
                out={"refused": [], "frames": [chunk["frame"]]},
            )
        )
    return cases


# -- band scenarios, answered by the reference band ---------------------------------------

REFERENCE_PLAN = bytes.fromhex(_load("plan.json")["encoded"])


@dataclass
class Scenario:
    """Inputs for a band, recorded while the reference band answers them."""

    name: str
    ring_size: int = 256
    boot_id: int = 1
    steps: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 100
    now: int = 5_000_000
    mtu: int = 23
    last_event: int = 0
    session_id: int = 0x5E550000

    def __post_init__(self) -> None:
        self.band = fp.BandProtocol(ring_size=self.ring_size, boot_id=self.boot_id)

    def _do(self, step: dict[str, Any]) -> dict[str, Any]:
        band, now = self.band, step.get("now", 0)
        match step["do"]:
            case "connect":
                band.connection_made(step["mtu"], now)
            case "disconnect":
                band.connection_lost()
            case "write":
                band.receive_data(bytes.fromhex(step["hex"]), now)
            case "tick":
                band.tick(now)
            case "press":
                band.press_button(fp.Button(step["button"]), now)
            case "hr":
                band.record_heart_rate(step["bpm"], tuple(step["rr"]), step["contact"], now)
            case "mtu":
                band.set_mtu(step["mtu"])
            case "reboot":
                band.reboot()
        out = {
            "sent": [f.hex() for f in band.data_to_send()],
            "motor": [
                [
                    a.cue_id,
                    int(a.kind),
                    a.pattern.intensity,
                    [[u.on_ms, u.off_ms] for u in a.pattern.pulses],
                    a.at_us,
                ]
                for a in band.motor_actions()
            ],
            "deadline": band.next_deadline_us(),
            "state": int(band.state),
        }
        self.steps.append(step)
        self.outputs.append(out)
        for frame in _frames(out["sent"]):
            if frame.seq == 0 and isinstance(frame.message, fp.BandEvent):
                self.last_event = max(self.last_event, frame.message.event_number)
        return out

    # what a host (or a person) does
    def connect(self, mtu: int = 23) -> None:
        self.mtu = mtu
        self._do({"do": "connect", "mtu": mtu, "now": self.now})

    def disconnect(self) -> None:
        self._do({"do": "disconnect"})

    def write_frame(self, frame: bytes) -> None:
        for piece in fp.fragment(frame, self.mtu - 3):
            self._do({"do": "write", "hex": piece.hex(), "now": self.now})

    def send(self, message: fp.Message, seq: int | None = None, flags: int = 0) -> None:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.write_frame(fp.encode_frame(message, seq, flags))

    def start(self, pid: bytes, at_us: int, session_id: int | None = None) -> None:
        if session_id is None:
            self.session_id += 1
            session_id = self.session_id
        self.send(fp.Start(pid, at_us, session_id))

    def ack_events(self) -> None:
        self.write_frame(fp.encode_frame(fp.EventAck(self.last_event), 0))

    def press(self, button: fp.Button) -> None:
        self._do({"do": "press", "button": int(button), "now": self.now})

    def heart_rate(self, bpm: int, rr: tuple[int, ...], contact: bool = True) -> None:
        self._do({"do": "hr", "bpm": bpm, "rr": list(rr), "contact": contact, "now": self.now})

    def run_until(self, until_us: int, *, ack: bool = True) -> None:
        """Tick at every deadline the reference band names up to ``until_us``."""
        while True:
            deadline = self.band.next_deadline_us()
            if deadline is None or deadline > until_us:
                break
            self.now = max(self.now, deadline)
            self._do({"do": "tick", "now": self.now})
            if ack:
                self.ack_events()
        self.now = until_us
        self._do({"do": "tick", "now": self.now})

    def upload(self, data: bytes = REFERENCE_PLAN, chunk: int = 128) -> bytes:
        pid = fp.plan_id(data)
        for offset in range(0, len(data), chunk):
            self.send(fp.PlanChunk(pid, len(data), offset, data[offset : offset + chunk]))
        return pid

    def case(self) -> Case:
        return Case(
            "band/" + self.name,
            "band",
            {"ring_size": self.ring_size, "boot_id": self.boot_id, "steps": self.steps},
            out=self.outputs,
        )


def _frames(fragments: list[str]) -> list[fp.Frame]:
    reassembler, frames = fp.Reassembler(), []
    for piece in fragments:
        whole = reassembler.feed(bytes.fromhex(piece))
        if whole is not None:
            frames.append(fp.decode_frame(whole))
    return frames


def _hello(s: Scenario) -> None:
    s.connect(s.mtu)
    s.send(fp.Hello(1, 2))


def _full_session(s: Scenario) -> None:
    _hello(s)
    pid = s.upload()
    s.upload()  # a re-push of the plan held: ACK, nothing else
    s.send(fp.TimeSyncRequest(1_000_000))
    s.start(pid, s.now + 500_000)
    s.run_until(s.now + 90_000_000)
    s.send(fp.Adjust(-1500))
    s.heart_rate(120, (512, 530))
    s.run_until(s.now + 700_000_000)  # past the end: DONE
    s.send(fp.Hello(1, 2))  # the finished workout, in CAPABILITIES


def _session_identity(s: Scenario) -> None:
    s.now = 100_000_000
    _hello(s)
    pid = s.upload()
    s.start(pid, s.now + 10_000, session_id=0)  # 0 means no workout
    s.start(pid, s.now + 4_000_000_000)  # more than an hour ahead
    s.start(pid, s.now - 61_000_000)  # more than a minute behind
    s.start(pid, s.now + 10_000, session_id=7)
    s.start(pid, s.now + 10_000, session_id=7)  # the same workout again: ACK
    s.start(pid, s.now + 10_000, session_id=8)  # another while one runs: BAD_STATE
    s.run_until(s.now + 45_000_000)
    s.send(fp.Hello(1, 2))  # where the workout stands
    s.send(fp.Pause())
    s.now += 2_000_000
    s.send(fp.Hello(1, 2))  # paused: elapsed frozen
    s.send(fp.Adjust(-(2**31)))
    s.send(fp.Skip())  # while paused: the step changes at RESUME
    s.send(fp.Resume())
    s.run_until(s.now + 3_000_000)
    s.send(fp.Stop())
    s.start(pid, s.now + 10_000, session_id=7)  # the last workout's id
    s.send(fp.Hello(1, 2))
    s.heart_rate(99, ())  # between workouts: session 0


def _host_commands(s: Scenario) -> None:
    _hello(s)
    pid = s.upload()
    s.start(pid, s.now)
    s.run_until(s.now + 20_000_000)
    s.send(fp.Pause())
    s.send(fp.Pause())  # a second pause is refused
    s.now += 7_000_000
    s.send(fp.Skip())  # refused while paused
    s.send(fp.Resume())
    s.send(fp.Resume())  # refused: not paused
    s.run_until(s.now + 5_000_000)
    s.send(fp.Skip())
    s.run_until(s.now + 200_000_000)  # into the rest between rounds
    s.send(fp.Pause())
    s.now += 3_000_000
    s.send(fp.Resume())
    s.send(fp.Skip())  # skip the rest
    s.run_until(s.now + 10_000_000)
    s.send(fp.Stop())
    s.send(fp.Stop())  # refused: nothing runs
    s.send(fp.Adjust(100))
    s.start(pid, s.now + 1_000_000)  # a new session after a stop
    s.run_until(s.now + 3_000_000)
    s.send(fp.Stop())


def _buttons(s: Scenario) -> None:
    _hello(s)
    pid = s.upload()
    s.press(fp.Button.STOP)  # no session: reported, nothing stops
    s.start(pid, s.now)
    s.run_until(s.now + 10_000_000)
    s.press(fp.Button.SKIP)
    s.run_until(s.now + 2_000_000)
    s.press(fp.Button.PAIN)
    s.ack_events()
    s.start(pid, s.now)
    s.run_until(s.now + 1_000_000)
    s.press(fp.Button.STOP)
    s.run_until(s.now + 1_000_000)


def _drops_and_replay(s: Scenario) -> None:
    _hello(s)
    pid = s.upload()
    s.start(pid, s.now + 100_000)
    s.run_until(s.now + 5_000_000)
    s.disconnect()
    s.run_until(s.now + 60_000_000, ack=False)  # events wait in the ring
    s.connect(23)  # every unacknowledged event is replayed
    s.send(fp.Hello(1, 2))
    s.run_until(s.now + 2_000_000, ack=False)  # go-back-N after 400 ms without an ack
    s.ack_events()
    s.run_until(s.now + 30_000_000)
    s.disconnect()
    s.connect(247)
    s.send(fp.Hello(1, 2))
    s.heart_rate(0, (), contact=False)
    s.run_until(s.now + 5_000_000)


def _ring_overflow(s: Scenario) -> None:
    _hello(s)
    pid = s.upload()
    s.start(pid, s.now)
    s.disconnect()
    s.run_until(s.now + 70_000_000, ack=False)  # more events than the ring holds
    s.connect(23)
    s.send(fp.Hello(1, 2))
    s.ack_events()
    s.run_until(s.now + 1_000_000)
    s._do({"do": "reboot"})
    s.connect(23)
    s.send(fp.Hello(1, 2))
    s.start(pid, s.now)  # the plan went with the reboot


def _duplicates_and_garbage(s: Scenario) -> None:
    _hello(s)
    s.send(fp.Hello(1, 2), seq=s.seq)  # retransmission: the stored reply again
    s.send(fp.Hello(2, 3))  # a host that speaks only newer versions
    s.send(fp.TimeSyncRequest(42), seq=s.seq + 1, flags=fp.FrameFlags.RETRANSMIT)
    s.seq += 1
    s.send(fp.TimeSyncRequest(43), seq=s.seq - 5)  # an old copy: dropped silently
    s.start(b"\x01" * 8, 1)  # no plan held
    s.send(fp.Pause())
    s.send(fp.Skip())
    s.send(fp.Stop())
    s.send(fp.Adjust(5))
    s.send(fp.Ack())  # a band->host type sent to the band
    s.send(fp.CueFired(1, 2, 3, fp.CueKind.COUNTDOWN, 1, 0, 4, 5))
    good = fp.encode_frame(fp.Pause(), s.seq + 1)
    s.write_frame(good[:-1] + bytes([good[-1] ^ 1]))  # bad CRC: dropped
    s.write_frame(bytes([2]) + good[1:-2] + _crc(bytes([2]) + good[1:-2]))  # version 2
    body = bytes([1, 0x7F]) + good[2:-2]
    s.write_frame(body + _crc(body))  # unknown type
    body = bytes([1, 0x0A]) + (s.seq + 2).to_bytes(2, "little") + b"\x00\x04\x00" + b"\x00" * 4
    s.write_frame(body + _crc(body))  # a truncated TIME_SYNC_RESPONSE
    body = bytes([1, 0x05]) + (s.seq + 3).to_bytes(2, "little") + b"\x00\x01\x00\x00"
    s.write_frame(body + _crc(body))  # a PAUSE with a payload byte
    s._do({"do": "write", "hex": "", "now": s.now})  # an empty write
    s._do({"do": "write", "hex": "0102", "now": s.now})  # a continuation out of nowhere
    s.seq += 3
    s.send(fp.Hello(1, 1))  # a v1-only host
    s.seq += 1
    s.send(fp.Hello(1, 2))  # the conversation goes on


def _plan_errors(s: Scenario) -> None:
    _hello(s)
    pid = fp.plan_id(REFERENCE_PLAN)
    s.send(fp.PlanChunk(pid, 5000, 0, REFERENCE_PLAN[:100]))  # too large
    s.send(fp.PlanChunk(pid, len(REFERENCE_PLAN), 0, REFERENCE_PLAN[:100]))
    s.send(fp.PlanChunk(pid, len(REFERENCE_PLAN), 120, REFERENCE_PLAN[120:]))  # a gap
    s.send(fp.PlanChunk(pid, len(REFERENCE_PLAN), 100, REFERENCE_PLAN[100:] + b"x"))  # too long
    s.send(fp.PlanChunk(b"\x07" * 8, len(REFERENCE_PLAN), 0, REFERENCE_PLAN))  # wrong hash
    bad = REFERENCE_PLAN + b"\x00"
    s.send(fp.PlanChunk(fp.plan_id(bad), len(bad), 0, bad))  # undecodable
    many = fp.encode_plan(
        fp.WirePlan(
            "big",
            1,
            0,
            0,
            tuple(fp.WireStep(f"s{i}", fp.StepKind.EXERCISE, 1000) for i in range(65)),
        )
    )
    s.send(fp.PlanChunk(fp.plan_id(many), len(many), 0, many))  # too many steps
    long_name = fp.encode_plan(
        fp.WirePlan("long", 1, 0, 0, (fp.WireStep("x" * 33, fp.StepKind.EXERCISE, 1000),))
    )
    s.send(fp.PlanChunk(fp.plan_id(long_name), len(long_name), 0, long_name))
    s.start(pid, s.now)  # still no plan
    tiny = fp.encode_plan(
        fp.WirePlan(
            "tiny",
            2,
            1500,
            2,
            (
                fp.WireStep("a", fp.StepKind.EXERCISE, 2500, True),
                fp.WireStep("b", fp.StepKind.REST, 1200),
            ),
            patterns=(),
        )
    )
    tiny_id = s.upload(tiny, chunk=7)
    s.start(pid, s.now)  # another plan's id
    s.start(tiny_id, s.now + 1000)
    s.start(tiny_id, s.now + 1000)  # already running
    s.send(fp.PlanChunk(pid, len(REFERENCE_PLAN), 0, REFERENCE_PLAN[:100]))  # busy
    s.run_until(s.now + 20_000_000)


def _crc(body: bytes) -> bytes:
    import binascii

    return binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "little")


SCENARIOS = {
    "full_session_mtu23": (_full_session, {}),
    "full_session_mtu247": (_full_session, {"mtu": 247}),
    "session_identity": (_session_identity, {}),
    "host_commands": (_host_commands, {}),
    "buttons": (_buttons, {}),
    "drops_and_replay": (_drops_and_replay, {}),
    "ring_overflow": (_ring_overflow, {"ring_size": 8, "boot_id": 77}),
    "duplicates_and_garbage": (_duplicates_and_garbage, {}),
    "plan_errors": (_plan_errors, {"mtu": 185}),
}


def band_cases() -> list[Case]:
    cases = []
    for name, (script, options) in SCENARIOS.items():
        scenario = Scenario(name, **options)
        script(scenario)
        cases.append(scenario.case())
    return cases


def all_cases() -> list[Case]:
    return [*vector_cases(), *band_cases()]


# -- comparing answers -----------------------------------------------------------------


def _comparable_sent(fragments: list[str]) -> list[Any]:
    """Frames as (seq, flags, message), with NACK details blanked (they are free text)."""
    out: list[Any] = []
    for frame in _frames(fragments):
        message = frame.message
        if isinstance(message, fp.Nack):
            message = fp.Nack(message.code, "")
        out.append((frame.seq, frame.flags, message))
    return out


def check(case: Case, result: dict[str, Any]) -> None:
    """Assert that a firmware's answer to ``case`` is the expected one."""
    assert "crash" not in result, f"{case.id} crashed the firmware: {result['crash']}"
    if case.error is not None:
        assert "error" in result, f"{case.id}: expected {case.error}, got {result.get('out')!r}"
        assert result["error"] == case.error
        if case.path is not None:
            assert result["path"] == case.path
        return
    assert "error" not in result, f"{case.id} refused: {result.get('error')} {result.get('path')}"
    if case.op != "band":
        assert result["out"] == case.out
        return
    expected, got = case.out, result["out"]
    assert len(got) == len(expected)
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        step = case.args["steps"][i]
        where = f"{case.id} step {i} {step}"
        frames = _comparable_sent(want["sent"])
        assert _comparable_sent(have["sent"]) == frames, where
        if not any(isinstance(message, fp.Nack) for _, _, message in frames):
            assert have["sent"] == want["sent"], where  # byte for byte, fragments too
        assert have["motor"] == want["motor"], where
        assert have["deadline"] == want["deadline"], where
        assert have["state"] == want["state"], where
