"""Well-formed frames with extreme field values, on band clocks that start at 0.

A band counting microseconds from boot is near 0 when its first workout starts:
an ADJUST of -2e9 us, a START at 2**64-1 followed by a SKIP, a pause longer
than the band has been up: each must be refused with a NACK code, never raised,
and the band's state must only ever move along the table in ``_state.py``.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from firmware_protocol import messages as m
from firmware_protocol._state import LIVE, TRANSITIONS, Trigger, transition

from .strategies import u8, u32, u64

PLAN = fp.WirePlan(
    name="test",
    rounds=2,
    round_rest_ms=3_000,
    countdown=3,
    steps=(
        fp.WireStep("QL lifts", fp.StepKind.EXERCISE, 6_000, switch_side=True),
        fp.WireStep("Hip roll", fp.StepKind.EXERCISE, 5_000),
    ),
)
PLAN_BYTES = fp.encode_plan(PLAN)
PLAN_ID = fp.plan_id(PLAN_BYTES)
TIMELINE = fp.build_timeline(PLAN)
SECOND = 1_000_000
SESSION = 0x5E55_1D01
U64_MAX = 2**64 - 1
S = fp.SessionStateCode


class Wire:
    """A BandProtocol reached through real frames: commands in, replies and events out."""

    def __init__(self, *, plan: bool = True) -> None:
        self.band = fp.BandProtocol()
        self.band.connection_made(247, 0)
        self.now = 0  # the band's clock starts at boot
        self.events: list[fp.BandEvent] = []
        self.states: list[S] = [self.band.state]
        self._seq = 0
        self._reassembler = fp.Reassembler()
        assert isinstance(self.command(fp.Hello(2, 2)), fp.Capabilities)
        if plan:
            chunk = fp.PlanChunk(PLAN_ID, len(PLAN_BYTES), 0, PLAN_BYTES)
            assert isinstance(self.command(chunk), fp.Ack)

    def command(self, command: fp.Command) -> fp.Reply:
        self._seq = self._seq % 0xFFFF + 1
        for piece in fp.fragment(fp.encode_frame(command, self._seq), 244):
            self.band.receive_data(piece, self.now)
        replies = self._drain()
        assert len(replies) == 1, replies
        return replies[0]

    def raw(self, frame: bytes) -> list[fp.Reply]:
        for piece in fp.fragment(frame, 244):
            self.band.receive_data(piece, self.now)
        return self._drain()

    def press(self, button: fp.Button) -> None:
        self.band.press_button(button, self.now)
        self._drain()

    def run_until(self, until_us: int) -> None:
        while (deadline := self.band.next_deadline_us()) is not None and deadline <= until_us:
            self.now = max(self.now, deadline)
            self.band.tick(self.now)
            self._drain()
        self.now = max(self.now, until_us)
        self.band.tick(self.now)
        self._drain()

    def _drain(self) -> list[fp.Reply]:
        replies: list[fp.Reply] = []
        for piece in self.band.data_to_send():
            whole = self._reassembler.feed(piece)
            if whole is None:
                continue
            message = fp.decode_frame(whole).message  # every frame the band sends decodes
            if isinstance(message, m.EVENT_TYPES):
                if not self.events or message.event_number > self.events[-1].event_number:
                    self.events.append(message)
            else:
                assert isinstance(message, m.REPLY_TYPES)
                replies.append(message)
        if self.events:
            ack = fp.encode_frame(fp.EventAck(self.events[-1].event_number), 0)
            for piece in fp.fragment(ack, 244):
                self.band.receive_data(piece, self.now)
        if self.band.state is not self.states[-1]:
            self.states.append(self.band.state)
        return replies

    def nack(self, command: fp.Command) -> fp.NackCode:
        reply = self.command(command)
        assert isinstance(reply, fp.Nack), reply
        return reply.code


def _reported_states(events: list[fp.BandEvent]) -> list[S]:
    """The band's states as its SessionState events tell them (a START is implied: RUNNING)."""
    states, current = [S.IDLE], 0
    for event in events:
        if isinstance(event, fp.SessionState):
            if event.session_id != current:
                states.append(S.RUNNING)
                current = event.session_id
            states.append(event.state)
    return states


def _legal(states: list[S]) -> bool:
    return all(
        any(transition(before, trigger) is after for trigger in Trigger)
        for before, after in itertools.pairwise(states)
    )


def _done(wire: Wire) -> bool:
    return any(
        isinstance(e, fp.SessionState) and e.state is S.DONE and e.session_id == SESSION
        for e in wire.events
    )


