"""The band's end of the protocol, sans-I/O: everything a band's firmware needs.

It stores the plan, runs the timeline on the band's own clock, fires cues
(handing the motor a pattern to play), keeps every event in a ring buffer
until the host acknowledges it, and replays what is unacknowledged after a
reconnect. The stop and pain gestures act on the band itself, with no host.

Drive it like h11: ``receive_data`` for each write to the control
characteristic, ``tick`` when ``next_deadline_us`` comes, then notify every
fragment of ``data_to_send`` and play every ``motor_actions`` entry.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from . import messages as m
from ._state import ACTIVE, LIVE, Trigger, transition
from .enums import (
    Button,
    CueKind,
    MessageType,
    MotorFlags,
    NackCode,
    SessionStateCode,
    StopCause,
)
from .errors import ProtocolError, UnsupportedVersionError
from .frames import Reassembler, decode_frame, decode_header, decode_plan, encode_frame, fragment
from .host import PROTOCOL_VERSION
from .plan import Pattern, WirePlan, default_pattern, plan_id
from .timeline import REST_STEP, STOPPED_CUE_ID, Timeline, build_timeline

__all__ = [
    "MAX_BAND_TIME_US",
    "MAX_START_LATE_US",
    "MAX_START_LEAD_US",
    "BandInfo",
    "BandProtocol",
    "MotorAction",
]

_DEFAULT_MTU = 23
_SEQ_HALF = 0x8000

# Every time the band reports is a u64 and every shift an i64; keeping the band's times
# below 2**62 leaves room for any sum of them, so no value a host sends can overflow one.
# (A clock counting microseconds from boot reaches 2**62 after 146,000 years.)
MAX_BAND_TIME_US = (1 << 62) - 1
MAX_START_LEAD_US = 3_600_000_000  # START at most an hour ahead of the band's clock...
MAX_START_LATE_US = 60_000_000  # ...and at most a minute behind it (the cues due would burst)


@dataclass(frozen=True, slots=True)
class BandInfo:
    """What a band is and what it can hold; reported in :class:`Capabilities`."""

    firmware_version: str = "1.0.0"
    max_plan_bytes: int = 4096
    max_steps: int = 64
    max_name_length: int = 32
    motor: MotorFlags = MotorFlags.VIBRATE | MotorFlags.INTENSITY


@dataclass(frozen=True, slots=True)
class MotorAction:
    """Play ``pattern`` now: cue ``cue_id`` (``STOPPED_CUE_ID`` for a stop) fired at ``at_us``."""

    cue_id: int
    kind: CueKind
    pattern: Pattern
    at_us: int


@dataclass(slots=True)
class _Unacked:
    number: int
    frame: bytes
    sent_us: int | None = None


@dataclass(slots=True)
class _Run:
    """A workout's position on the timeline (kept after it ends, for CAPABILITIES)."""

    plan_id: bytes
    start_us: int
    session_id: int
    shift_us: int = 0  # pauses add, skips subtract (reported to the host)
    adjust_us: int = 0  # host drift corrections (not reported: the host knows them)
    next_cue: int = 0
    next_segment: int = 0
    paused_at_us: int = 0  # band time the pause began; meaningful only while PAUSED
    ended_at_us: int = 0  # band time it ended; meaningful only once DONE or STOPPED

    def elapsed(self, now_us: int) -> int:
        return now_us - self.start_us - self.shift_us - self.adjust_us

    def band_time_of(self, offset_us: int) -> int:
        return self.start_us + self.shift_us + self.adjust_us + offset_us


