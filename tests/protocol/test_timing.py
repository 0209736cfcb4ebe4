"""Time sync arithmetic and the workout timeline, with numbers worked out by hand.

The reference plan is the built-in back workout (``companion/plans/back-5.toml``):
five one-minute moves, a "switch side" at half time of the first, a 3-2-1
countdown before every transition.
"""

from __future__ import annotations

import dataclasses

import pytest

import firmware_protocol as fp

SECOND = 1_000_000
CK = fp.CueKind

BACK_5 = fp.WirePlan(
    name="back-5",
    rounds=1,
    round_rest_ms=0,
    countdown=3,
    steps=(
        fp.WireStep("QL lifts", fp.StepKind.EXERCISE, 60_000, switch_side=True),
        fp.WireStep("Hip roll", fp.StepKind.EXERCISE, 60_000),
        fp.WireStep("Cat scratch", fp.StepKind.EXERCISE, 60_000),
        fp.WireStep("Superman", fp.StepKind.EXERCISE, 60_000),
        fp.WireStep("Crunches", fp.StepKind.EXERCISE, 60_000),
    ),
)


# -- time sync -------------------------------------------------------------------------------


def test_one_exchange_gives_offset_and_delay_by_the_ntp_formulas() -> None:
    # host sends at 1000, band receives at 6000 and answers at 6100, host receives at 1300:
    # offset = ((6000 - 1000) + (6100 - 1300)) / 2 = (5000 + 4800) / 2 = 4900
    # delay  = (1300 - 1000) - (6100 - 6000)       = 300 - 100        = 200
    sample = fp.TimeSyncSample(t1=1_000, t2=6_000, t3=6_100, t4=1_300)
    assert sample.offset_us == 4_900
    assert sample.delay_us == 200


def test_symmetric_link_gives_the_true_offset_exactly() -> None:
    # Band clock = host clock + 5 s; 10 ms each way; the band takes 50 us to answer.
    sample = fp.TimeSyncSample(t1=0, t2=5_010_000, t3=5_010_050, t4=20_050)
    assert sample.offset_us == 5_000_000
    assert sample.delay_us == 20_000


def test_asymmetric_link_errs_by_half_the_asymmetry_within_half_the_delay() -> None:
    # True offset 5 s; 30 ms out, 10 ms back: the estimate is off by (30 - 10) / 2 = 10 ms,
    # which is within half the 40 ms round trip, the bound NTP promises.
    sample = fp.TimeSyncSample(t1=0, t2=5_030_000, t3=5_030_000, t4=40_000)
    assert sample.offset_us == 5_010_000
    assert sample.delay_us == 40_000
    assert abs(sample.offset_us - 5_000_000) <= sample.delay_us / 2


def _sample(at: int, offset: int, out: int, back: int) -> fp.TimeSyncSample:
    """An exchange started at host time ``at`` over a link ``out`` us out and ``back`` us back."""
    t2 = at + out + offset
    return fp.TimeSyncSample(at, t2, t2, at + out + back)


def test_estimate_keeps_the_three_lowest_delay_samples_and_takes_their_median() -> None:
    samples = [
        _sample(0, 5_000_000, 10_000, 10_000),  # delay 20 ms, offset 5.000 s
        _sample(100_000, 5_000_000, 102_000, 8_000),  # delay 110 ms, offset 5.047 s: slow, skewed
        _sample(200_000, 5_000_000, 12_000, 12_000),  # delay 24 ms, offset 5.000 s
        _sample(300_000, 5_000_000, 12_000, 10_000),  # delay 22 ms, offset 5.001 s
        _sample(400_000, 5_000_000, 5_000, 195_000),  # delay 200 ms, offset 4.905 s: skewed back
    ]
    assert [s.delay_us for s in samples] == [20_000, 110_000, 24_000, 22_000, 200_000]
    assert [s.offset_us for s in samples] == [5_000_000, 5_047_000, 5_000_000, 5_001_000, 4_905_000]
    estimate = fp.estimate_offset(samples)
    # kept: delays 20, 22 and 24 ms, offsets 5.000, 5.001 and 5.000 s -> median 5.000 s;
    # uncertainty = largest kept delay / 2 + spread of kept offsets = 12 ms + 1 ms
    assert estimate == fp.ClockEstimate(offset_us=5_000_000, uncertainty_us=13_000, samples=5)


