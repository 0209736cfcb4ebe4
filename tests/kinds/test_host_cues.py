"""The pure host-timed cue schedule: absolute offsets, missed while down, pauses."""

from __future__ import annotations

import pytest

import firmware_protocol as fp
from companion.kinds import CueVerdict, HostCueSchedule, LineSplitter
from companion.plan import Plan, Step, builtin_plan


@pytest.fixture
def timeline() -> fp.Timeline:
    return fp.build_timeline(builtin_plan("back-5", rounds=3).to_wire())


def test_every_cue_is_due_at_start_plus_its_offset_never_accumulated(
    timeline: fp.Timeline,
) -> None:
    schedule = HostCueSchedule(timeline, start=100.0)
    fired: list[tuple[int, float]] = []
    while (deadline := schedule.next_deadline()) is not None:
        # A driver that always wakes 30 ms late: the error must not grow.
        for cue, verdict in schedule.due(deadline + 0.03, link_up=True):
            assert verdict is CueVerdict.FIRE
            fired.append((cue.cue_id, deadline))
    assert [cue_id for cue_id, _ in fired] == [cue.cue_id for cue in timeline.cues]
    assert all(
        at == pytest.approx(100.0 + cue.offset_us / 1e6)
        for (_, at), cue in zip(fired, timeline.cues, strict=True)
    )
    assert schedule.done


def test_cues_due_while_the_link_is_down_are_missed_not_fired_late(
    timeline: fp.Timeline,
) -> None:
    schedule = HostCueSchedule(timeline, start=0.0)
    assert [v for _, v in schedule.due(59.0, link_up=True)][-1] is CueVerdict.FIRE
    missed = schedule.link_lost(75.0)  # down from 59 s to 75 s
    assert [cue.offset_us / 1e6 for cue in missed] == [60.0]
    assert all(v is CueVerdict.FIRE for _, v in schedule.due(77.0, link_up=True))
    late = schedule.due(120.3, link_up=True)  # the host woke up 0.3 s after the transition
    assert [(c.offset_us / 1e6, v) for c, v in late] == [
        (117.0, CueVerdict.MISSED),
        (118.0, CueVerdict.MISSED),
        (119.0, CueVerdict.MISSED),
        (120.0, CueVerdict.MISSED),
    ]


def test_a_pause_holds_the_remaining_cues_and_resume_shifts_them(timeline: fp.Timeline) -> None:
    schedule = HostCueSchedule(timeline, start=0.0)
    schedule.due(10.0, link_up=True)
    schedule.pause(10.0)
    assert schedule.next_deadline() is None
    assert schedule.due(40.0, link_up=True) == []
    schedule.resume(40.0)
    assert schedule.next_deadline() == pytest.approx(30.0 + 30.0)  # switch side at 30 s + 30 s


@pytest.mark.parametrize("size", [1, 3, 20, 1000])
def test_console_lines_split_anywhere_and_interleaved_echo_give_each_message_once(
    size: int,
) -> None:
    console = (
        b'Bangle.buzz(100)\r\n=undefined\r\n>\r\n{"t":"act","hrm":81}\r\n'
        b'>\x1b[J\r\n{"t":"status","bat":64}\r\nUncaught Error\r\n{"t":"act","hr'
        b'm":82}\r\n{not json}\r\n'
    )
    splitter = LineSplitter()
    messages = []
    for offset in range(0, len(console), size):
        messages.extend(splitter.feed(console[offset : offset + size]))
    assert messages == [
        {"t": "act", "hrm": 81},
        {"t": "status", "bat": 64},
        {"t": "act", "hrm": 82},
    ]


def test_a_cue_whose_deadline_is_a_float_hair_past_now_is_due_now() -> None:
    # 3.347229 + 1.5 is 4.8472290000000005 in floats: a driver woken at 4.847229 must fire
    # the cue, not sleep 5e-16 s again and again (a virtual clock never gets past it).
    plan = Plan(name="p", title="P", steps=(Step("Warm up", 1.5), Step("Bridge", 1.0)))
    timeline = fp.build_timeline(plan.to_wire())
    hairs = 0
    for cue in timeline.cues:
        schedule = HostCueSchedule(timeline, start=3.347229)
        deadline = schedule.planned(cue)
        now = round(deadline, 6)
        if now >= deadline:
            continue
        hairs += 1
        due = [c.cue_id for c, _ in schedule.due(now, link_up=True)]
        assert due[-1] == cue.cue_id
    assert hairs > 0
