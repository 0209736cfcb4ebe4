"""The session tracker on its own: band events in, session events and snapshots out.

No band, no loop, no clock: every time is a parameter, as for the protocol's
state machines. A "band" here is the list of reports a band makes for a plan.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from companion.events import (
    BandStateChanged,
    CueFired,
    CueProblem,
    CueWarning,
    Event,
    HeartRate,
    InferredStopCause,
    RoundDone,
    SessionDone,
    SessionPaused,
    SessionResumed,
    SessionStarted,
    SessionStopped,
    StepStarted,
    StopReason,
    StopSource,
)
from companion.plan import Plan, Step, builtin_plan
from companion.state import SessionPhase
from companion.tracker import SessionTracker

START = 100.0
PLAN = builtin_plan("back-5", rounds=2)
TIMELINE = fp.build_timeline(PLAN.to_wire())


def _state(
    segment: fp.Segment | None,
    t: float,
    state: fp.SessionStateCode = fp.SessionStateCode.RUNNING,
    *,
    shift_s: float = 0.0,
    cause: fp.StopCause | InferredStopCause = fp.StopCause.NONE,
) -> BandStateChanged:
    round_, step = (segment.round, segment.step_index) if segment else (0, 0)
    if segment is not None and segment.step_index < 0:
        state = fp.SessionStateCode.ROUND_REST
    return BandStateChanged(state, round_, step, shift_s, cause, t)


def _cue(cue: fp.PlannedCue, late_s: float = 0.0, shift_s: float = 0.0) -> CueFired:
    at = START + cue.offset_us / 1e6 + shift_s + late_s
    return CueFired(cue.cue_id, cue.kind, cue.round, cue.step_index, at, at)


def _band_reports(timeline: fp.Timeline = TIMELINE) -> list[Event]:
    """What a band reports for a whole workout, in time order."""
    timed: list[tuple[float, int, Event]] = []
    for segment in timeline.segments:
        at = START + segment.start_us / 1e6
        timed.append((at, 0, _state(segment, at)))
    for cue in timeline.cues:
        timed.append((START + cue.offset_us / 1e6, 1, _cue(cue)))
    end = START + timeline.total_us / 1e6
    last = timeline.segments[-1]
    timed.append((end, 2, _state(last, end, fp.SessionStateCode.DONE)))
    return [event for _, _, event in sorted(timed, key=lambda item: item[:2])]


def _feed(tracker: SessionTracker, events: list[Event]) -> list[Event]:
    out: list[Event] = []
    for event in events:
        out += tracker.band_event(event)
    return out


def _started() -> tuple[SessionTracker, list[Event]]:
    tracker = SessionTracker(PLAN)
    return tracker, tracker.started(START)


def test_a_whole_workout_gives_each_step_round_and_cue_once_and_ends_done() -> None:
    tracker, started = _started()
    assert [type(e) for e in started] == [SessionStarted]
    out = _feed(tracker, _band_reports())
    steps = [e for e in out if isinstance(e, StepStarted)]
    assert [(s.round, s.name) for s in steps[:3]] == [
        (1, "QL lifts"),
        (1, "Hip roll"),
        (1, "Cat scratch"),
    ]
    assert len(steps) == 2 * len(PLAN.steps)
    assert [e.round for e in out if isinstance(e, RoundDone)] == [1, 2]
    cues = [e for e in out if isinstance(e, CueFired)]
    assert [c.cue_id for c in cues] == [c.cue_id for c in TIMELINE.cues]
    assert all(c.error_ms == 0 and c.offset_s is not None for c in cues)
    assert not [e for e in out if isinstance(e, CueWarning)]
    assert isinstance(out[-1], SessionDone)
    assert out[-1].rounds_done == 2
    assert tracker.ended
    assert tracker.outcome == "done"


def test_the_snapshot_follows_the_timeline_at_any_instant() -> None:
    tracker, _ = _started()
    reports = _band_reports()
    _feed(tracker, reports[:3])  # the first step has begun
    snapshot = tracker.snapshot(START + 12.5, band_id="b", session_id="s", link_up=True)
    assert snapshot.phase is SessionPhase.RUNNING
    assert snapshot.exercise == "QL lifts"
    assert snapshot.next_exercise == "Hip roll"
    assert snapshot.round == 1
    assert abs(snapshot.elapsed_s - 12.5) < 1e-6
    assert abs(snapshot.step_remaining_s - (TIMELINE.segments[0].end_us / 1e6 - 12.5)) < 1e-6
    assert snapshot.total_s == TIMELINE.total_us / 1e6


def test_a_cue_acknowledged_twice_is_one_cue() -> None:
    tracker, _ = _started()
    first = TIMELINE.cues[0]
    assert len(tracker.band_event(_cue(first))) == 1
    assert tracker.band_event(_cue(first)) == []


def test_a_late_cue_is_warned_about_in_real_milliseconds_at_any_speed() -> None:
    tracker = SessionTracker(PLAN, speed=10.0, late_cue_ms=50.0)
    tracker.started(START)
    cue = TIMELINE.cues[0]
    # 0.4 host-clock seconds at 10x is 40 real ms: on time.
    (on_time,) = tracker.band_event(_cue(cue, late_s=0.4))
    assert isinstance(on_time, CueFired)
    assert abs(on_time.error_ms - 40.0) < 1e-6
    checked, warning = tracker.band_event(_cue(TIMELINE.cues[1], late_s=0.6))
    assert isinstance(checked, CueFired)
    assert isinstance(warning, CueWarning)
    assert warning.problem is CueProblem.LATE
    assert warning.error_ms is not None
    assert abs(warning.error_ms - 60.0) < 1e-6


def test_a_cue_never_acknowledged_is_missing_at_the_end_but_a_skipped_one_is_not() -> None:
    tracker, _ = _started()
    reports = _band_reports()
    dropped = TIMELINE.cues[5]
    out = _feed(tracker, [r for r in reports if not (isinstance(r, CueFired) and r.cue_id == 5)])
    missing = [e for e in out if isinstance(e, CueWarning)]
    assert [(w.cue_id, w.problem) for w in missing] == [(dropped.cue_id, CueProblem.MISSING)]

    # The band skips to the second step 10 s into the first: what it jumped over is
    # skipped, not missing; what it never reached before the end is missing.
    tracker, _ = _started()
    first, second = TIMELINE.segments[0], TIMELINE.segments[1]
    tracker.band_event(_state(first, START))
    early = [c for c in TIMELINE.cues if c.offset_us < 10_000_000]
    _feed(tracker, [_cue(c) for c in early])
    jumped_s = (second.start_us - 10_000_000) / 1e6
    out = tracker.band_event(_state(second, START + 10.0, shift_s=-jumped_s))
    assert [type(e) for e in out] == [StepStarted]
    end = _state(TIMELINE.segments[-1], START + 20.0, fp.SessionStateCode.DONE, shift_s=-jumped_s)
    warned = {e.cue_id for e in tracker.band_event(end) if isinstance(e, CueWarning)}
    jumped = {c.cue_id for c in TIMELINE.cues if 10_000_000 <= c.offset_us < second.start_us}
    assert jumped
    assert warned == {c.cue_id for c in TIMELINE.cues if c.offset_us >= second.start_us}


def test_a_pause_freezes_the_timeline_and_resume_goes_on_shifted() -> None:
    tracker, _ = _started()
    segment = TIMELINE.segments[0]
    tracker.band_event(_state(segment, START))
    paused = tracker.band_event(_state(segment, START + 20.0, fp.SessionStateCode.PAUSED))
    assert [type(e) for e in paused] == [SessionPaused]
    frozen = [
        tracker.snapshot(START + t, band_id="b", session_id="s", link_up=True).elapsed_s
        for t in (20.0, 35.0)
    ]
    assert frozen == [20.0, 20.0]
    resumed = tracker.band_event(_state(segment, START + 50.0, shift_s=30.0))
    assert [type(e) for e in resumed] == [SessionResumed]
    after = tracker.snapshot(START + 60.0, band_id="b", session_id="s", link_up=True)
    assert after.elapsed_s == 30.0
    assert after.phase is SessionPhase.RUNNING
    (cue,) = tracker.band_event(_cue(TIMELINE.cues[3], shift_s=30.0))
    assert isinstance(cue, CueFired)
    assert cue.error_ms == 0  # planned on the shifted timeline


def test_who_stopped_is_said_from_the_band_or_from_the_host_that_asked() -> None:
    segment = TIMELINE.segments[0]
    cases = [
        (fp.StopCause.BUTTON, None, (StopReason.USER, StopSource.BAND)),
        (fp.StopCause.PAIN, None, (StopReason.PAIN, StopSource.BAND)),
        (fp.StopCause.HOST, None, (StopReason.HOST, StopSource.BAND)),  # another host
        (InferredStopCause.REBOOT, None, (StopReason.REBOOT, StopSource.BAND)),
        (fp.StopCause.HOST, StopReason.MQTT, (StopReason.MQTT, StopSource.HOST)),
    ]
    for cause, asked, expected in cases:
        tracker, _ = _started()
        if asked is not None:
            tracker.stopping(asked)
        (stopped,) = tracker.band_event(
            _state(segment, START + 5, fp.SessionStateCode.STOPPED, cause=cause)
        )
        assert isinstance(stopped, SessionStopped)
        assert (stopped.reason, stopped.source) == expected
        assert tracker.outcome == f"stopped: {expected[0].value}"


def test_a_host_that_ends_the_workout_says_so_once() -> None:
    tracker, _ = _started()
    (stopped,) = tracker.stopped_by_host(StopReason.USER, START + 3)
    assert isinstance(stopped, SessionStopped)
    assert stopped.source is StopSource.HOST
    assert tracker.stopped_by_host(StopReason.USER, START + 4) == []
    assert tracker.outcome == "stopped: user"
    assert tracker.phase is SessionPhase.STOPPED


def test_heart_rate_from_before_the_workout_is_not_its_and_stale_heart_rate_is_not_shown() -> None:
    tracker, _ = _started()
    assert tracker.band_event(HeartRate(80, START - 60)) == []
    assert tracker.band_event(HeartRate(90, START + 1)) == [HeartRate(90, START + 1)]

    def shown(now: float) -> int | None:
        return tracker.snapshot(now, band_id="b", session_id="s", link_up=True).heart_rate

    assert shown(START + 3) == 90
    assert shown(START + 30) is None
    tracker.band_event(HeartRate(95, START + 31, contact=False))
    assert shown(START + 31) is None  # a strap off the skin reads nothing


def test_an_adopted_workout_takes_its_history_and_repeats_none_of_it() -> None:
    first, _ = _started()
    reports = _band_reports()
    half = len(reports) // 2
    recorded = _feed(first, reports[:half])
    adopted = SessionTracker(PLAN)
    adopted.adopted(START, 0, recorded)
    replay = reports[half - 5 :]  # the band replays a few events the dead host had taken
    out = _feed(adopted, replay)
    together = recorded + out
    steps = [(e.round, e.step_index) for e in together if isinstance(e, StepStarted)]
    assert len(steps) == len(set(steps)) == 2 * len(PLAN.steps)
    cues = [e.cue_id for e in together if isinstance(e, CueFired)]
    assert sorted(cues) == [c.cue_id for c in TIMELINE.cues]
    assert [e.round for e in together if isinstance(e, RoundDone)] == [1, 2]
    assert not [e for e in together if isinstance(e, CueWarning)]


def test_a_cue_a_host_timed_band_missed_is_accounted_for_not_missing() -> None:
    short = Plan(name="s", title="S", steps=(Step("Hold", 5.0),), countdown=0)
    timeline = fp.build_timeline(short.to_wire())
    tracker = SessionTracker(short)
    tracker.started(START)
    reports = _band_reports(timeline)
    cue = timeline.cues[0]
    missed = CueWarning(cue.cue_id, cue.kind, CueProblem.MISSED, None, START + 1)
    out = _feed(tracker, [missed if r == _cue(cue) else r for r in reports])
    warnings = [e for e in out if isinstance(e, CueWarning)]
    assert [w.problem for w in warnings] == [CueProblem.MISSED]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_replayed_and_duplicated_cues_in_any_order_are_each_recorded_once(
    data: st.DataObject,
) -> None:
    cues = [_cue(c) for c in TIMELINE.cues]
    stream = data.draw(st.lists(st.sampled_from(cues), min_size=1, max_size=80))
    tracker, _ = _started()
    out = _feed(tracker, list(stream))
    fired = [e.cue_id for e in out if isinstance(e, CueFired)]
    assert sorted(fired) == sorted({c.cue_id for c in stream})