def test_estimate_from_the_single_best_sample_is_bounded_by_half_its_delay() -> None:
    samples = [_sample(0, -2_000, 3_000, 1_000), _sample(50_000, -2_000, 9_000, 9_000)]
    # best: delay 4 ms, offset -2 ms + (3 - 1) / 2 ms = -1 ms
    assert fp.estimate_offset(samples, keep=1) == fp.ClockEstimate(-1_000, 2_000, 2)


def test_estimate_with_two_kept_samples_takes_the_mean_of_the_middle_pair() -> None:
    samples = [_sample(0, 100, 1_000, 1_000), _sample(10_000, 300, 1_000, 1_000)]
    # offsets 100 and 300 us, both delays 2 ms: median 200; uncertainty 1 ms + 200 us spread
    assert fp.estimate_offset(samples, keep=2) == fp.ClockEstimate(200, 1_200, 2)


def test_samples_with_a_negative_delay_are_ignored() -> None:
    broken = fp.TimeSyncSample(
        t1=1_000, t2=5_000, t3=9_000, t4=2_000
    )  # 1 ms round trip, 4 ms inside
    assert broken.delay_us == -3_000
    good = _sample(0, 700, 2_000, 2_000)
    assert fp.estimate_offset([broken, good]) == fp.ClockEstimate(700, 2_000, 1)


def test_no_usable_sample_is_a_local_protocol_error() -> None:
    broken = fp.TimeSyncSample(t1=1_000, t2=5_000, t3=9_000, t4=2_000)
    with pytest.raises(fp.LocalProtocolError, match="no usable time sync sample"):
        fp.estimate_offset([broken])
    with pytest.raises(fp.LocalProtocolError):
        fp.estimate_offset([])


# -- the timeline ------------------------------------------------------------------------------


def _cues(timeline: fp.Timeline) -> list[tuple[float, CK, int, int]]:
    return [(c.offset_us / SECOND, c.kind, c.round, c.step_index) for c in timeline.cues]


def test_back_workout_cues_fall_where_the_plan_says() -> None:
    timeline = fp.build_timeline(BACK_5)
    expected = [
        (0, CK.NEXT_EXERCISE, 1, 0),
        (30, CK.SWITCH_SIDE, 1, 0),  # half time of "QL lifts"
        (57, CK.COUNTDOWN, 1, 0),
        (58, CK.COUNTDOWN, 1, 0),
        (59, CK.COUNTDOWN, 1, 0),
    ]
    for step in range(1, 5):
        start = 60 * step
        expected += [
            (start, CK.NEXT_EXERCISE, 1, step),
            (start + 57, CK.COUNTDOWN, 1, step),
            (start + 58, CK.COUNTDOWN, 1, step),
            (start + 59, CK.COUNTDOWN, 1, step),
        ]
    expected.append((300, CK.WORKOUT_DONE, 1, 4))
    assert _cues(timeline) == expected
    assert [c.cue_id for c in timeline.cues] == list(range(22))
    assert timeline.total_us == 300 * SECOND
    assert [(s.step_index, s.start_us, s.end_us) for s in timeline.segments] == [
        (i, 60 * i * SECOND, 60 * (i + 1) * SECOND) for i in range(5)
    ]


def test_switch_side_falls_at_half_of_an_odd_duration_to_the_microsecond() -> None:
    plan = dataclasses.replace(
        BACK_5, countdown=0, steps=(fp.WireStep("plank", fp.StepKind.EXERCISE, 45_001, True),)
    )
    (switch,) = [c for c in fp.build_timeline(plan).cues if c.kind is CK.SWITCH_SIDE]
    assert switch.offset_us == 22_500_500