def test_an_adjust_that_makes_a_planned_time_negative_is_nacked_and_the_workout_completes() -> None:
    wire = Wire()
    assert isinstance(wire.command(fp.Start(PLAN_ID, SECOND // 2, SESSION)), fp.Ack)
    wire.run_until(SECOND)
    assert wire.nack(fp.Adjust(-2_000_000_000)) is fp.NackCode.OUT_OF_RANGE
    for _ in range(3):  # nor does a run of smaller ones add up past the clock's start
        wire.command(fp.Adjust(-(2**31)))
    wire.run_until(60 * SECOND)
    assert _done(wire)
    cues = [e for e in wire.events if isinstance(e, fp.CueFired)]
    assert [e.cue_id for e in cues] == [c.cue_id for c in TIMELINE.cues]
    assert all(e.planned_us >= 0 for e in cues)


def test_a_start_at_the_end_of_the_clock_is_nacked_and_a_skip_then_finds_no_workout() -> None:
    wire = Wire()
    assert wire.nack(fp.Start(PLAN_ID, U64_MAX, SESSION)) is fp.NackCode.OUT_OF_RANGE
    assert wire.nack(fp.Skip()) is fp.NackCode.BAD_STATE
    wire.press(fp.Button.SKIP)
    assert wire.band.state is S.IDLE
    # The band is still fine: a sensible START runs to the end.
    assert isinstance(wire.command(fp.Start(PLAN_ID, SECOND, SESSION)), fp.Ack)
    wire.run_until(60 * SECOND)
    assert _done(wire)


def test_a_start_too_far_behind_or_ahead_of_the_band_clock_is_nacked() -> None:
    wire = Wire()
    wire.run_until(200 * SECOND)
    assert wire.nack(fp.Start(PLAN_ID, 0, SESSION)) is fp.NackCode.OUT_OF_RANGE
    ahead = wire.now + fp.MAX_START_LEAD_US + 1
    assert wire.nack(fp.Start(PLAN_ID, ahead, SESSION)) is fp.NackCode.OUT_OF_RANGE
    assert wire.nack(fp.Start(PLAN_ID, wire.now, 0)) is fp.NackCode.OUT_OF_RANGE
    assert wire.band.state is S.IDLE


def test_paused_is_a_state_of_the_band_and_the_table_allows_only_its_moves() -> None:
    wire = Wire()
    wire.command(fp.Start(PLAN_ID, SECOND, SESSION))
    wire.run_until(3 * SECOND)
    assert isinstance(wire.command(fp.Pause()), fp.Ack)
    assert wire.band.state is S.PAUSED
    assert wire.nack(fp.Pause()) is fp.NackCode.BAD_STATE
    assert wire.nack(fp.PlanChunk(PLAN_ID[::-1], 10, 0, b"x")) is fp.NackCode.BUSY
    wire.run_until(100 * SECOND)
    assert wire.band.state is S.PAUSED  # nothing moves while paused
    assert isinstance(wire.command(fp.Resume()), fp.Ack)
    assert wire.band.state is S.RUNNING
    wire.run_until(200 * SECOND)
    assert wire.states == [S.IDLE, S.RUNNING, S.PAUSED, S.RUNNING, S.ROUND_REST, S.RUNNING, S.DONE]
    assert _legal(wire.states)


def test_every_known_state_has_its_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(S)
    assert transition(S.PAUSED, Trigger.PAUSE) is None
    assert transition(S.DONE, Trigger.STOP) is None
    assert transition(S.ROUND_REST, Trigger.EXERCISE) is S.RUNNING
    assert transition(S(0x7F), Trigger.START) is None  # an unknown state allows nothing


def test_capabilities_names_the_running_workout_and_where_it_stands() -> None:
    wire = Wire()
    start = SECOND
    wire.command(fp.Start(PLAN_ID, start, SESSION))
    wire.run_until(start + 8 * SECOND)
    wire.command(fp.Pause())
    wire.run_until(start + 20 * SECOND)
    caps = wire.command(fp.Hello(2, 2))
    assert isinstance(caps, fp.Capabilities)
    assert caps.workout_running
    assert (caps.session_id, caps.session_state) == (SESSION, S.PAUSED)
    assert (caps.session_round, caps.session_step) == (1, 1)
    assert (caps.session_start_us, caps.session_shift_us) == (start, 0)
    assert caps.session_elapsed_us == 8 * SECOND
    wire.command(fp.Stop())
    caps = wire.command(fp.Hello(2, 2))
    assert isinstance(caps, fp.Capabilities)
    assert (caps.session_id, caps.session_state, caps.workout_running) == (
        SESSION,
        S.STOPPED,
        False,
    )


def test_every_event_carries_its_workout_and_none_between_workouts() -> None:
    wire = Wire()
    wire.band.record_heart_rate(60, (), True, wire.now)
    wire.command(fp.Start(PLAN_ID, SECOND, SESSION))
    wire.run_until(2 * SECOND)
    wire.band.record_heart_rate(61, (), True, wire.now)
    wire.run_until(60 * SECOND)
    wire.band.record_heart_rate(62, (), True, wire.now)
    wire.command(fp.Start(PLAN_ID, wire.now + SECOND, SESSION + 1))
    wire.run_until(wire.now + 2 * SECOND)
    hr = {e.bpm: e.session_id for e in wire.events if isinstance(e, fp.HeartRateSample)}
    assert hr == {60: 0, 61: SESSION, 62: 0}
    first = [e for e in wire.events if not isinstance(e, fp.HeartRateSample) and e.session_id]
    done = next(
        i for i, e in enumerate(first) if isinstance(e, fp.SessionState) and e.state is S.DONE
    )
    assert {e.session_id for e in first[: done + 1]} == {SESSION}
    assert {e.session_id for e in first[done + 1 :]} == {SESSION + 1}


def test_a_start_of_the_running_workout_again_is_acknowledged_and_another_is_refused() -> None:
    wire = Wire()
    wire.command(fp.Start(PLAN_ID, SECOND, SESSION))
    wire.run_until(2 * SECOND)
    assert isinstance(wire.command(fp.Start(PLAN_ID, 2 * SECOND, SESSION)), fp.Ack)
    assert wire.nack(fp.Start(PLAN_ID, 2 * SECOND, SESSION + 1)) is fp.NackCode.BAD_STATE
    assert wire.band.session_id == SESSION


# -- whatever a host sends, well formed, the band answers and never raises ----------------------

extreme_u64 = st.one_of(st.sampled_from([0, 1, 2**62, 2**63 - 1, 2**63, U64_MAX - 1, U64_MAX]), u64)
extreme_i32 = st.one_of(
    st.sampled_from([-(2**31), -2_000_000_000, -1, 0, 1, 2**31 - 1]),
    st.integers(-(2**31), 2**31 - 1),
)
steps = st.one_of(
    st.builds(
        lambda at, sid: fp.Start(PLAN_ID, at, sid),
        extreme_u64,
        st.sampled_from([0, 1, SESSION, 2**32 - 1]),
    ),
    st.builds(lambda sid: fp.Start(PLAN_ID, 0, sid), u32),
    st.just(fp.Pause()),
    st.just(fp.Resume()),
    st.just(fp.Stop()),
    st.just(fp.Skip()),
    st.builds(fp.Adjust, extreme_i32),
    st.builds(fp.TimeSyncRequest, extreme_u64),
    st.builds(fp.Hello, u8, u8),
    st.builds(fp.EventAck, u32),
    st.sampled_from(list(fp.Button)),
    st.integers(0, 400 * SECOND),  # let the band's clock run
    st.sampled_from(["start-now"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=40))
def test_well_formed_commands_with_extreme_values_are_answered_never_raised(
    script: list[object],
) -> None:
    wire = Wire()
    for step in script:
        if isinstance(step, fp.Button):
            wire.press(step)
        elif isinstance(step, int):
            wire.run_until(wire.now + step)
        elif step == "start-now":
            wire.command(fp.Start(PLAN_ID, wire.now + 1, SESSION))
        elif isinstance(step, fp.EventAck):
            wire.raw(fp.encode_frame(step, 0))
        else:
            assert isinstance(step, m.COMMAND_TYPES)
            wire.command(step)
        assert wire.band.errors == 0
    wire.command(fp.Resume())  # a pause would hold the workout forever
    # The band accepts any ADJUST that keeps its timeline on its clock: each later one
    # pushes the end further (two of +2,147 s put it past a fixed horizon).
    delayed_us = sum(max(0, step.delta_us) for step in script if isinstance(step, fp.Adjust))
    wire.run_until(wire.now + fp.MAX_START_LEAD_US + 400 * SECOND + delayed_us)
    assert _legal(_reported_states(wire.events)), _reported_states(wire.events)
    live = [e for e in wire.events if isinstance(e, fp.SessionState)]
    assert all(e.session_id for e in live if e.state in LIVE | {S.DONE, S.STOPPED})
    assert wire.band.state not in LIVE  # whatever happened, every workout came to its end
