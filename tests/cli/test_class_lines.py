"""The lines `companion class` prints as its class goes: what the person at the host reads."""

from __future__ import annotations

from datetime import UTC, datetime

import firmware_protocol as fp
from companion.cli import _ClassLines
from companion.events import SessionEvent, StepStarted
from companion.group import ClassStarted, ParticipantJoined


def test_a_host_that_came_late_says_which_round_its_bands_join_from() -> None:
    lines = _ClassLines(lambda band_id: {"class203": "Ana"}.get(band_id, band_id))
    started = ClassStarted("c1", 100.0, 3, True, 2, from_round=2)
    assert lines.line(started, 160.0) == (
        "the class began before this host: its 3 bands join from round 2 "
        "(the cues before count as missed)"
    )
    joined = ParticipantJoined("class203", 2, 150.0, 6)
    assert lines.line(joined, 160.0) == "Ana joins from round 2"
    # Its band runs the rest of the plan, whose round 1 is the class's round 2.
    step = StepStarted(1, 0, "Squat", fp.StepKind.EXERCISE, 15.0, "", 150.0)
    event = SessionEvent("class203", "s1", 1, datetime.now(UTC), step)
    assert lines.line(event, 160.0) == "round 2: Squat (15 s)"


def test_a_host_on_time_says_when_the_class_starts() -> None:
    lines = _ClassLines(lambda band_id: band_id)
    started = ClassStarted("c1", 105.0, 3, False, 5)
    assert lines.line(started, 100.0) == "start in 5.0 s: every band has the same instant"
