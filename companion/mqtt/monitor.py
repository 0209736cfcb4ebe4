"""``companion monitor``: follow a session from the relay's topics alone, as a dashboard does."""

from __future__ import annotations

import contextlib
import logging
from typing import Final

import aiomqtt
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from ..errors import BrokerError
from ..state import SessionSnapshot
from ..view import ViewState, describe, render
from .config import BrokerConfig
from .topics import event_from_payload, snapshot_from_state

__all__ = ["monitor"]

logger = logging.getLogger(__name__)

_ROOT: Final = "companion"
_END_TYPES: Final = ("session_done", "session_stopped")


class _Follower:
    """The state of one band's session as seen on the broker, events deduplicated."""

    def __init__(self, band_id: str | None) -> None:
        self.band_id = band_id
        self.snapshot: SessionSnapshot | None = None
        self.view = ViewState()
        self.seen: set[tuple[str, int]] = set()
        self.ended = False

    def frame(self) -> RenderableType:
        if self.snapshot is None:
            return Text("waiting for a session on the broker...", style="dim")
        return render(self.snapshot, self.view)

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
) -> None:
    """Show the live session published under ``companion/<band id>/`` until interrupted."""
    follower = _Follower(band_id)
    live = (
        Live(follower.frame(), console=console, auto_refresh=False) if console.is_terminal else None
    )
    try:
        async with aiomqtt.Client(**config.client_options()) as client:
            await client.subscribe(f"{_ROOT}/+/state", qos=1)
            await client.subscribe(f"{_ROOT}/+/event", qos=1)
            if live is None:
                console.print(f"following {_ROOT}/+/event on {config.url}", highlight=False)
            with live or contextlib.nullcontext():
                async for message in client.messages:
                    topic = str(message.topic)
                    if not (topic.endswith("/state") or topic.endswith("/event")):
                        continue  # amqtt also delivers retained messages nobody asked for
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    line = follower.take(topic, payload)
                    if live is not None:
                        live.update(follower.frame(), refresh=True)
                    elif line is not None:
                        console.print(line, markup=False, highlight=False, soft_wrap=True)
                    if exit_when_done and follower.ended:
                        return
    except aiomqtt.MqttError as exc:
        raise BrokerError(
            f"cannot follow the MQTT broker at {config.url}: {exc}. Is `companion run` "
            "relaying to it? Pass its address with --mqtt mqtt://HOST:PORT"
        ) from exc
