"""``companion monitor``: follow a session from the relay's topics alone, as a dashboard does.

The monitor waits for the broker (it may be started before ``companion run``
and its embedded broker) and comes back after a broker restart, saying so on
screen; only a refused login ends it, because waiting would not mend that
(:func:`companion.mqtt.subscriber.listen` does the listening; this module
shows it). Quitting the monitor never touches the workout: it only listens.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Final

from rich.console import Console, Group, RenderableType
from rich.text import Text

from .events import SessionDone, SessionStopped
from .mqtt.config import BrokerConfig
from .mqtt.subscriber import BrokerDown, BrokerUp, Heard, StateHeard, listen
from .state import SessionSnapshot
from .view import MONITOR_HINT, ViewState, describe, live_panel, render

__all__ = ["monitor"]

_ROOT: Final = "companion"


@dataclass(slots=True)
class _Broker:
    """What the monitor shows of its own broker connection (a ``BrokerStatus``)."""

    url: str
    connected: bool = False
    problem: str = ""
    pending: int = 0  # the monitor publishes nothing


class _Follower:
    """The state of one band's session as seen on the broker, events deduplicated."""

    def __init__(self, band_id: str | None, broker: _Broker) -> None:
        self.band_id = band_id
        self.broker = broker
        self.snapshot: SessionSnapshot | None = None
        self.view = ViewState()
        self.seen: set[tuple[str, int]] = set()
        self.ended = False

    def status(self) -> Text:
        if self.broker.connected:
            return Text(f"connected to {self.broker.url}", style="green")
        status = Text(f"waiting for the MQTT broker at {self.broker.url}", style="bold yellow")
        if self.broker.problem:
            status.append(f" ({self.broker.problem})", style="yellow")
        status.append("; retrying. Ctrl-C quits.", style="dim")
        return status

    def frame(self) -> RenderableType:
        if self.snapshot is None:
            waiting = Text("waiting for a session on the broker... Ctrl-C quits.", style="dim")
            return Group(self.status(), waiting) if self.broker.connected else self.status()
        panel = render(self.snapshot, self.view, self.broker, hint=MONITOR_HINT)
        return panel if self.broker.connected else Group(panel, self.status())

    def take(self, heard: Heard) -> str | None:
        """Apply one thing heard; returns a plain line to print for it, if any."""
        match heard:
            case BrokerUp(url=url):
                self.broker.connected, self.broker.problem = True, ""
                return f"following {_ROOT}/+/event on {url}"
            case BrokerDown(url=url, problem=problem):
                first = self.broker.connected or not self.broker.problem
                self.broker.connected, self.broker.problem = False, problem
                if not first:  # one line per outage off a terminal, not one per attempt
                    return None
                return f"waiting for the MQTT broker at {url} ({problem}); retrying. Ctrl-C quits."
        if self.band_id is None:
            self.band_id = heard.band_id  # follow the first band heard
        if heard.band_id != self.band_id:
            return None
        if isinstance(heard, StateHeard):
            self.snapshot = heard.snapshot
            return None
        event = heard.event
        key = (event.session_id, event.number)
        if key in self.seen:
            return None  # delivery is at least once
        self.seen.add(key)
        self.view.take(event)
        if isinstance(event.event, SessionDone | SessionStopped):
            self.ended = True
        return describe(event)


async def monitor(
    config: BrokerConfig,
    console: Console,
    *,
    band_id: str | None = None,
    exit_when_done: bool = False,
    retry_every_s: float = 1.0,
) -> None:
    """Show the live session published under ``companion/<band id>/`` until interrupted.

    A broker that is not up yet, or goes away, is waited for (retrying every
    ``retry_every_s``); a broker that refuses the login is a :class:`BrokerError`.
    """
    follower = _Follower(band_id, _Broker(config.url))
    panel = live_panel(follower.frame(), console) if console.is_terminal else None
    with panel or contextlib.nullcontext() as live:
        async with contextlib.aclosing(listen(config, retry_every_s=retry_every_s)) as heard:
            async for item in heard:
                line = follower.take(item)
                if live is not None:
                    live.update(follower.frame(), refresh=True)
                elif line is not None:
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
                if exit_when_done and follower.ended:
                    return
