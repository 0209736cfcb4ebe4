"""The embedded broker: amqtt on 127.0.0.1, so a fresh machine needs no MQTT setup."""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker

from ..errors import BrokerError
from .config import BrokerConfig

__all__ = ["EmbeddedBroker", "free_loopback_port"]

# amqtt and its state-machine library log every packet at INFO.
for _chatty in ("amqtt", "transitions"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

_LOOPBACK = "127.0.0.1"


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedBroker:
    """``async with EmbeddedBroker() as broker``: an MQTT broker in this process.

    It listens on 127.0.0.1 only (never the network) and accepts anonymous
    clients. It is the zero-setup default for demos and one home; for
    durability across restarts point the relay at mosquitto or another real
    broker by URL.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_loopback_port()
        self._broker: Broker | None = None

    @property
    def config(self) -> BrokerConfig:
        """How a client reaches this broker."""
        return BrokerConfig(host=_LOOPBACK, port=self.port)

    async def start(self) -> None:
        """Start listening; :class:`BrokerError` if the port is taken."""
        settings: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{_LOOPBACK}:{self.port}"}},
            # An explicit plugin list: amqtt otherwise loads its deprecated defaults.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = Broker(settings)
        try:
            await broker.start()
        except Exception as exc:
            raise BrokerError(
                f"cannot start the embedded MQTT broker on {_LOOPBACK}:{self.port}: {exc}. "
                "Pick another port, or use a running broker with --mqtt mqtt://HOST:PORT"
            ) from exc
        self._broker = broker

    async def stop(self) -> None:
        """Stop the broker and close every client connection."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