def test_countdown_gives_way_to_switch_side_and_never_precedes_the_step() -> None:
    plan = dataclasses.replace(
        BACK_5,
        countdown=5,
        steps=(
            fp.WireStep("short", fp.StepKind.EXERCISE, 6_000, switch_side=True),
            fp.WireStep("shorter", fp.StepKind.EXERCISE, 2_000),
        ),
    )
    assert _cues(fp.build_timeline(plan)) == [
        (0, CK.NEXT_EXERCISE, 1, 0),
        # 5-4-3-2-1 before 6 s would be 1..5 s: 3 s is the switch side's, so it is dropped
        (1, CK.COUNTDOWN, 1, 0),
        (2, CK.COUNTDOWN, 1, 0),
        (3, CK.SWITCH_SIDE, 1, 0),
        (4, CK.COUNTDOWN, 1, 0),
        (5, CK.COUNTDOWN, 1, 0),
        (6, CK.NEXT_EXERCISE, 1, 1),
        # a 2 s step has room for one tick after its start: 7 s
        (7, CK.COUNTDOWN, 1, 1),
        (8, CK.WORKOUT_DONE, 1, 1),
    ]


def test_round_rest_gets_round_done_its_own_segment_and_a_countdown() -> None:
    plan = dataclasses.replace(BACK_5, rounds=2, round_rest_ms=20_000)
    timeline = fp.build_timeline(plan)
    around_rest = [c for c in _cues(timeline) if 299 <= c[0] <= 320]
    assert around_rest == [
        (299, CK.COUNTDOWN, 1, 4),
        (300, CK.ROUND_DONE, 1, 4),
        (317, CK.COUNTDOWN, 1, fp.REST_STEP),
        (318, CK.COUNTDOWN, 1, fp.REST_STEP),
        (319, CK.COUNTDOWN, 1, fp.REST_STEP),
        (320, CK.NEXT_EXERCISE, 2, 0),
    ]
    assert fp.Segment(1, fp.REST_STEP, 300 * SECOND, 320 * SECOND) in timeline.segments
    assert _cues(timeline)[-1] == (620, CK.WORKOUT_DONE, 2, 4)
    assert timeline.total_us == 620 * SECOND
    assert len(timeline.cues) == 2 * 21 + 1 + 3 + 1  # two rounds, round done, rest countdown, end


def test_without_round_rest_round_done_comes_just_before_the_next_round_starts() -> None:
    timeline = fp.build_timeline(dataclasses.replace(BACK_5, rounds=2))
    at_300 = [(c.kind, c.round) for c in timeline.cues if c.offset_us == 300 * SECOND]
    assert at_300 == [(CK.ROUND_DONE, 1), (CK.NEXT_EXERCISE, 2)]
    assert all(s.step_index != fp.REST_STEP for s in timeline.segments)


def test_segment_lookup_at_the_boundaries() -> None:
    timeline = fp.build_timeline(BACK_5)
    assert timeline.segment_at(-1) is None
    first = timeline.segment_at(0)
    assert first is not None
    assert first.step_index == 0
    just_before = timeline.segment_at(60 * SECOND - 1)
    assert just_before is not None
    assert just_before.step_index == 0
    at_boundary = timeline.segment_at(60 * SECOND)
    assert at_boundary is not None
    assert at_boundary.step_index == 1
    assert timeline.segment_at(300 * SECOND) is None
    assert timeline.next_segment_start_after(0) == 60 * SECOND
    assert timeline.next_segment_start_after(60 * SECOND) == 120 * SECOND
    assert timeline.next_segment_start_after(250 * SECOND) is None


# -- the band runs the timeline: pause and drift shifts -------------------------------------------


