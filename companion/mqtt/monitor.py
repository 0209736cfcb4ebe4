"""``companion monitor``: follow a session from the relay's topics alone, as a dashboard does.

The monitor waits for the broker (it may be started before ``companion run``
and its embedded broker) and comes back after a broker restart, saying so on
screen; only a refused login ends it, because waiting would not mend that.
Quitting the monitor never touches the workout: it only listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import aiomqtt
from rich.console import Console, Group, RenderableType
from rich.text import Text

from ..errors import BrokerError
from ..state import SessionSnapshot
from ..view import MONITOR_HINT, ViewState, describe, live_panel, render
from .config import BrokerConfig
from .topics import event_from_payload, snapshot_from_state

__all__ = ["monitor"]

logger = logging.getLogger(__name__)

_ROOT: Final = "companion"
_END_TYPES: Final = ("session_done", "session_stopped")
_REFUSED_LOGIN: Final = (4, 5, 134, 135)  # MQTT 3.1.1 and 5 return codes for bad credentials


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

    def take(self, topic: str, payload: bytes) -> str | None:
        """Apply one message; returns a plain line to print for it, if any."""
        parts = topic.split("/")
        if len(parts) != 3:
            return None
        band_id, kind = parts[1], parts[2]
        if self.band_id is None:
            self.band_id = band_id  # follow the first band heard
        if band_id != self.band_id:
            return None
        try:
            if kind == "state":
                self.snapshot = snapshot_from_state(payload)
                return None
            event = event_from_payload(payload)
        except ValueError as exc:
            logger.warning("ignored a malformed message on %s: %s", topic, exc)
            return None
        key = (event.session_id, event.number)
        if key in self.seen:
            return None  # delivery is at least once
        self.seen.add(key)
        self.view.take(event)
        if event.type in _END_TYPES:
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
    broker = _Broker(config.url)
    follower = _Follower(band_id, broker)
    panel = live_panel(follower.frame(), console) if console.is_terminal else None
    with panel or contextlib.nullcontext() as live:

        def show(line: str | None = None) -> None:
            if live is not None:
                live.update(follower.frame(), refresh=True)
            elif line is not None:
                console.print(line, markup=False, highlight=False, soft_wrap=True)

        while True:
            try:
                async with aiomqtt.Client(**config.client_options()) as client:
                    await client.subscribe(f"{_ROOT}/+/state", qos=1)
                    await client.subscribe(f"{_ROOT}/+/event", qos=1)
                    broker.connected, broker.problem = True, ""
                    show(f"following {_ROOT}/+/event on {config.url}")
                    async for message in client.messages:
                        topic = str(message.topic)
                        if not (topic.endswith("/state") or topic.endswith("/event")):
                            continue  # amqtt also delivers retained messages nobody asked for
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        show(follower.take(topic, payload))
                        if exit_when_done and follower.ended:
                            return
            except aiomqtt.MqttCodeError as exc:
                if exc.rc in _REFUSED_LOGIN:
                    raise BrokerError(
                        f"the MQTT broker at {config.url} refused the username or password: "
                        "check them in the URL (mqtt://USER:PASSWORD@HOST:PORT)"
                    ) from exc
                _lost(broker, exc, show)
            except aiomqtt.MqttError as exc:
                _lost(broker, exc, show)
            await asyncio.sleep(retry_every_s)


def _lost(broker: _Broker, exc: aiomqtt.MqttError, show: Callable[[str | None], None]) -> None:
    was_connected = broker.connected
    problem = str(exc) or type(exc).__name__
    first = was_connected or not broker.problem
    broker.connected, broker.problem = False, problem
    if first:  # one line per outage off a terminal, not one per attempt
        show(f"waiting for the MQTT broker at {broker.url} ({problem}); retrying. Ctrl-C quits.")
    else:
        show(None)
