"""The live view: readable in an 80x24 terminal, plain lines off a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from companion.events import CueFired
from companion.plan import Plan, Step
from companion.session import Session
from companion.state import SessionPhase, SessionSnapshot
from companion.view import LiveView, ViewState, render

from .conftest import connected

SNAPSHOT = SessionSnapshot(
    band_id="SIM0001",
    session_id="abc",
    plan="back-5",
    phase=SessionPhase.RUNNING,
    round=2,
    rounds=5,
    step_index=0,
    step_count=5,
    exercise="QL lifts",
    tip="Keep your hips on the floor: it's a small move. Complete one side, then change over.",
    step_remaining_s=42.3,
    step_duration_s=60,
    next_exercise="Hip roll",
    elapsed_s=342,
    total_s=1500,
    heart_rate=97,
    battery=87,
    link_up=True,
    notes=("Stop immediately if in pain.",),
)


def _screen(snapshot: SessionSnapshot, state: ViewState) -> list[str]:
    console = Console(width=80, height=24, record=True, file=io.StringIO())
    console.print(render(snapshot, state))
    return console.export_text().splitlines()


def test_the_view_fits_80x24_and_shows_exercise_time_left_heart_rate_and_cues() -> None:
    state = ViewState()
    for bpm in (90, 94, 97):
        state.heart_rates.append(bpm)
    for cue_id in range(6):
        state.cues.append(CueFired(cue_id, "countdown", 2, 0, 300.0 + cue_id, 300.0004 + cue_id))
    lines = _screen(SNAPSHOT, state)
    text = "\n".join(lines)
    assert len(lines) <= 24
    assert max(len(line) for line in lines) <= 80
    assert "QL lifts   0:42 left" in text
    assert "round 2/5" in text
    assert "NEXT   Hip roll" in text
    assert "♥ 97 bpm" in text
    assert "+0.4 ms" in text
    assert "Stop immediately if in pain." in text


def test_no_fresh_heart_rate_is_never_shown_as_a_number() -> None:
    stale = SessionSnapshot(**{**_fields(SNAPSHOT), "heart_rate": None, "link_up": False})
    text = "\n".join(_screen(stale, ViewState()))
    assert "no reading" in text
    assert "bpm" not in text
    assert "down (reconnecting)" in text


def _fields(snapshot: SessionSnapshot) -> dict[str, object]:
    return {name: getattr(snapshot, name) for name in SessionSnapshot.__slots__}


SHORT = Plan(name="short", title="Short", steps=(Step("Plank", 6.0), Step("Bridge", 6.0)))


@pytest.mark.looptime
@pytest.mark.parametrize("terminal", [True, False])
async def test_the_live_view_follows_a_session_to_its_end(terminal: bool) -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=terminal)
    async with connected() as (_virtual, band):
        session = Session(band, SHORT)
        async with LiveView(session, console):
            await session.run()
    shown = out.getvalue()
    if terminal:
        assert "Workout done." in shown
        assert "\x1b[" in shown  # drawn in place
    else:
        assert "round 1 step 1: Plank (6 s)" in shown
        assert "workout done: 1 round(s)" in shown
        assert "\x1b[" not in shown  # plain lines for logs and CI