class _Driver:
    """A BandProtocol driven by hand: commands in, every event out and acknowledged."""

    def __init__(self, plan: fp.WirePlan, start_us: int) -> None:
        self.band = fp.BandProtocol()
        self.band.connection_made(247, 0)
        self.events: list[fp.BandEvent] = []
        self._seq = 0
        self._reassembler = fp.Reassembler()
        data = fp.encode_plan(plan)
        plan_id = fp.plan_id(data)
        for command in (
            fp.Hello(2, 2),
            fp.PlanChunk(plan_id, len(data), 0, data),
            fp.Start(plan_id, start_us, 1),
        ):
            assert not isinstance(self.command(command, 0), fp.Nack)

    def command(self, command: fp.Command, now_us: int) -> fp.Reply:
        self._seq += 1
        for piece in fp.fragment(fp.encode_frame(command, self._seq), 244):
            self.band.receive_data(piece, now_us)
        replies = self._drain(now_us)
        assert len(replies) == 1
        return replies[0]

    def run_until(self, until_us: int) -> None:
        while (deadline := self.band.next_deadline_us()) is not None and deadline <= until_us:
            self.band.tick(deadline)
            self._drain(deadline)

    def _drain(self, now_us: int) -> list[fp.Reply]:
        replies: list[fp.Reply] = []
        for piece in self.band.data_to_send():
            whole = self._reassembler.feed(piece)
            if whole is None:
                continue
            message = fp.decode_frame(whole).message
            if isinstance(message, fp.CueFired | fp.SessionState):
                self.events.append(message)
            else:
                assert isinstance(message, fp.Ack | fp.Nack | fp.Capabilities | fp.TimeSyncResponse)
                replies.append(message)
        if self.events:
            ack = fp.encode_frame(fp.EventAck(self.events[-1].event_number), 0)
            for piece in fp.fragment(ack, 244):
                self.band.receive_data(piece, now_us)
        return replies


def test_pause_shifts_every_remaining_cue_by_the_pause_and_nothing_fires_meanwhile() -> None:
    start = 1 * SECOND
    driver = _Driver(BACK_5, start)
    driver.run_until(start + 40 * SECOND)
    before = driver.band.motor_actions()
    assert [(a.kind, a.at_us) for a in before] == [
        (CK.NEXT_EXERCISE, start),
        (CK.SWITCH_SIDE, start + 30 * SECOND),
    ]
    assert isinstance(driver.command(fp.Pause(), start + 40 * SECOND), fp.Ack)
    driver.run_until(start + 70 * SECOND)
    assert driver.band.motor_actions() == []  # the 57-58-59 s countdown did not play
    assert isinstance(driver.command(fp.Resume(), start + 70 * SECOND), fp.Ack)
    driver.run_until(start + 400 * SECOND)

    after = driver.band.motor_actions()
    planned = fp.build_timeline(BACK_5).cues[2:]
    assert [(a.cue_id, a.at_us) for a in after] == [
        (c.cue_id, start + 30 * SECOND + c.offset_us) for c in planned
    ]
    fired = [e for e in driver.events if isinstance(e, fp.CueFired)]
    assert all(e.planned_us == e.fired_us for e in fired)
    states = [
        (e.state, e.band_time_us, e.shift_us)
        for e in driver.events
        if isinstance(e, fp.SessionState)
    ]
    assert (fp.SessionStateCode.PAUSED, start + 40 * SECOND, 0) in states
    assert (fp.SessionStateCode.RUNNING, start + 70 * SECOND, 30 * SECOND) in states
    assert states[-1][0] is fp.SessionStateCode.DONE


def test_adjust_moves_the_remaining_cues_without_reporting_a_shift() -> None:
    start = 1 * SECOND
    driver = _Driver(BACK_5, start)
    driver.run_until(start + 10 * SECOND)
    assert isinstance(driver.command(fp.Adjust(-1_500), start + 10 * SECOND), fp.Ack)
    driver.run_until(start + 31 * SECOND)
    actions = driver.band.motor_actions()
    assert [(a.kind, a.at_us) for a in actions] == [
        (CK.NEXT_EXERCISE, start),
        (CK.SWITCH_SIDE, start + 30 * SECOND - 1_500),
    ]
    assert all(e.shift_us == 0 for e in driver.events if isinstance(e, fp.SessionState))
