"""MQTT: a session's events, state and heart rate for dashboards, and commands back.

The only part of companion that imports an MQTT library. See the README for
the topic tree and every payload. aiomqtt (the client) and amqtt (the embedded
broker) come with the optional ``mqtt`` extra (``pip install 'companion[mqtt]'``);
without them, importing this package raises a
:class:`~companion.extras.MissingExtraError` that names the extra.
"""

from __future__ import annotations

from ..extras import MissingExtraError

try:  # checked first: the relay needs the one, the embedded broker the other
    import aiomqtt  # noqa: F401
    import amqtt  # noqa: F401
except ImportError as exc:
    raise MissingExtraError("the MQTT relay", "mqtt", missing=exc.name) from exc

from .broker import EmbeddedBroker, free_loopback_port
from .config import BrokerConfig
from .discovery import discovery_payload, discovery_topic
from .outbox import Outbox, OutboxMessage
from .relay import Relay, remove_discovery
from .topics import Topics, event_payload, parse_command, state_payload

__all__ = [
    "BrokerConfig",
    "EmbeddedBroker",
    "Outbox",
    "OutboxMessage",
    "Relay",
    "Topics",
    "discovery_payload",
    "discovery_topic",
    "event_payload",
    "free_loopback_port",
    "parse_command",
    "remove_discovery",
    "state_payload",
]