class BandProtocol:
    """A band's protocol engine: plan store, timeline runner, reliable event stream."""

    def __init__(
        self,
        info: BandInfo | None = None,
        *,
        ring_size: int = 256,
        retransmit_us: int = 400_000,
        boot_id: int = 1,
    ) -> None:
        self.info = info or BandInfo()
        self._ring_size = ring_size
        self._retransmit_us = retransmit_us
        self.boot_id = boot_id
        self.errors = 0  # frames dropped or refused as malformed
        self.events_lost = 0  # events pushed out of a full ring buffer before their ack
        self.commands_applied = 0  # each command counts once, however often it was re-sent
        self._reset_memory()

    def _reset_memory(self) -> None:
        self._mtu = _DEFAULT_MTU
        self._connected = False
        self._reassembler = Reassembler()
        self._outgoing: list[bytes] = []
        self._motor: list[MotorAction] = []
        self._ring: deque[_Unacked] = deque()
        self._next_event = 1
        self._last_seq: int | None = None
        self._hello_seq: int | None = None
        self._last_reply: bytes | None = None
        self._upload_id: bytes | None = None
        self._upload = bytearray()
        self.plan: WirePlan | None = None
        self.plan_id: bytes | None = None
        self._timeline: Timeline | None = None
        self._run: _Run | None = None  # the last workout started since boot
        self.state = SessionStateCode.IDLE
        self.round = 0
        self.step_index = REST_STEP

    @property
    def session_id(self) -> int:
        """The workout under way (0 when none is): every event is stamped with it."""
        return self._run.session_id if self._run is not None and self.state in LIVE else 0

    def _move(self, trigger: Trigger) -> bool:
        """Apply ``trigger`` if the state table allows it; False (nothing changed) if not."""
        target = transition(self.state, trigger)
        if target is None:
            return False
        self.state = target
        return True

    # -- link lifecycle -----------------------------------------------------------------

    def connection_made(self, mtu: int, now_us: int) -> None:
        """A host connected: replay every event it has not acknowledged."""
        self._mtu = mtu
        self._connected = True
        self._reassembler.reset()
        self._send_unacked(now_us, only_due=False)

    def connection_lost(self) -> None:
        """The host is gone; the workout runs on and events wait in the ring buffer."""
        self._connected = False
        self._outgoing.clear()
        self._reassembler.reset()
        for entry in self._ring:
            entry.sent_us = None

    def set_mtu(self, mtu: int) -> None:
        """The ATT MTU changed (after an exchange)."""
        self._mtu = mtu

    def reboot(self) -> None:
        """Lose everything in RAM, as a real band does on reboot (fault injection)."""
        self.boot_id = (self.boot_id + 1) & 0xFFFFFFFF
        self._reset_memory()

    # -- inputs -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now_us: int) -> None:
        """A write to the control characteristic. Bad input is NACKed or dropped, never raised."""
        try:
            frame_bytes = self._reassembler.feed(data)
        except ProtocolError:
            self.errors += 1
            return
        if frame_bytes is None:
            return
        try:
            frame = decode_frame(frame_bytes)
        except ProtocolError as exc:
            self.errors += 1
            self._nack_undecodable(frame_bytes, exc)
            return
        message = frame.message
        if isinstance(message, m.EventAck):
            self._on_event_ack(message.event_number)
            return
        if not isinstance(message, m.COMMAND_TYPES):
            self.errors += 1
            self._reply(frame.seq, m.Nack(NackCode.UNKNOWN_COMMAND, type(message).__name__))
            return
        if self._is_duplicate(frame.seq, hello=isinstance(message, m.Hello)):
            return
        if isinstance(message, m.Hello):
            self._hello_seq = frame.seq
        self._last_seq = frame.seq
        self.commands_applied += 1
        self._reply(frame.seq, self._apply(message, now_us))
        if isinstance(message, m.Hello):
            self._resend_after_hello(now_us)
        self.tick(now_us)

    def tick(self, now_us: int) -> None:
        """Fire every cue that is due, advance the session, retransmit overdue events."""
        run = self._run
        if run is not None and self.state in ACTIVE:
            self._advance(run, now_us)
        self._send_unacked(now_us, only_due=True)

    def press_button(self, button: Button, now_us: int) -> None:
        """A gesture on the band: reported to the host, and acted on at once."""
        self._emit(
            m.ButtonPressed(self._next_event, now_us, button, session_id=self.session_id), now_us
        )
        if button in (Button.STOP, Button.PAIN):
            self._stop(StopCause.PAIN if button is Button.PAIN else StopCause.BUTTON, now_us)
        elif button is Button.SKIP:
            self._skip(now_us)

    def record_heart_rate(
        self, bpm: int, rr_1024: tuple[int, ...], contact: bool, now_us: int
    ) -> None:
        """A heart-rate sample from the sensor, to be delivered with the band's timestamp."""
        self._emit(
            m.HeartRateSample(
                self._next_event, now_us, bpm, rr_1024, contact, session_id=self.session_id
            ),
            now_us,
        )

    # -- outputs -------------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Fragments to notify on the events characteristic, in order."""
        out, self._outgoing = self._outgoing, []
        return out

    def motor_actions(self) -> list[MotorAction]:
        """Patterns the motor must play, in order."""
        out, self._motor = self._motor, []
        return out

    def next_deadline_us(self) -> int | None:
        """When :meth:`tick` must run next (a cue, a step change, or an event retransmission)."""
        deadlines = []
        run = self._run
        if run is not None and self._timeline is not None and self.state in ACTIVE:
            upcoming = [self._timeline.total_us]
            if run.next_cue < len(self._timeline.cues):
                upcoming.append(self._timeline.cues[run.next_cue].offset_us)
            if run.next_segment < len(self._timeline.segments):
                upcoming.append(self._timeline.segments[run.next_segment].start_us)
            deadlines.append(run.band_time_of(min(upcoming)))
        if self._connected:
            sent = [e.sent_us for e in self._ring if e.sent_us is not None]
            if sent:
                deadlines.append(min(sent) + self._retransmit_us)
        return min(deadlines) if deadlines else None

    @property
    def first_unacked_event(self) -> int:
        """The oldest event number the host has not acknowledged (or the next one)."""
        return self._ring[0].number if self._ring else self._next_event

    # -- commands -------------------------------------------------------------------------------

    def _is_duplicate(self, seq: int, *, hello: bool) -> bool:
        last = self._last_seq
        if last is None:
            return False
        if seq == last:
            if self._last_reply is not None and self._connected:
                self._outgoing.extend(fragment(self._last_reply, self._mtu - 3))
            return True
        if hello:
            # A HELLO opens a new conversation (maybe a new host with its own sequence
            # numbers), so only a copy of the HELLO already taken is a duplicate.
            return seq == self._hello_seq
        # Serial-number arithmetic: a sequence number "behind" the last one is a stale copy.
        return 0 < (last - seq) % 0x10000 < _SEQ_HALF

    def _apply(self, command: m.Command, now_us: int) -> m.Reply:
        match command:
            case m.Hello():
                return self._hello(command, now_us)
            case m.TimeSyncRequest():
                return m.TimeSyncResponse(command.host_send_us, now_us, now_us)
            case m.PlanChunk():
                return self._plan_chunk(command)
            case m.Start():
                return self._start(command, now_us)
            case m.Pause():
                return self._pause(now_us)
            case m.Resume():
                return self._resume(now_us)
            case m.Skip():
                if not self._skip(now_us):
                    return m.Nack(NackCode.BAD_STATE, "no session is running")
                return m.Ack()
            case m.Stop():
                if not self._stop(StopCause.HOST, now_us):
                    return m.Nack(NackCode.BAD_STATE, "no session is running")
                return m.Ack()
            case m.Adjust():
                return self._adjust(command.delta_us, now_us)
        return m.Nack(NackCode.UNKNOWN_COMMAND, type(command).__name__)

    def _hello(self, hello: m.Hello, now_us: int) -> m.Reply:
        if not hello.min_version <= PROTOCOL_VERSION <= hello.max_version:
            return m.Nack(
                NackCode.UNSUPPORTED_VERSION,
                f"band speaks v{PROTOCOL_VERSION}, host v{hello.min_version}..v{hello.max_version}",
            )
        return m.Capabilities(
            protocol_version=PROTOCOL_VERSION,
            firmware_version=self.info.firmware_version,
            mtu=self._mtu,
            max_plan_bytes=self.info.max_plan_bytes,
            max_steps=self.info.max_steps,
            max_name_length=self.info.max_name_length,
            event_buffer=self._ring_size,
            motor=self.info.motor,
            plan_id=self.plan_id or m.NO_PLAN_ID,
            band_time_us=now_us,
            boot_id=self.boot_id,
            first_unacked_event=self.first_unacked_event,
            **self._session_fields(now_us),
        )

    def _session_fields(self, now_us: int) -> dict[str, Any]:
        """The ``session_*`` fields of CAPABILITIES: the last workout, where it stands."""
        run = self._run
        if run is None:
            return {}
        if self.state is SessionStateCode.PAUSED:
            at = run.paused_at_us
        elif self.state in ACTIVE:
            at = now_us
        else:
            at = run.ended_at_us
        total = self._timeline.total_us if self._timeline is not None else 0
        return {
            "session_id": run.session_id,
            "session_state": self.state,
            "session_round": self.round,
            "session_step": self.step_index,
            "session_start_us": run.start_us,
            "session_shift_us": run.shift_us,
            "session_adjust_us": run.adjust_us,
            "session_elapsed_us": min(max(run.elapsed(at), 0), total),
        }

    def _plan_chunk(self, chunk: m.PlanChunk) -> m.Reply:
        if chunk.plan_id == self.plan_id:
            return m.Ack()  # already held: a re-push is a no-op
        if self.state in LIVE:
            return m.Nack(NackCode.BUSY, "a session is running; stop it before sending a plan")
        if chunk.total_length > self.info.max_plan_bytes:
            return m.Nack(
                NackCode.PLAN_TOO_LARGE,
                f"plan of {chunk.total_length} bytes; this band holds {self.info.max_plan_bytes}",
            )
        if chunk.plan_id != self._upload_id or chunk.offset == 0:
            self._upload_id, self._upload = chunk.plan_id, bytearray()
        if chunk.offset > len(self._upload):
            return m.Nack(
                NackCode.MALFORMED, f"chunk at {chunk.offset}, expected {len(self._upload)}"
            )
        end = chunk.offset + len(chunk.data)
        if end > chunk.total_length:
            return m.Nack(NackCode.MALFORMED, "chunk runs past the plan's total length")
        self._upload[chunk.offset : end] = chunk.data
        if len(self._upload) < chunk.total_length:
            return m.Ack()
        return self._install_plan(bytes(self._upload), chunk.plan_id)

    def _install_plan(self, data: bytes, expected_id: bytes) -> m.Reply:
        self._upload_id, self._upload = None, bytearray()
        if plan_id(data) != expected_id:
            return m.Nack(NackCode.PLAN_MISMATCH, "plan bytes do not hash to the plan id")
        try:
            plan = decode_plan(data)
        except ProtocolError as exc:
            return m.Nack(NackCode.MALFORMED, str(exc)[:200])
        if len(plan.steps) > self.info.max_steps:
            return m.Nack(
                NackCode.PLAN_TOO_LARGE, f"{len(plan.steps)} steps; max {self.info.max_steps}"
            )
        longest = max(len(s.name.encode("utf-8")) for s in plan.steps)
        if longest > self.info.max_name_length:
            return m.Nack(
                NackCode.PLAN_TOO_LARGE,
                f"a step name of {longest} bytes; max {self.info.max_name_length}",
            )
        self.plan, self.plan_id, self._timeline = plan, expected_id, build_timeline(plan)
        return m.Ack()

    def _start(self, start: m.Start, now_us: int) -> m.Reply:
        running = self._run
        if running is not None and self.state in LIVE and start.session_id == running.session_id:
            # The same workout asked for again (a host that restarted before it saw the ACK).
            return m.Ack()
        if self.plan_id is None or self._timeline is None:
            return m.Nack(NackCode.NO_PLAN, "send the plan before START")
        if start.plan_id != self.plan_id:
            return m.Nack(NackCode.PLAN_MISMATCH, "START names a plan this band does not hold")
        if transition(self.state, Trigger.START) is None:
            assert running is not None
            return m.Nack(
                NackCode.BAD_STATE,
                f"workout {running.session_id:08x} is already running; stop it first",
            )
        if start.session_id == 0:
            return m.Nack(NackCode.OUT_OF_RANGE, "session_id 0 means no workout: pick 1..2**32-1")
        if running is not None and start.session_id == running.session_id:
            # Its events are still told apart from the new workout's only by their id.
            return m.Nack(NackCode.OUT_OF_RANGE, "that session_id was the last workout's")
        late = now_us - start.start_at_us
        if late > MAX_START_LATE_US or -late > MAX_START_LEAD_US:
            return m.Nack(
                NackCode.OUT_OF_RANGE,
                f"start at {start.start_at_us} us is {late / 1e6:+.3f} s from the band's clock "
                f"({now_us} us): sync the clocks first",
            )
        if start.start_at_us + self._timeline.total_us > MAX_BAND_TIME_US:
            return m.Nack(
                NackCode.OUT_OF_RANGE, "the workout would end past the band's clock range"
            )
        self._move(Trigger.START)
        self._run = _Run(start.plan_id, start.start_at_us, start.session_id)
        self.round, self.step_index = 0, REST_STEP
        return m.Ack()

    def _pause(self, now_us: int) -> m.Reply:
        run = self._run
        if self.state is SessionStateCode.PAUSED:
            # A second pause must not move the pause start: the time between would be lost.
            return m.Nack(NackCode.BAD_STATE, "the session is already paused")
        if run is None or transition(self.state, Trigger.PAUSE) is None:
            return m.Nack(NackCode.BAD_STATE, "no session is running")
        self._advance(run, now_us)  # fire what was due before the pause
        if not self._move(Trigger.PAUSE):
            return m.Nack(NackCode.BAD_STATE, "the session has just ended")
        run.paused_at_us = now_us
        self._report(SessionStateCode.PAUSED, now_us)
        return m.Ack()

    def _resume(self, now_us: int) -> m.Reply:
        run = self._run
        trigger = Trigger.RESUME_REST if self._in_rest() else Trigger.RESUME_EXERCISE
        if run is None or transition(self.state, trigger) is None:
            return m.Nack(NackCode.BAD_STATE, "the session is not paused")
        paused_for = now_us - run.paused_at_us
        if not self._fits(run, shift_us=run.shift_us + paused_for):
            return m.Nack(NackCode.OUT_OF_RANGE, "the pause is too long for the band's clock")
        run.shift_us += paused_for
        self._move(trigger)
        self._report(self.state, now_us)
        return m.Ack()

    def _adjust(self, delta_us: int, now_us: int) -> m.Reply:
        run = self._run
        if run is None or transition(self.state, Trigger.ADJUST) is None:
            return m.Nack(NackCode.BAD_STATE, "no session to adjust")
        if not self._fits(run, adjust_us=run.adjust_us + delta_us):
            return m.Nack(
                NackCode.OUT_OF_RANGE,
                f"an adjustment of {delta_us} us would put the rest of the timeline outside "
                "the band's clock",
            )
        run.adjust_us += delta_us
        return m.Ack()

    def _fits(
        self, run: _Run, *, shift_us: int | None = None, adjust_us: int | None = None
    ) -> bool:
        """Whether every time still to be reported stays in 0..MAX_BAND_TIME_US."""
        assert self._timeline is not None
        shift = run.shift_us if shift_us is None else shift_us
        adjust = run.adjust_us if adjust_us is None else adjust_us
        anchor = run.start_us + shift + adjust
        upcoming = [self._timeline.total_us]
        if run.next_cue < len(self._timeline.cues):
            upcoming.append(self._timeline.cues[run.next_cue].offset_us)
        if run.next_segment < len(self._timeline.segments):
            upcoming.append(self._timeline.segments[run.next_segment].start_us)
        return anchor + min(upcoming) >= 0 and anchor + self._timeline.total_us <= MAX_BAND_TIME_US

    # -- the timeline --------------------------------------------------------------------------

    def _in_rest(self) -> bool:
        return self.step_index == REST_STEP and self.round > 0

    def _advance(self, run: _Run, now_us: int) -> None:
        timeline = self._timeline
        assert timeline is not None
        elapsed = run.elapsed(now_us)
        while True:
            segment_at = (
                timeline.segments[run.next_segment].start_us
                if run.next_segment < len(timeline.segments)
                else None
            )
            cue_at = (
                timeline.cues[run.next_cue].offset_us if run.next_cue < len(timeline.cues) else None
            )
            # At equal times the step change is reported before its first cue.
            if (
                segment_at is not None
                and segment_at <= elapsed
                and (cue_at is None or segment_at <= cue_at)
            ):
                segment = timeline.segments[run.next_segment]
                run.next_segment += 1
                self.round, self.step_index = segment.round, segment.step_index
                self._move(Trigger.REST if self._in_rest() else Trigger.EXERCISE)
                self._report(self.state, now_us, at_us=run.band_time_of(segment.start_us))
            elif cue_at is not None and cue_at <= elapsed:
                cue = timeline.cues[run.next_cue]
                run.next_cue += 1
                self._fire(
                    cue.cue_id,
                    cue.kind,
                    cue.round,
                    cue.step_index,
                    run.band_time_of(cue.offset_us),
                    now_us,
                )
            else:
                break
        if elapsed >= timeline.total_us and run.next_cue >= len(timeline.cues):
            self._report(SessionStateCode.DONE, now_us)  # still stamped with the session
            run.ended_at_us = now_us
            self._move(Trigger.FINISH)

    def _skip(self, now_us: int) -> bool:
        run = self._run
        if run is None or self._timeline is None or transition(self.state, Trigger.SKIP) is None:
            return False
        paused = self.state is SessionStateCode.PAUSED
        if not paused:
            self._advance(run, now_us)  # what was due before the skip happens first
            if self.state not in ACTIVE:
                return True  # the workout just ended: nothing left to skip
        elapsed = run.elapsed(run.paused_at_us if paused else now_us)
        target = self._timeline.next_segment_start_after(elapsed)
        if target is None:
            target = self._timeline.total_us
        # Never past the end: the skip puts the target at "now", which the band can hold.
        run.shift_us -= max(target - elapsed, 0)
        while (
            run.next_cue < len(self._timeline.cues)
            and self._timeline.cues[run.next_cue].offset_us < target
        ):
            run.next_cue += 1  # skipped cues are not played
        while (
            run.next_segment < len(self._timeline.segments)
            and self._timeline.segments[run.next_segment].start_us < target
        ):
            run.next_segment += 1  # nor reported: a step skipped before it began (paused)
        if not paused:
            self._advance(run, now_us)
        return True

    def _stop(self, cause: StopCause, now_us: int) -> bool:
        if transition(self.state, Trigger.STOP) is None:
            return False
        self._fire(STOPPED_CUE_ID, CueKind.STOPPED, self.round, self.step_index, now_us, now_us)
        self._report(SessionStateCode.STOPPED, now_us, cause)  # still stamped with the session
        if self._run is not None:
            self._run.ended_at_us = now_us
        self._move(Trigger.STOP)
        return True

    def _fire(
        self, cue_id: int, kind: CueKind, round_number: int, step: int, planned_us: int, now_us: int
    ) -> None:
        pattern = self.plan.pattern_for(kind) if self.plan else default_pattern(kind)
        self._motor.append(MotorAction(cue_id, kind, pattern, now_us))
        self._emit(
            m.CueFired(
                self._next_event,
                now_us,
                cue_id,
                kind,
                round_number,
                step,
                planned_us,
                now_us,
                session_id=self.session_id,
            ),
            now_us,
        )

    def _report(
        self,
        state: SessionStateCode,
        now_us: int,
        cause: StopCause = StopCause.NONE,
        *,
        at_us: int | None = None,
    ) -> None:
        """Emit SessionState; ``at_us`` is when it happened on the timeline (default: now)."""
        shift = self._run.shift_us if self._run is not None else 0
        self._emit(
            m.SessionState(
                self._next_event,
                now_us if at_us is None else at_us,
                state,
                self.round,
                self.step_index,
                shift,
                cause,
                session_id=self.session_id,
            ),
            now_us,
        )

    # -- the reliable event stream ---------------------------------------------------------------

    def _emit(self, event: m.BandEvent, now_us: int) -> None:
        self._next_event += 1
        if len(self._ring) >= self._ring_size:
            self._ring.popleft()  # bounded memory: the oldest unacknowledged event is lost
            self.events_lost += 1
        entry = _Unacked(event.event_number, encode_frame(event, 0))
        self._ring.append(entry)
        if self._connected and all(e.sent_us is not None for e in list(self._ring)[:-1]):
            self._transmit(entry, now_us)

    def _transmit(self, entry: _Unacked, now_us: int) -> None:
        self._outgoing.extend(fragment(entry.frame, self._mtu - 3))
        entry.sent_us = now_us

    def _send_unacked(self, now_us: int, *, only_due: bool) -> None:
        if not self._connected or not self._ring:
            return
        oldest = self._ring[0].sent_us
        if only_due and oldest is not None and now_us < oldest + self._retransmit_us:
            if all(e.sent_us is not None for e in self._ring):
                return
            for entry in self._ring:  # events created while the link was down
                if entry.sent_us is None:
                    self._transmit(entry, now_us)
            return
        for entry in self._ring:  # go-back-N: resend everything unacknowledged, in order
            self._transmit(entry, now_us)

    def _resend_after_hello(self, now_us: int) -> None:
        # HELLO's answer names the oldest event kept as the next one; it must follow the
        # answer at once. Whatever was sent before (all of it at connect) went to a host
        # that did not yet know where the stream starts, and by the time a timed resend
        # came, a full ring would have dropped that event for a newer one.
        self._send_unacked(now_us, only_due=False)

    def _on_event_ack(self, event_number: int) -> None:
        while self._ring and self._ring[0].number <= event_number:
            self._ring.popleft()

    def _reply(self, seq: int, reply: m.Reply) -> None:
        frame = encode_frame(reply, seq)
        self._last_reply = frame
        if self._connected:
            self._outgoing.extend(fragment(frame, self._mtu - 3))

    def _nack_undecodable(self, frame_bytes: bytes, exc: ProtocolError) -> None:
        try:
            message_type, seq = decode_header(frame_bytes)
        except ProtocolError:
            return  # not even the header is trustworthy: drop it silently
        if isinstance(exc, UnsupportedVersionError):
            code = NackCode.UNSUPPORTED_VERSION
        elif message_type not in _KNOWN_TYPES:
            code = NackCode.UNKNOWN_COMMAND
        else:
            code = NackCode.MALFORMED
        if self._connected:
            nack = encode_frame(m.Nack(code, str(exc)[:200]), seq)
            self._outgoing.extend(fragment(nack, self._mtu - 3))


_KNOWN_TYPES = frozenset(MessageType.__members__.values())
