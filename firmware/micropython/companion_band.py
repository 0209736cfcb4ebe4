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
_ACTIVE = (p.RUNNING, p.ROUND_REST)
_LIVE = (p.RUNNING, p.ROUND_REST, p.PAUSED)


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
    """The running session's position on the timeline."""

    __slots__ = ("adjust_us", "next_cue", "next_segment", "paused_at_us", "plan_id",
                 "shift_us", "start_us")

    def __init__(self, plan_id, start_us):
        self.plan_id = plan_id
        self.start_us = start_us
        self.shift_us = 0  # pauses add, skips subtract (reported to the host)
        self.adjust_us = 0  # host drift corrections (not reported)
        self.next_cue = 0
        self.next_segment = 0
        self.paused_at_us = None

    def elapsed(self, now_us):
        at = self.paused_at_us if self.paused_at_us is not None else now_us
        return at - self.start_us - self.shift_us - self.adjust_us

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
            self._reply(seq, p.NACK, {"code": p.NACK_UNKNOWN_COMMAND,
                                      "detail": p.MESSAGES[message_type][0]})
            return
        if self._is_duplicate(seq, message_type == p.HELLO):
            return
        if message_type == p.HELLO:
            self._hello_seq = seq
        self._last_seq = seq
        self.commands_applied += 1
        reply_type, reply = self._apply(message_type, fields, now_us)
        self._reply(seq, reply_type, reply)
        self.tick(now_us)

    def tick(self, now_us):
        """Fire what is due, advance the session, retransmit overdue events."""
        run = self._run
        if run is not None and run.paused_at_us is None and self.state in _ACTIVE:
            self._advance(run, now_us)
        self._send_unacked(now_us, True)

    def press_button(self, button, now_us):
        self._emit(p.BUTTON_PRESSED, {"band_time_us": now_us, "button": button}, now_us)
        if button == p.BUTTON_STOP:
            self._stop(p.CAUSE_BUTTON, now_us)
        elif button == p.BUTTON_PAIN:
            self._stop(p.CAUSE_PAIN, now_us)
        elif button == p.BUTTON_SKIP and self._run is not None:
            self._skip(self._run, now_us)

    def record_heart_rate(self, bpm, rr_1024, contact, now_us):
        self._emit(
            p.HEART_RATE_SAMPLE,
            {"band_time_us": now_us, "bpm": bpm, "contact": bool(contact),
             "rr_1024": list(rr_1024)},
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
        if run is not None and run.paused_at_us is None and timeline is not None \
                and self.state in _ACTIVE:
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
            return p.TIME_SYNC_RESPONSE, {"host_send_us": fields["host_send_us"],
                                          "band_receive_us": now_us, "band_send_us": now_us}
        if message_type == p.PLAN_CHUNK:
            return self._plan_chunk(fields)
        if message_type == p.START:
            return self._start(fields)
        if message_type == p.PAUSE:
            return self._pause(now_us)
        if message_type == p.RESUME:
            return self._resume(now_us)
        if message_type == p.SKIP:
            if self._run is None or self.state not in _ACTIVE:
                return _nack(p.NACK_BAD_STATE, "no session is running")
            self._skip(self._run, now_us)
            return _ACK
        if message_type == p.STOP:
            if self.state not in _LIVE:
                return _nack(p.NACK_BAD_STATE, "no session is running")
            self._stop(p.CAUSE_HOST, now_us)
            return _ACK
        if message_type == p.ADJUST:
            if self._run is None:
                return _nack(p.NACK_BAD_STATE, "no session to adjust")
            self._run.adjust_us += fields["delta_us"]
            return _ACK
        return _nack(p.NACK_UNKNOWN_COMMAND, p.MESSAGES[message_type][0])

    def _hello(self, fields, now_us):
        low = fields["min_version"]
        high = fields["max_version"]
        if not low <= p.PROTOCOL_VERSION <= high:
            return _nack(p.NACK_UNSUPPORTED_VERSION,
                         "band speaks v%d, host v%d..v%d" % (p.PROTOCOL_VERSION, low, high))
        info = self.info
        return p.CAPABILITIES, {
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
        }

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
            return _nack(p.NACK_PLAN_TOO_LARGE, "plan of %d bytes; this band holds %d"
                         % (total, self.info.max_plan_bytes))
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
            return _nack(p.NACK_PLAN_TOO_LARGE,
                         "%d steps; max %d" % (len(plan.steps), self.info.max_steps))
        longest = 0
        for step in plan.steps:
            longest = max(longest, len(step.name.encode("utf-8")))
        if longest > self.info.max_name_length:
            return _nack(p.NACK_PLAN_TOO_LARGE, "a step name of %d bytes; max %d"
                         % (longest, self.info.max_name_length))
        self.plan = plan
        self.plan_id = expected_id
        self.timeline = p.build_timeline(plan)
        return _ACK

    def _start(self, fields):
        if self.plan_id is None:
            return _nack(p.NACK_NO_PLAN, "send the plan before START")
        if fields["plan_id"] != self.plan_id:
            return _nack(p.NACK_PLAN_MISMATCH, "START names a plan this band does not hold")
        if self.state in _LIVE:
            return _nack(p.NACK_BAD_STATE, "a session is already running")
        self._run = _Run(fields["plan_id"], fields["start_at_us"])
        self.state = p.RUNNING
        self.round = 0
        self.step_index = p.REST_STEP
        return _ACK

    def _pause(self, now_us):
        run = self._run
        if run is None or self.state not in _ACTIVE:
            return _nack(p.NACK_BAD_STATE, "no session is running")
        if run.paused_at_us is not None:
            return _nack(p.NACK_BAD_STATE, "the session is already paused")
        self._advance(run, now_us)
        if self.state not in _ACTIVE:
            return _nack(p.NACK_BAD_STATE, "the session has just ended")
        run.paused_at_us = now_us
        self._report(p.PAUSED, now_us)
        return _ACK

    def _resume(self, now_us):
        run = self._run
        if run is None or run.paused_at_us is None:
            return _nack(p.NACK_BAD_STATE, "the session is not paused")
        run.shift_us += now_us - run.paused_at_us
        run.paused_at_us = None
        self._report(self._running_state(), now_us)
        return _ACK

    # -- the timeline --------------------------------------------------------------------

    def _running_state(self):
        return p.ROUND_REST if self.step_index == p.REST_STEP else p.RUNNING

    def _advance(self, run, now_us):
        timeline = self.timeline
        cues = timeline.cues
        segments = timeline.segments
        elapsed = run.elapsed(now_us)
        while True:
            segment_at = segments[run.next_segment][2] if run.next_segment < len(segments) \
                else None
            cue_at = cues[run.next_cue][4] if run.next_cue < len(cues) else None
            # At equal times the step change is reported before its first cue.
            if segment_at is not None and segment_at <= elapsed and \
                    (cue_at is None or segment_at <= cue_at):
                segment = segments[run.next_segment]
                run.next_segment += 1
                self.round = segment[0]
                self.step_index = segment[1]
                self._report(self._running_state(), now_us, p.CAUSE_NONE,
                             run.band_time_of(segment[2]))
            elif cue_at is not None and cue_at <= elapsed:
                cue_id, kind, round_number, step, offset = cues[run.next_cue]
                run.next_cue += 1
                self._fire(cue_id, kind, round_number, step, run.band_time_of(offset), now_us)
            else:
                break
        if elapsed >= timeline.total_us and run.next_cue >= len(cues):
            self.state = p.DONE
            self._report(p.DONE, now_us)
            self._run = None

    def _skip(self, run, now_us):
        timeline = self.timeline
        elapsed = run.elapsed(now_us)
        target = timeline.next_segment_start_after(elapsed)
        if target is None:
            target = timeline.total_us
        run.shift_us -= target - elapsed
        cues = timeline.cues
        while run.next_cue < len(cues) and cues[run.next_cue][4] < target:
            run.next_cue += 1  # skipped cues are not played
        if run.paused_at_us is None:
            self._advance(run, now_us)

    def _stop(self, cause, now_us):
        if self.state not in _LIVE:
            return
        self._fire(p.STOPPED_CUE_ID, p.CUE_STOPPED, self.round, self.step_index, now_us, now_us)
        self.state = p.STOPPED
        self._report(p.STOPPED, now_us, cause)
        self._run = None

    def _fire(self, cue_id, kind, round_number, step, planned_us, now_us):
        pattern = self.plan.pattern_for(kind) if self.plan is not None else p.default_pattern(kind)
        self._motor.append((cue_id, kind, pattern, now_us))
        self._emit(
            p.CUE_FIRED,
            {"band_time_us": now_us, "cue_id": cue_id, "kind": kind, "round": round_number,
             "step_index": step, "planned_us": planned_us, "fired_us": now_us},
            now_us,
        )

    def _report(self, state, now_us, cause=p.CAUSE_NONE, at_us=None):
        shift = self._run.shift_us if self._run is not None else 0
        if state in _ACTIVE:
            self.state = state
        self._emit(
            p.SESSION_STATE,
            {"band_time_us": now_us if at_us is None else at_us, "state": state,
             "round": self.round, "step_index": self.step_index, "shift_us": shift,
             "cause": cause},
            now_us,
        )

    # -- the reliable event stream -------------------------------------------------------

    def _emit(self, message_type, fields, now_us):
        fields["event_number"] = self._next_event
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
