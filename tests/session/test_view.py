"""The live view: readable in an 80x24 terminal, plain lines off a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pyte
import pytest
from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel

import firmware_protocol as fp
from companion.clock import LoopClock
from companion.events import CueFired, Event, SessionEvent, SessionStarted
from companion.kinds import connect_for_session
from companion.plan import Plan, Step
from companion.session import Session
from companion.sim import InfiniTimeConfig, VirtualBandConfig, VirtualWorld
from companion.state import BandKind, CueMode, SessionPhase, SessionSnapshot
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
        state.cues.append(
            CueFired(cue_id, fp.CueKind.COUNTDOWN, 2, 0, 300.0 + cue_id, 300.0004 + cue_id)
        )
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


def _final_screen(output: str) -> list[str]:
    """What an 80x24 terminal shows after receiving ``output``."""
    screen = pyte.Screen(80, 24)
    screen.set_mode(pyte.modes.LNM)  # a tty turns "\n" into "\r\n"
    pyte.Stream(screen).feed(output)
    return [line.rstrip() for line in screen.display]


@contextlib.contextmanager
def _logging_to(console: Console) -> Iterator[None]:
    """The CLI's logging: a RichHandler on its own console (stderr, the same terminal)."""
    root = logging.getLogger()
    before = root.handlers[:]  # e.g. the CLI's own, left by a CLI test in this process
    root.handlers[:] = [RichHandler(console=console, show_path=False)]
    try:
        yield
    finally:
        root.handlers[:] = before


@pytest.mark.looptime
async def test_log_records_during_the_live_view_leave_one_clean_panel() -> None:
    out = io.StringIO()
    terminal = Console(file=out, width=80, height=24, force_terminal=True)
    stderr_on_the_same_terminal = Console(file=out, width=80, force_terminal=True)
    with _logging_to(stderr_on_the_same_terminal):
        async with connected() as (_virtual, band):
            session = Session(band, SHORT)

            async def trouble() -> None:
                for number in range(3):
                    await band.clock.sleep(2.5)
                    logging.getLogger("companion.mqtt.relay").warning(
                        "lost the MQTT broker (%d); reconnecting", number
                    )
                    session.reject("mqtt", f"jump {number}", "not a command")

            async with LiveView(session, terminal):
                noise = asyncio.create_task(trouble())
                await session.run()
                await noise
    screen = _final_screen(out.getvalue())
    text = "\n".join(screen)
    assert sum(line.startswith("╭") for line in screen) == 1, text
    assert sum(line.startswith("╰") for line in screen) == 1, text
    top = next(i for i, line in enumerate(screen) if line.startswith("╭"))
    logged = [i for i, line in enumerate(screen) if "reconnecting" in line]
    assert len(logged) == 3, text
    assert max(logged) < top  # above the panel, not through it
    assert "Workout done." in text


def test_user_text_in_square_brackets_is_shown_as_written() -> None:
    plan_text = SessionSnapshot(
        **{
            **_fields(SNAPSHOT),
            "exercise": "Plank [hold]",
            "tip": "Hold [b]still[/b] and [/] breathe",
            "next_exercise": "Bridge [bold]",
            "plan": "my [plan]",
        }
    )
    state = ViewState()
    state.last_notice = "rejected mqtt command '[[steps]]': unknown"
    text = "\n".join(_screen(plan_text, state))
    assert "Plank [hold]" in text
    assert "Hold [b]still[/b] and [/] breathe" in text
    assert "Bridge [bold]" in text
    assert "my [plan]" in text
    assert "'[[steps]]'" in text


def test_cue_errors_are_real_milliseconds_and_the_speed_is_said_once() -> None:
    state = ViewState()
    # At 10x, 20 ms on the sped-up host clock is 2 ms on the wrist.
    state.take(_numbered(CueFired(1, fp.CueKind.NEXT_EXERCISE, 1, 1, 60.0, 60.020, 10.0, 60.0)))
    text = "\n".join(_screen(SNAPSHOT, state))
    assert "+2.0 ms" in text
    assert "+20.0" not in text
    assert text.count("10x") == 1
    assert "real ms" in text


