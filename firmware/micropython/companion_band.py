# The band's end of the companion protocol for MicroPython, sans-I/O.
#
# It stores the plan, runs the timeline on the band's own clock (absolute offsets from
# the start: nothing accumulates), fires cues (handing the motor a pattern), keeps every
# event in a ring buffer until the host acknowledges it, and replays what is
# unacknowledged after a reconnect. The stop and pain gestures act on the band itself.
#
# Drive it from the radio code: ``receive_data`` for each write to the control
# characteristic, ``tick`` when ``next_deadline_us`` comes, then notify every fragment
# of ``data_to_send`` and play every ``motor_actions`` entry. The behaviour is that of
# firmware_protocol/band.py (the reference), rule for rule.

import companion_proto as p

_DEFAULT_MTU = 23
_SEQ_HALF = 0x8000
_ACTIVE = (p.RUNNING, p.ROUND_REST)  # the timeline moves
_LIVE = (p.RUNNING, p.ROUND_REST, p.PAUSED)  # a workout is under way

# Every time the band reports stays below 2**62, so no sum of them overflows.
MAX_BAND_TIME_US = (1 << 62) - 1
MAX_START_LEAD_US = 3600000000  # START at most an hour ahead of the band's clock...
MAX_START_LATE_US = 60000000  # ...and at most a minute behind it

# The state table (firmware_protocol/_state.py): what moves a workout, and where to.
T_START = "start"
T_PAUSE = "pause"
T_RESUME_EXERCISE = "resume_exercise"
T_RESUME_REST = "resume_rest"
T_SKIP = "skip"
T_ADJUST = "adjust"
T_EXERCISE = "exercise"
T_REST = "rest"
T_FINISH = "finish"
T_STOP = "stop"

_SAME = -1  # a legal move that leaves the state as it is


def _moving():
    return {
        T_PAUSE: p.PAUSED,
        T_SKIP: _SAME,
        T_ADJUST: _SAME,
        T_EXERCISE: p.RUNNING,
        T_REST: p.ROUND_REST,
        T_FINISH: p.DONE,
        T_STOP: p.STOPPED,
    }


TRANSITIONS = {
    p.IDLE: {T_START: p.RUNNING},
    p.RUNNING: _moving(),
    p.ROUND_REST: _moving(),
    p.PAUSED: {
        T_RESUME_EXERCISE: p.RUNNING,
        T_RESUME_REST: p.ROUND_REST,
        T_SKIP: _SAME,
        T_ADJUST: _SAME,
        T_STOP: p.STOPPED,
    },
    p.DONE: {T_START: p.RUNNING},
    p.STOPPED: {T_START: p.RUNNING},
}


def transition(state, trigger):
    """The state after ``trigger``, or None when the table does not allow it."""
    moves = TRANSITIONS.get(state)
    if moves is None or trigger not in moves:
        return None
    target = moves[trigger]
    return state if target == _SAME else target


class BandInfo:
    """What the band is and holds; reported in CAPABILITIES."""

    def __init__(
        self,
        firmware_version="1.0.0",
        max_plan_bytes=4096,
        max_steps=64,
        max_name_length=32,
        motor=p.MOTOR_VIBRATE | p.MOTOR_INTENSITY,
    ):
        self.firmware_version = firmware_version
        self.max_plan_bytes = max_plan_bytes
        self.max_steps = max_steps
        self.max_name_length = max_name_length
        self.motor = motor


class _Unacked:
    __slots__ = ("frame", "number", "sent_us")

    def __init__(self, number, frame):
        self.number = number
        self.frame = frame
        self.sent_us = None


class _Run:
    """A workout's position on the timeline (kept after it ends, for CAPABILITIES)."""

    __slots__ = (
        "adjust_us",
        "ended_at_us",
        "next_cue",
        "next_segment",
        "paused_at_us",
        "plan_id",
        "session_id",
        "shift_us",
        "start_us",
    )

    def __init__(self, plan_id, start_us, session_id):
        self.plan_id = plan_id
        self.start_us = start_us
        self.session_id = session_id
        self.shift_us = 0  # pauses add, skips subtract (reported to the host)
        self.adjust_us = 0  # host drift corrections (not reported)
        self.next_cue = 0
        self.next_segment = 0
        self.paused_at_us = 0  # meaningful only while PAUSED
        self.ended_at_us = 0  # meaningful only once DONE or STOPPED

    def elapsed(self, now_us):
        return now_us - self.start_us - self.shift_us - self.adjust_us

    def band_time_of(self, offset_us):
        return self.start_us + self.shift_us + self.adjust_us + offset_us


