"""Follow the sessions published on a broker, as a dashboard does: typed messages in.

:func:`listen` subscribes to every band's ``state`` and ``event`` topics and
yields what it hears as typed values, with the broker's comings and goings
(:class:`BrokerUp`, :class:`BrokerDown`): a broker that is not up yet, or goes
away, is waited for, and only a refused login ends it, because waiting would
not mend that. A malformed or hostile message is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Final, TypeAlias

import aiomqtt

from ..errors import BrokerError
from ..events import SessionEvent
from ..state import SessionSnapshot
from .config import BrokerConfig
from .topics import event_from_payload, snapshot_from_state

__all__ = ["BrokerDown", "BrokerUp", "EventHeard", "Heard", "StateHeard", "listen"]

logger = logging.getLogger(__name__)

_ROOT: Final = "companion"
_REFUSED_LOGIN: Final = (4, 5, 134, 135)  # MQTT 3.1.1 and 5 return codes for bad credentials


@dataclass(frozen=True, slots=True)
class BrokerUp:
    """Connected and subscribed to every band's topics."""

    url: str


@dataclass(frozen=True, slots=True)
class BrokerDown:
    """The broker is not reachable (yet, or any more); :func:`listen` retries."""

    url: str
    problem: str


@dataclass(frozen=True, slots=True)
class StateHeard:
    """A band's retained state: what its session shows now."""

    band_id: str
    snapshot: SessionSnapshot


@dataclass(frozen=True, slots=True)
class EventHeard:
    """One numbered session event (delivery is at least once: the number deduplicates)."""

    band_id: str
    event: SessionEvent


Heard: TypeAlias = BrokerUp | BrokerDown | StateHeard | EventHeard


def parse(topic: str, payload: bytes) -> StateHeard | EventHeard | None:
    """What a message on ``topic`` says, or None for one that is not a session's."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != _ROOT or parts[2] not in ("state", "event"):
        return None  # amqtt also delivers retained messages nobody asked for
    band_id = parts[1]
    try:
        if parts[2] == "state":
            return StateHeard(band_id, snapshot_from_state(payload))
        return EventHeard(band_id, event_from_payload(payload))
    except ValueError as exc:
        logger.warning("ignored a malformed message on %s: %s", topic, exc)
        return None


async def listen(
    config: BrokerConfig, *, retry_every_s: float = 1.0
) -> AsyncGenerator[Heard, None]:
    """Everything published under ``companion/+/state`` and ``companion/+/event``, for ever.

    Raises :class:`BrokerError` when the broker refuses the login.
    """
    while True:
        try:
            async with aiomqtt.Client(**config.client_options()) as client:
                await client.subscribe(f"{_ROOT}/+/state", qos=1)
                await client.subscribe(f"{_ROOT}/+/event", qos=1)
                yield BrokerUp(config.url)
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    heard = parse(str(message.topic), payload)
                    if heard is not None:
                        yield heard
        except aiomqtt.MqttCodeError as exc:
            if exc.rc in _REFUSED_LOGIN:
                raise BrokerError(
                    f"the MQTT broker at {config.url} refused the username or password: "
                    "check them in the URL (mqtt://USER:PASSWORD@HOST:PORT)"
                ) from exc
            yield BrokerDown(config.url, str(exc) or type(exc).__name__)
        except aiomqtt.MqttError as exc:
            yield BrokerDown(config.url, str(exc) or type(exc).__name__)
        await asyncio.sleep(retry_every_s)