def test_the_cue_list_leaves_a_pause_out() -> None:
    state = ViewState()
    state.take(_numbered(SessionStarted("short", 1, 100.0)))
    # Planned 60 s into the plan, after a 90 s pause: host time 250.
    state.take(_numbered(CueFired(2, fp.CueKind.NEXT_EXERCISE, 1, 1, 250.0, 250.0, 1.0, 60.0)))
    text = "\n".join(_screen(SNAPSHOT, state))
    assert "1:00  next exercise" in text
    assert "2:30" not in text


def _numbered(event: Event) -> SessionEvent:
    return SessionEvent("SIM0001", "abc", 1, datetime.now(UTC), event)


@pytest.mark.looptime
async def test_after_a_real_pause_the_cue_list_shows_plan_times() -> None:
    async with connected() as (_virtual, band):
        session = Session(band, SHORT)
        async with LiveView(session, Console(file=io.StringIO())) as view:
            runner = asyncio.create_task(session.run())
            await band.clock.sleep(3)
            await session.pause()
            await band.clock.sleep(100)
            await session.resume()
            await runner
    rows = "\n".join(_screen(SNAPSHOT, view.state))
    # The last four cues of 6 s + 6 s: the countdown before 0:12 and "workout done" at 0:12.
    assert re.findall(r"(\d+:\d\d)  [a-z ]+ +[-+][\d.]+ ms", rows) == [
        "0:12",
        "0:11",
        "0:10",
        "0:09",
    ]


@pytest.mark.parametrize(
    ("kind", "mode", "said"),
    [
        (BandKind.COMPANION, CueMode.BAND, "companion band: cues timed by the band's clock"),
        (BandKind.INFINITIME, CueMode.HOST, "InfiniTime watch: cues sent from here: 10-50 ms"),
        (BandKind.HR_STRAP, CueMode.SCREEN, "heart-rate sensor: no motor"),
    ],
)
def test_the_view_says_what_the_band_is_and_who_times_the_cues(
    kind: BandKind, mode: CueMode, said: str
) -> None:
    snapshot = SessionSnapshot(**{**_fields(SNAPSHOT), "kind": kind, "cue_mode": mode})
    lines = _screen(snapshot, ViewState())
    assert len(lines) <= 24
    assert said in " ".join("\n".join(lines).split())


def _panel_style(snapshot: SessionSnapshot, state: ViewState) -> str:
    panel = render(snapshot, state)
    assert isinstance(panel, Panel)
    return str(panel.style)


@pytest.mark.parametrize(("mode", "flashes"), [(CueMode.SCREEN, True), (CueMode.HOST, False)])
def test_a_cue_flashes_the_panel_only_when_the_screen_is_the_cue(
    mode: CueMode, flashes: bool
) -> None:
    state = ViewState()
    state.cues.append(CueFired(7, fp.CueKind.NEXT_EXERCISE, 2, 0, 340.0, 340.001, offset_s=341.5))
    at_the_cue = SessionSnapshot(**{**_fields(SNAPSHOT), "cue_mode": mode, "elapsed_s": 342.0})
    later = SessionSnapshot(**{**_fields(SNAPSHOT), "cue_mode": mode, "elapsed_s": 344.0})
    assert (_panel_style(at_the_cue, state) == "reverse") is flashes
    assert _panel_style(later, state) != "reverse"


@pytest.mark.looptime
@pytest.mark.parametrize(
    ("kind", "bells"), [(BandKind.HR_STRAP, True), (BandKind.INFINITIME, False)]
)
async def test_a_strap_rings_the_terminal_bell_at_every_cue_and_a_watch_does_not(
    kind: BandKind, bells: bool
) -> None:
    clock = LoopClock()
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True)
    async with VirtualWorld() as world:
        if kind is BandKind.HR_STRAP:
            device = await world.add_band(VirtualBandConfig(companion_service=False, clock=clock))
        else:
            device = await world.add_infinitime(InfiniTimeConfig(clock=clock))
        band = await connect_for_session(device.address, backend=world.backend, clock=clock)
        async with band:
            session = Session(band, SHORT)
            events = session.events()
            async with LiveView(session, console):
                await session.run()
            cues = [e async for e in events if isinstance(e.event, CueFired)]
    assert cues
    assert out.getvalue().count("\a") == (len(cues) if bells else 0)