class BandCore:
    """Plan store, timeline runner and reliable event stream of one band."""

    def __init__(self, info=None, ring_size=256, retransmit_us=400000, boot_id=1):
        self.info = info or BandInfo()
        self.ring_size = ring_size
        self.retransmit_us = retransmit_us
        self.boot_id = boot_id
        self.errors = 0
        self.events_lost = 0
        self.commands_applied = 0
        self._reset_memory()

    def _reset_memory(self):
        self.mtu = _DEFAULT_MTU
        self.connected = False
        self._reassembler = p.Reassembler()
        self._outgoing = []
        self._motor = []
        self._ring = []
        self._next_event = 1
        self._last_seq = None
        self._hello_seq = None
        self._last_reply = None
        self._upload_id = None
        self._upload = bytearray()
        self.plan = None
        self.plan_id = None
        self.timeline = None
        self._run = None
        self.state = p.IDLE
        self.round = 0
        self.step_index = p.REST_STEP

    def session_id(self):
        """The workout under way (0 when none is): every event is stamped with it."""
        return self._run.session_id if self._run is not None and self.state in _LIVE else 0

    def _move(self, trigger):
        target = transition(self.state, trigger)
        if target is None:
            return False
        self.state = target
        return True

    # -- link lifecycle ------------------------------------------------------------------

    def connection_made(self, mtu, now_us):
        self.mtu = mtu
        self.connected = True
        self._reassembler.reset()
        self._send_unacked(now_us, False)

    def connection_lost(self):
        self.connected = False
        self._outgoing = []
        self._reassembler.reset()
        for entry in self._ring:
            entry.sent_us = None

    def set_mtu(self, mtu):
        self.mtu = mtu

    def reboot(self):
        self.boot_id = (self.boot_id + 1) & 0xFFFFFFFF
        self._reset_memory()

    # -- inputs --------------------------------------------------------------------------

    def receive_data(self, data, now_us):
        """One write to the control characteristic. Bad input is NACKed or dropped."""
        try:
            frame = self._reassembler.feed(data)
        except p.ProtocolError:
            self.errors += 1
            return
        if frame is None:
            return
        try:
            message_type, seq, _flags, fields = p.decode_frame(frame)
        except p.ProtocolError as exc:
            self.errors += 1
            self._nack_undecodable(frame, exc)
            return
        if message_type == p.EVENT_ACK:
            self._on_event_ack(fields["event_number"])
            return
        if message_type not in p.COMMANDS:
            self.errors += 1
            self._reply(
                seq, p.NACK, {"code": p.NACK_UNKNOWN_COMMAND, "detail": p.MESSAGES[message_type][0]}
            )
            return
        if self._is_duplicate(seq, message_type == p.HELLO):
            return
        if message_type == p.HELLO:
            self._hello_seq = seq
        self._last_seq = seq
        self.commands_applied += 1
        reply_type, reply = self._apply(message_type, fields, now_us)
        self._reply(seq, reply_type, reply)
        if message_type == p.HELLO:
            self._resend_after_hello(now_us)
        self.tick(now_us)

    def _resend_after_hello(self, now_us):
        # The answer names the oldest event kept as the next one: it follows at once,
        # before a full ring can drop it for a newer one.
        self._send_unacked(now_us, False)

    def tick(self, now_us):
        """Fire what is due, advance the session, retransmit overdue events."""
        run = self._run
        if run is not None and self.state in _ACTIVE:
            self._advance(run, now_us)
        self._send_unacked(now_us, True)

    def press_button(self, button, now_us):
        self._emit(p.BUTTON_PRESSED, {"band_time_us": now_us, "button": button}, now_us)
        if button == p.BUTTON_STOP:
            self._stop(p.CAUSE_BUTTON, now_us)
        elif button == p.BUTTON_PAIN:
            self._stop(p.CAUSE_PAIN, now_us)
        elif button == p.BUTTON_SKIP:
            self._skip(now_us)

    def record_heart_rate(self, bpm, rr_1024, contact, now_us):
        self._emit(
            p.HEART_RATE_SAMPLE,
            {
                "band_time_us": now_us,
                "bpm": bpm,
                "contact": bool(contact),
                "rr_1024": list(rr_1024),
            },
            now_us,
        )

    # -- outputs -------------------------------------------------------------------------

    def data_to_send(self):
        out = self._outgoing
        self._outgoing = []
        return out

    def motor_actions(self):
        """``(cue_id, kind, pattern, at_us)`` for each pattern to play, in order."""
        out = self._motor
        self._motor = []
        return out

    def next_deadline_us(self):
        best = None
        run = self._run
        timeline = self.timeline
        if run is not None and timeline is not None and self.state in _ACTIVE:
            upcoming = timeline.total_us
            if run.next_cue < len(timeline.cues):
                upcoming = min(upcoming, timeline.cues[run.next_cue][4])
            if run.next_segment < len(timeline.segments):
                upcoming = min(upcoming, timeline.segments[run.next_segment][2])
            best = run.band_time_of(upcoming)
        if self.connected:
            for entry in self._ring:
                if entry.sent_us is not None:
                    due = entry.sent_us + self.retransmit_us
                    if best is None or due < best:
                        best = due
        return best

    def first_unacked_event(self):
        return self._ring[0].number if self._ring else self._next_event

    def shift_us(self):
        return self._run.shift_us if self._run is not None else 0

    def elapsed_us(self, now_us):
        """How far into the timeline the session is (None without one)."""
        return self._run.elapsed(now_us) if self._run is not None else None

    # -- commands ------------------------------------------------------------------------

    def _is_duplicate(self, seq, hello):
        last = self._last_seq
        if last is None:
            return False
        if seq == last:
            if self._last_reply is not None and self.connected:
                self._outgoing.extend(p.fragment(self._last_reply, self.mtu - 3))
            return True
        if hello:
            return seq == self._hello_seq
        return 0 < (last - seq) % 0x10000 < _SEQ_HALF

    def _apply(self, message_type, fields, now_us):
        if message_type == p.HELLO:
            return self._hello(fields, now_us)
        if message_type == p.TIME_SYNC_REQUEST:
            return p.TIME_SYNC_RESPONSE, {
                "host_send_us": fields["host_send_us"],
                "band_receive_us": now_us,
                "band_send_us": now_us,
            }
        if message_type == p.PLAN_CHUNK:
            return self._plan_chunk(fields)
        if message_type == p.START:
            return self._start(fields, now_us)
        if message_type == p.PAUSE:
            return self._pause(now_us)
        if message_type == p.RESUME:
            return self._resume(now_us)
        if message_type == p.SKIP:
            if not self._skip(now_us):
                return _nack(p.NACK_BAD_STATE, "no session is running")
            return _ACK
        if message_type == p.STOP:
            if not self._stop(p.CAUSE_HOST, now_us):
                return _nack(p.NACK_BAD_STATE, "no session is running")
            return _ACK
        if message_type == p.ADJUST:
            return self._adjust(fields["delta_us"])
        return _nack(p.NACK_UNKNOWN_COMMAND, p.MESSAGES[message_type][0])

    def _hello(self, fields, now_us):
        low = fields["min_version"]
        high = fields["max_version"]
        if not low <= p.PROTOCOL_VERSION <= high:
            return _nack(
                p.NACK_UNSUPPORTED_VERSION,
                "band speaks v%d, host v%d..v%d" % (p.PROTOCOL_VERSION, low, high),
            )
        info = self.info
        reply = {
            "protocol_version": p.PROTOCOL_VERSION,
            "firmware_version": info.firmware_version,
            "mtu": self.mtu,
            "max_plan_bytes": info.max_plan_bytes,
            "max_steps": info.max_steps,
            "max_name_length": info.max_name_length,
            "event_buffer": self.ring_size,
            "motor": info.motor,
            "plan_id": self.plan_id or p.NO_PLAN_ID,
            "band_time_us": now_us,
            "boot_id": self.boot_id,
            "first_unacked_event": self.first_unacked_event(),
            "session_id": 0,
            "session_state": p.IDLE,
            "session_round": 0,
            "session_step": -1,
            "session_start_us": 0,
            "session_shift_us": 0,
            "session_adjust_us": 0,
            "session_elapsed_us": 0,
        }
        run = self._run
        if run is not None:
            if self.state == p.PAUSED:
                at = run.paused_at_us
            elif self.state in _ACTIVE:
                at = now_us
            else:
                at = run.ended_at_us
            total = self.timeline.total_us if self.timeline is not None else 0
            reply["session_id"] = run.session_id
            reply["session_state"] = self.state
            reply["session_round"] = self.round
            reply["session_step"] = self.step_index
            reply["session_start_us"] = run.start_us
            reply["session_shift_us"] = run.shift_us
            reply["session_adjust_us"] = run.adjust_us
            reply["session_elapsed_us"] = min(max(run.elapsed(at), 0), total)
        return p.CAPABILITIES, reply

    def _plan_chunk(self, chunk):
        chunk_id = chunk["plan_id"]
        total = chunk["total_length"]
        offset = chunk["offset"]
        data = chunk["data"]
        if chunk_id == self.plan_id:
            return _ACK
        if self.state in _LIVE:
            return _nack(p.NACK_BUSY, "a session is running; stop it before sending a plan")
        if total > self.info.max_plan_bytes:
            return _nack(
                p.NACK_PLAN_TOO_LARGE,
                "plan of %d bytes; this band holds %d" % (total, self.info.max_plan_bytes),
            )
        if chunk_id != self._upload_id or offset == 0:
            self._upload_id = chunk_id
            self._upload = bytearray()
        if offset > len(self._upload):
            return _nack(p.NACK_MALFORMED, "chunk at %d, expected %d" % (offset, len(self._upload)))
        end = offset + len(data)
        if end > total:
            return _nack(p.NACK_MALFORMED, "chunk runs past the plan's total length")
        upload = self._upload
        if end > len(upload):
            upload.extend(bytes(end - len(upload)))
        upload[offset:end] = data
        if len(upload) < total:
            return _ACK
        return self._install_plan(bytes(upload), chunk_id)

    def _install_plan(self, data, expected_id):
        self._upload_id = None
        self._upload = bytearray()
        if p.plan_id(data) != expected_id:
            return _nack(p.NACK_PLAN_MISMATCH, "plan bytes do not hash to the plan id")
        try:
            plan = p.decode_plan(data)
        except p.ProtocolError as exc:
            return _nack(p.NACK_MALFORMED, str(exc)[:200])
        if len(plan.steps) > self.info.max_steps:
            return _nack(
                p.NACK_PLAN_TOO_LARGE, "%d steps; max %d" % (len(plan.steps), self.info.max_steps)
            )
        longest = 0
        for step in plan.steps:
            longest = max(longest, len(step.name.encode("utf-8")))
        if longest > self.info.max_name_length:
            return _nack(
                p.NACK_PLAN_TOO_LARGE,
                "a step name of %d bytes; max %d" % (longest, self.info.max_name_length),
            )
        self.plan = plan
        self.plan_id = expected_id
        self.timeline = p.build_timeline(plan)
        return _ACK

    def _start(self, fields, now_us):
        running = self._run
        session_id = fields["session_id"]
        if running is not None and self.state in _LIVE and session_id == running.session_id:
            return _ACK  # the same workout asked for again (a host that restarted)
        if self.plan_id is None or self.timeline is None:
            return _nack(p.NACK_NO_PLAN, "send the plan before START")
        if fields["plan_id"] != self.plan_id:
            return _nack(p.NACK_PLAN_MISMATCH, "START names a plan this band does not hold")
        if transition(self.state, T_START) is None:
            return _nack(
                p.NACK_BAD_STATE,
                "workout %08x is already running; stop it first" % running.session_id,
            )
        if session_id == 0:
            return _nack(p.NACK_OUT_OF_RANGE, "session_id 0 means no workout: pick 1..2**32-1")
        if running is not None and session_id == running.session_id:
            return _nack(p.NACK_OUT_OF_RANGE, "that session_id was the last workout's")
        start_at = fields["start_at_us"]
        late = now_us - start_at
        if late > MAX_START_LATE_US or -late > MAX_START_LEAD_US:
            return _nack(
                p.NACK_OUT_OF_RANGE,
                "start at %d us is %d us from the band's clock "
                "(%d us): sync the clocks first" % (start_at, late, now_us),
            )
        if start_at + self.timeline.total_us > MAX_BAND_TIME_US:
            return _nack(p.NACK_OUT_OF_RANGE, "the workout would end past the band's clock range")
        self._move(T_START)
        self._run = _Run(fields["plan_id"], start_at, session_id)
        self.round = 0
        self.step_index = p.REST_STEP
        return _ACK

    def _pause(self, now_us):
        run = self._run
        if self.state == p.PAUSED:
            return _nack(p.NACK_BAD_STATE, "the session is already paused")
        if run is None or transition(self.state, T_PAUSE) is None:
            return _nack(p.NACK_BAD_STATE, "no session is running")
        self._advance(run, now_us)  # fire what was due before the pause
        if not self._move(T_PAUSE):
            return _nack(p.NACK_BAD_STATE, "the session has just ended")
        run.paused_at_us = now_us
        self._report(p.PAUSED, now_us)
        return _ACK

    def _resume(self, now_us):
        run = self._run
        trigger = T_RESUME_REST if self._in_rest() else T_RESUME_EXERCISE
        if run is None or transition(self.state, trigger) is None:
            return _nack(p.NACK_BAD_STATE, "the session is not paused")
        paused_for = now_us - run.paused_at_us
        if not self._fits(run, run.shift_us + paused_for, run.adjust_us):
            return _nack(p.NACK_OUT_OF_RANGE, "the pause is too long for the band's clock")
        run.shift_us += paused_for
        self._move(trigger)
        self._report(self.state, now_us)
        return _ACK

    def _adjust(self, delta_us):
        run = self._run
        if run is None or transition(self.state, T_ADJUST) is None:
            return _nack(p.NACK_BAD_STATE, "no session to adjust")
        if not self._fits(run, run.shift_us, run.adjust_us + delta_us):
            return _nack(
                p.NACK_OUT_OF_RANGE,
                "an adjustment of %d us would put the rest of the "
                "timeline outside the band's clock" % delta_us,
            )
        run.adjust_us += delta_us
        return _ACK

    def _fits(self, run, shift_us, adjust_us):
        """Whether every time still to be reported stays in 0..MAX_BAND_TIME_US."""
        timeline = self.timeline
        anchor = run.start_us + shift_us + adjust_us
        upcoming = timeline.total_us
        if run.next_cue < len(timeline.cues):
            upcoming = min(upcoming, timeline.cues[run.next_cue][4])
        if run.next_segment < len(timeline.segments):
            upcoming = min(upcoming, timeline.segments[run.next_segment][2])
        return anchor + upcoming >= 0 and anchor + timeline.total_us <= MAX_BAND_TIME_US

    # -- the timeline --------------------------------------------------------------------

    def _in_rest(self):
        return self.step_index == p.REST_STEP and self.round > 0

    def _advance(self, run, now_us):
        timeline = self.timeline
        cues = timeline.cues
        segments = timeline.segments
        elapsed = run.elapsed(now_us)
        while True:
            segment_at = segments[run.next_segment][2] if run.next_segment < len(segments) else None
            cue_at = cues[run.next_cue][4] if run.next_cue < len(cues) else None
            # At equal times the step change is reported before its first cue.
            if (
                segment_at is not None
                and segment_at <= elapsed
                and (cue_at is None or segment_at <= cue_at)
            ):
                segment = segments[run.next_segment]
                run.next_segment += 1
                self.round = segment[0]
                self.step_index = segment[1]
                self._move(T_REST if self._in_rest() else T_EXERCISE)
                self._report(self.state, now_us, p.CAUSE_NONE, run.band_time_of(segment[2]))
            elif cue_at is not None and cue_at <= elapsed:
                cue_id, kind, round_number, step, offset = cues[run.next_cue]
                run.next_cue += 1
                self._fire(cue_id, kind, round_number, step, run.band_time_of(offset), now_us)
            else:
                break
        if elapsed >= timeline.total_us and run.next_cue >= len(cues):
            self._report(p.DONE, now_us)  # still stamped with the session
            run.ended_at_us = now_us
            self._move(T_FINISH)

    def _skip(self, now_us):
        run = self._run
        timeline = self.timeline
        if run is None or timeline is None or transition(self.state, T_SKIP) is None:
            return False
        paused = self.state == p.PAUSED
        if not paused:
            self._advance(run, now_us)  # what was due before the skip happens first
            if self.state not in _ACTIVE:
                return True  # the workout just ended: nothing left to skip
        elapsed = run.elapsed(run.paused_at_us if paused else now_us)
        target = timeline.next_segment_start_after(elapsed)
        if target is None:
            target = timeline.total_us
        run.shift_us -= max(target - elapsed, 0)  # never past the end
        cues = timeline.cues
        while run.next_cue < len(cues) and cues[run.next_cue][4] < target:
            run.next_cue += 1  # skipped cues are not played
        segments = timeline.segments
        while run.next_segment < len(segments) and segments[run.next_segment][2] < target:
            run.next_segment += 1  # nor reported: a step skipped before it began (paused)
        if not paused:
            self._advance(run, now_us)
        return True

    def _stop(self, cause, now_us):
        if transition(self.state, T_STOP) is None:
            return False
        self._fire(p.STOPPED_CUE_ID, p.CUE_STOPPED, self.round, self.step_index, now_us, now_us)
        self._report(p.STOPPED, now_us, cause)  # still stamped with the session
        if self._run is not None:
            self._run.ended_at_us = now_us
        self._move(T_STOP)
        return True

    def _fire(self, cue_id, kind, round_number, step, planned_us, now_us):
        pattern = self.plan.pattern_for(kind) if self.plan is not None else p.default_pattern(kind)
        self._motor.append((cue_id, kind, pattern, now_us))
        self._emit(
            p.CUE_FIRED,
            {
                "band_time_us": now_us,
                "cue_id": cue_id,
                "kind": kind,
                "round": round_number,
                "step_index": step,
                "planned_us": planned_us,
                "fired_us": now_us,
            },
            now_us,
        )

    def _report(self, state, now_us, cause=p.CAUSE_NONE, at_us=None):
        shift = self._run.shift_us if self._run is not None else 0
        self._emit(
            p.SESSION_STATE,
            {
                "band_time_us": now_us if at_us is None else at_us,
                "state": state,
                "round": self.round,
                "step_index": self.step_index,
                "shift_us": shift,
                "cause": cause,
            },
            now_us,
        )

    # -- the reliable event stream -------------------------------------------------------

    def _emit(self, message_type, fields, now_us):
        fields["event_number"] = self._next_event
        fields["session_id"] = self.session_id()
        self._next_event += 1
        if len(self._ring) >= self.ring_size:
            self._ring.pop(0)  # bounded memory: the oldest unacknowledged event is lost
            self.events_lost += 1
        entry = _Unacked(fields["event_number"], p.encode_frame(message_type, fields, 0))
        all_sent = True
        for older in self._ring:
            if older.sent_us is None:
                all_sent = False
                break
        self._ring.append(entry)
        if self.connected and all_sent:
            self._transmit(entry, now_us)

    def _transmit(self, entry, now_us):
        self._outgoing.extend(p.fragment(entry.frame, self.mtu - 3))
        entry.sent_us = now_us

    def _send_unacked(self, now_us, only_due):
        if not self.connected or not self._ring:
            return
        oldest = self._ring[0].sent_us
        if only_due and oldest is not None and now_us < oldest + self.retransmit_us:
            for entry in self._ring:  # events created while the link was down
                if entry.sent_us is None:
                    self._transmit(entry, now_us)
            return
        for entry in self._ring:  # go-back-N: resend everything unacknowledged, in order
            self._transmit(entry, now_us)

    def _on_event_ack(self, number):
        ring = self._ring
        drop = 0
        while drop < len(ring) and ring[drop].number <= number:
            drop += 1
        if drop:
            del ring[:drop]

    def _reply(self, seq, message_type, fields):
        frame = p.encode_frame(message_type, fields, seq)
        self._last_reply = frame
        if self.connected:
            self._outgoing.extend(p.fragment(frame, self.mtu - 3))

    def _nack_undecodable(self, frame, exc):
        try:
            message_type, seq = p.decode_header(frame)
        except p.ProtocolError:
            return
        if isinstance(exc, p.UnsupportedVersionError):
            code = p.NACK_UNSUPPORTED_VERSION
        elif message_type not in p.MESSAGES:
            code = p.NACK_UNKNOWN_COMMAND
        else:
            code = p.NACK_MALFORMED
        if self.connected:
            nack = p.encode_frame(p.NACK, {"code": code, "detail": str(exc)[:200]}, seq)
            self._outgoing.extend(p.fragment(nack, self.mtu - 3))


_ACK = (p.ACK, {})


def _nack(code, detail):
    return p.NACK, {"code": code, "detail": detail}
