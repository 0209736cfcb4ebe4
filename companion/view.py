"""The live view of a session: a rich panel on a terminal, plain lines elsewhere.

:func:`render` is a pure function of what the view has seen, so it can be
checked on a fixed-size console; :class:`LiveView` follows a session's events
and redraws with rich's ``Live`` (one region updated in place: no flicker).
When the output is not a terminal (CI, a log file, a pipe) the view prints one
plain line per meaningful event instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Protocol, Self

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.logging import RichHandler
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

import firmware_protocol as fp

from .events import (
    CommandRejected,
    CueFired,
    CueWarning,
    HeartRate,
    LinkDown,
    LinkUp,
    RoundDone,
    SessionDone,
    SessionEvent,
    SessionPaused,
    SessionResumed,
    SessionStarted,
    SessionStopped,
    StepStarted,
)
from .session import Session
from .state import CueMode, SessionPhase, SessionSnapshot

__all__ = [
    "MONITOR_HINT",
    "RUN_HINT",
    "BrokerStatus",
    "LiveView",
    "ViewState",
    "describe",
    "live_panel",
    "render",
]

RUN_HINT: Final = "Ctrl-C stops the workout on the band; everything recorded stays."
MONITOR_HINT: Final = "Ctrl-C quits the monitor; the workout goes on on the band."

_SPARK: Final = "▁▂▃▄▅▆▇█"
_HR_POINTS: Final = 30
_CUES_SHOWN: Final = 4
_REFRESH_PER_S: Final = 4
_FLASH_S: Final = 1.5  # a cue on this computer's screen (no motor) lights the panel this long
_CUE_MODES: Final = {
    CueMode.BAND: ("cues timed by the band's clock", "green"),
    CueMode.HOST: ("cues sent from here: 10-50 ms, delivered not felt", "yellow"),
    CueMode.SCREEN: ("no motor: cues are this computer's bell and screen", "bold yellow"),
}
_PHASE_STYLE: Final = {
    SessionPhase.IDLE: "dim",
    SessionPhase.RUNNING: "bold green",
    SessionPhase.PAUSED: "bold yellow",
    SessionPhase.ROUND_REST: "bold cyan",
    SessionPhase.DONE: "bold blue",
    SessionPhase.STOPPED: "bold red",
}


class BrokerStatus(Protocol):
    """What the view shows of an MQTT relay (a :class:`companion.mqtt.Relay` fits)."""

    @property
    def connected(self) -> bool: ...

    @property
    def url(self) -> str: ...

    @property
    def pending(self) -> int: ...


@dataclass(slots=True)
class ViewState:
    """What the view remembers from the event stream: recent cues and heart rate."""

    cues: deque[CueFired] = field(default_factory=lambda: deque(maxlen=_CUES_SHOWN))
    heart_rates: deque[int] = field(default_factory=lambda: deque(maxlen=_HR_POINTS))
    warnings: int = 0
    last_notice: str = ""
    start: float = 0.0  # host time of the session's start, for cue times of older records
    late_ms: float = 50.0  # cue errors (real ms) above this are shown in red
    speed: float = 1.0  # host-clock seconds per real second: said once, for a demo

    def take(self, event: SessionEvent) -> None:
        """Remember what the view needs from one event."""
        inner = event.event
        if isinstance(inner, SessionStarted):
            self.start = inner.start
        elif isinstance(inner, CueFired):
            self.cues.append(inner)
            self.speed = inner.speed
        elif isinstance(inner, HeartRate):
            self.heart_rates.append(inner.bpm)
        elif isinstance(inner, CueWarning):
            self.warnings += 1
            self.last_notice = describe(event) or ""
        elif isinstance(inner, CommandRejected | LinkDown | LinkUp):
            self.last_notice = describe(event) or ""


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _sparkline(values: deque[int]) -> str:
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = max(1, high - low)
    return "".join(_SPARK[(v - low) * (len(_SPARK) - 1) // span] for v in values)


def _cue_name(kind: fp.CueKind) -> str:
    return kind.name.lower().replace("_", " ")


def _cue_time(cue: CueFired, state: ViewState) -> str:
    """Where the cue is in the workout: its place on the plan, so a pause is not counted."""
    at = cue.offset_s if cue.offset_s is not None else cue.planned - state.start
    return _clock(at)


def render(
    snapshot: SessionSnapshot,
    state: ViewState,
    broker: BrokerStatus | None = None,
    *,
    hint: str = RUN_HINT,
) -> RenderableType:
    """The whole live view for one instant; fits an 80x24 terminal.

    Every text that comes from a plan, a band or the broker is a ``Text``, never
    parsed as rich markup: ``Plank [hold]`` is shown as written.
    """
    phase = snapshot.phase
    title = Text.assemble(
        (f" {snapshot.plan} ", "bold"),
        f"round {max(snapshot.round, 1)}/{snapshot.rounds} ",
        (f" {phase.value.replace('_', ' ').upper()} ", _PHASE_STYLE[phase]),
    )

    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(width=6, style="bold")
    grid.add_column(ratio=1)
    if phase in (SessionPhase.DONE, SessionPhase.STOPPED):
        grid.add_row("", Text(f"Workout {phase.value}.", style=_PHASE_STYLE[phase]))
    elif phase is SessionPhase.IDLE:
        grid.add_row("NOW", Text("Get ready: sending the plan to the band", style="bold"))
        grid.add_row("NEXT", Text(snapshot.next_exercise))
    else:
        now = Text(snapshot.exercise or "Get ready", style="bold")
        now.append(f"   {_clock(snapshot.step_remaining_s)} left", style="bold magenta")
        grid.add_row("NOW", now)
        done = snapshot.step_duration_s - snapshot.step_remaining_s
        grid.add_row(
            "", ProgressBar(total=max(snapshot.step_duration_s, 0.001), completed=max(0.0, done))
        )
        if snapshot.tip:
            grid.add_row("TIP", Text(snapshot.tip, style="italic"))
        grid.add_row("NEXT", Text(snapshot.next_exercise or "the end"))
    where = f"{_clock(snapshot.elapsed_s)} of {_clock(snapshot.total_s)}"
    if snapshot.step_index >= 0:
        where += f"   step {snapshot.step_index + 1}/{snapshot.step_count}"
    if state.speed != 1:
        where += f"   at {state.speed:g}x (cue errors in real ms)"
    grid.add_row("TIME", Text(where))

    heart = Text()
    if snapshot.heart_rate is not None:
        heart.append(f"♥ {snapshot.heart_rate} bpm ", style="bold red")
        heart.append(_sparkline(state.heart_rates), style="red")
    else:
        heart.append("♥ no reading", style="dim")
    if snapshot.battery is not None:
        heart.append(f"   battery {snapshot.battery}%")
    grid.add_row("HR", heart)

    cues = Table.grid(padding=(0, 2))
    for cue in reversed(state.cues):
        late = abs(cue.error_ms) > state.late_ms
        cues.add_row(
            _cue_time(cue, state),
            Text(_cue_name(cue.kind)),
            Text(f"{cue.error_ms:+.1f} ms", style="red" if late else "green"),
        )
    grid.add_row("CUES", cues if state.cues else Text("none yet", style="dim"))

    link = Text("band ")
    if snapshot.link_up:
        link.append("up", "green")
    else:
        link.append("down (reconnecting)", "bold red")
    if broker is not None:
        link.append("   mqtt ")
        if broker.connected:
            link.append(broker.url, "green")
        else:
            link.append(f"{broker.url} unreachable", "bold red")
        if broker.pending:
            link.append(f" ({broker.pending} queued)", "yellow")
    grid.add_row("LINK", link)
    mode, style = _CUE_MODES[snapshot.cue_mode]
    grid.add_row("BAND", Text.assemble(snapshot.kind.label, ": ", (mode, style)))
    if state.last_notice:
        grid.add_row("", Text(state.last_notice, style="yellow"))

    footer = Text()
    for note in snapshot.notes:
        footer.append(note + "\n", style="bold red")
    footer.append(hint, style="dim")
    if _flashing(snapshot, state):
        return Panel(Group(grid, footer), title=title, title_align="left", style="reverse")
    return Panel(Group(grid, footer), title=title, title_align="left")


def _flashing(snapshot: SessionSnapshot, state: ViewState) -> bool:
    """Whether a cue just fired on a band with no motor: the screen is the cue then."""
    if snapshot.cue_mode is not CueMode.SCREEN or not state.cues:
        return False
    at = state.cues[-1].offset_s
    return at is not None and 0.0 <= snapshot.elapsed_s - at < _FLASH_S


def describe(event: SessionEvent) -> str | None:
    """One plain line for an event worth a line in a log, or ``None``."""
    inner = event.event
    match inner:
        case SessionStarted():
            line = f"session {event.session_id} started: {inner.plan}, {inner.rounds} round(s)"
            return "\n".join((line, *inner.notes))
        case StepStarted():
            line = (
                f"round {inner.round} step {inner.step_index + 1}: "
                f"{inner.name} ({inner.duration_s:g} s)"
            )
            return f"{line}: {inner.tip}" if inner.tip else line
        case CueFired():
            return f"cue {_cue_name(inner.kind)} ({inner.error_ms:+.1f} ms)"
        case CueWarning():
            detail = f" by {inner.error_ms:.1f} ms" if inner.error_ms is not None else ""
            return f"warning: cue {_cue_name(inner.kind)} {inner.problem.value}{detail}"
        case RoundDone():
            return f"round {inner.round} done"
        case SessionPaused():
            return "paused"
        case SessionResumed():
            return "resumed"
        case SessionDone():
            return f"workout done: {inner.rounds_done} round(s)"
        case SessionStopped():
            return f"stopped: {inner.reason.value}"
        case LinkDown():
            return "band link lost; the band keeps the workout going, reconnecting"
        case LinkUp():
            return "band link back"
        case CommandRejected():
            return f"rejected {inner.source} command {inner.command!r}: {inner.reason}"
        case _:
            return None


@contextlib.contextmanager
def live_panel(renderable: RenderableType, console: Console) -> Iterator[Live]:
    """rich's ``Live`` on ``console``, with every log record printed above the panel.

    A handler writing to the terminal on its own (another console, the real
    stderr) would move the cursor under ``Live``'s feet and leave the panel
    drawn in stacked pieces; while the panel is up, rich handlers print on its
    console and stream handlers write through ``Live``'s redirected stderr.
    """
    with Live(renderable, console=console, auto_refresh=False) as live:
        handlers = logging.getLogger().handlers
        consoles = [(h, h.console) for h in handlers if isinstance(h, RichHandler)]
        terminals = (sys.__stderr__, sys.__stdout__)
        streams = [
            (h, h.stream)
            for h in handlers
            if type(h) is logging.StreamHandler and h.stream in terminals
        ]
        for rich_handler, _ in consoles:
            rich_handler.console = console
        for stream_handler, _ in streams:
            stream_handler.setStream(sys.stderr)  # Live's proxy while the panel is up
        try:
            yield live
        finally:
            for rich_handler, previous in consoles:
                rich_handler.console = previous
            for stream_handler, stream in streams:
                stream_handler.setStream(stream)


async def _redraw_forever(live: Live, frame: Callable[[], RenderableType]) -> None:
    """Redraw a few times a second, so the countdown moves between events too."""
    while True:
        live.update(frame(), refresh=True)
        await asyncio.sleep(1 / _REFRESH_PER_S)


class LiveView:
    """``async with LiveView(session, console)``: show the session until it ends."""

    def __init__(
        self, session: Session, console: Console, broker: BrokerStatus | None = None
    ) -> None:
        self.session = session
        self.console = console
        self.broker = broker
        self.state = ViewState(late_ms=session.late_cue_ms, speed=session.band.clock.rate)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        follow = self._live if self.console.is_terminal else self._plain
        self._task = asyncio.create_task(follow())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is None:
            return
        # A session that ended (also by an error: link lost, storage, Ctrl-C) gets its
        # final frame drawn, so the panel says "stopped", not what it showed before.
        if exc_type is None or self.session.finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 2.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _frame(self) -> RenderableType:
        return render(self.session.snapshot(), self.state, self.broker)

    async def _live(self) -> None:
        # Redrawn from this loop, not rich's refresh thread: a snapshot reads the loop's clock.
        with live_panel(self._frame(), self.console) as live:
            redraw = asyncio.create_task(_redraw_forever(live, self._frame))
            try:
                async for event in self.session.events():
                    self.state.take(event)
                    self._ring_for(event)
                    live.update(self._frame(), refresh=True)  # a flash starts with its cue
            finally:
                redraw.cancel()
            live.update(self._frame(), refresh=True)

    async def _plain(self) -> None:
        async for event in self.session.events():
            self.state.take(event)
            line = describe(event)
            if line is not None:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            self._ring_for(event)

    def _ring_for(self, event: SessionEvent) -> None:
        """A band with no motor (a strap): this computer's bell is the cue."""
        screen = self.session.features.cue_mode is CueMode.SCREEN
        if screen and isinstance(event.event, CueFired) and self.console.is_terminal:
            self.console.bell()
