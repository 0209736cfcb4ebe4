"""An in-process broker for classes across hosts in virtual time.

A real broker's sockets do not advance a virtual clock, so the class's
virtual-time tests route the hosts' messages here: retained messages, MQTT
wildcards (aiomqtt's own matching), delivery in publish order. The same hosts
run against a real mosquitto in ``test_hosts_on_mosquitto.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiomqtt


class LoopbackBroker:
    """Retained messages and subscriptions of every :class:`LoopbackBus` made by :meth:`bus`."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.published: list[tuple[str, bytes]] = []
        self._buses: list[LoopbackBus] = []

    def bus(self) -> LoopbackBus:
        bus = LoopbackBus(self)
        self._buses.append(bus)
        return bus

    def route(self, topic: str, payload: bytes, *, retain: bool) -> None:
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
