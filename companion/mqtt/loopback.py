"""An in-process broker for classes across hosts in one process, in virtual time.

A real broker's sockets do not advance a virtual clock (a looptime loop), so
tests and ``benchmarks/class.py`` route several hosts' class messages here:
retained messages (an empty one clears), MQTT wildcards (aiomqtt's own
matching), delivery in publish order, at once. It is a
:class:`~companion.mqtt.class_hosts.ClassBus`, nothing more: no QoS, no
sessions, no wills. Real hosts use :class:`~companion.mqtt.class_hosts.MqttClassBus`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiomqtt

__all__ = ["LoopbackBroker", "LoopbackBus"]


class LoopbackBroker:
    """Retained messages and subscriptions of every :class:`LoopbackBus` made by :meth:`bus`.

    ``published`` keeps every message in order, for a test to read back.
    """

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.published: list[tuple[str, bytes]] = []
        self._buses: list[LoopbackBus] = []

    def bus(self) -> LoopbackBus:
        """A new connection (one host's, or a dashboard's)."""
        bus = LoopbackBus(self)
        self._buses.append(bus)
        return bus

    def route(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Keep (or clear) a retained message and hand it to every matching subscriber."""
        self.published.append((topic, payload))
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)
        for bus in self._buses:
            if bus.wants(topic):
                bus.queue.put_nowait((topic, payload))


class LoopbackBus:
    """One host's connection to a :class:`LoopbackBroker` (a ``ClassBus``)."""

    def __init__(self, broker: LoopbackBroker) -> None:
        self.broker = broker
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._filters: list[str] = []

    def wants(self, topic: str) -> bool:
        """Whether a message on ``topic`` matches one of this connection's subscriptions."""
        return any(aiomqtt.Topic(topic).matches(f) for f in self._filters)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        self.broker.route(topic, payload, retain=retain)
        await asyncio.sleep(0)

    async def subscribe(self, topic: str) -> None:
        self._filters.append(topic)
        for retained, payload in self.broker.retained.items():
            if aiomqtt.Topic(retained).matches(topic):
                self.queue.put_nowait((retained, payload))

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        while True:
            yield await self.queue.get()
