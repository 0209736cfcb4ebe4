"""The relay: a session's events, state and heart rate on MQTT, and commands back.

One long-lived task follows the session into the outbox; a connection loop
opens a *fresh* aiomqtt client for every attempt (a reused client re-sends its
stale in-flight messages), announces the band, drains the outbox with a
bounded window of publishes in flight, keeps the retained state current and
reads commands. Any broker error ends that connection's task group at once and
the loop reconnects with backoff; the outbox makes sure nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiomqtt

from ..errors import BrokerError, CompanionError
from ..events import HeartRate
from ..session import Session
from ..store import default_store_path
from .broker import EmbeddedBroker
from .config import BrokerConfig
from .discovery import DISCOVERY_ROOT, discovery_payload, discovery_topic
from .outbox import Outbox, OutboxMessage
from .topics import (
    OFFLINE,
    ONLINE,
    Topics,
    event_payload,
    heart_rate_payload,
    parse_command,
    state_payload,
)

__all__ = ["Relay", "remove_discovery"]

logger = logging.getLogger(__name__)

_BACKOFF_FIRST_S: Final = 0.1
_BACKOFF_MAX_S: Final = 5.0
_PRUNE_AFTER_S: Final = 60.0


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _new_client(
    config: BrokerConfig,
    identifier: str,
    *,
    will: aiomqtt.Will | None,
    keepalive: int,
    window: int,
    timeout: float,
) -> aiomqtt.Client:
    client = aiomqtt.Client(
        **config.client_options(),
        identifier=identifier,
        will=will,
        keepalive=keepalive,
        timeout=timeout,
        max_inflight_messages=window,
        max_concurrent_outgoing_calls=window,
        # Without it, a QoS 0 "hr" followed by a QoS 1 "event" waits ~40 ms for the
        # broker's delayed ACK (Nagle's algorithm): measured by benchmarks/relay.py.
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
    )
    # aiomqtt warns when more calls wait than this; our window already bounds them.
    client.pending_calls_threshold = window * 2
    return client


def _root_cause(exc: BaseException) -> BaseException:
    """The first real error inside (nested) task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _refused_login(exc: BaseException) -> bool:
    return isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (4, 5, 134, 135)


def _connect_error(
    config: BrokerConfig,
    exc: BaseException | None,
    waited_s: float,
    *,
    fix: str = ", or run without MQTT (--no-mqtt)",
) -> BrokerError:
    if exc is not None and _refused_login(exc):
        return BrokerError(
            f"the MQTT broker at {config.url} refused the username or password: "
            "check them in the URL (mqtt://USER:PASSWORD@HOST:PORT)"
        )
    reason = (str(exc) or type(exc).__name__) if exc else f"no answer in {waited_s:g} s"
    return BrokerError(
        f"cannot reach the MQTT broker at {config.url}: {reason}. Start the broker or "
        f"fix the URL (mqtt://HOST:PORT){fix}"
    )


class Relay:
    """``async with Relay(session, "mqtt://host:1883")``: the session on MQTT.

    ``broker`` is a URL, a :class:`BrokerConfig`, or ``None`` for an embedded
    broker on 127.0.0.1 that the relay starts and stops. ``heart_rate=False``
    keeps heart rate (health data) off the broker entirely. ``outbox`` is the
    SQLite file that holds messages until the broker acknowledges them.
    """

    def __init__(
        self,
        session: Session,
        broker: BrokerConfig | str | None = None,
        *,
        prefix: str | None = None,
        heart_rate: bool = True,
        discovery: bool = True,
        discovery_root: str = DISCOVERY_ROOT,
        outbox: str | Path | None = None,
        keepalive: int = 10,
        connect_timeout: float = 10.0,
        flush_timeout: float = 5.0,
        replay_window_s: float = 2.0,
        window: int = 100,
        state_every_s: float = 1.0,
    ) -> None:
        self.session = session
        self.broker_config = BrokerConfig.from_url(broker) if isinstance(broker, str) else broker
        self.topics = Topics(prefix) if prefix else Topics.for_band(session.band_id)
        self.heart_rate = heart_rate
        self.discovery = discovery
        self._discovery_root = discovery_root
        self._outbox_path = (
            Path(outbox) if outbox else default_store_path().parent / "outbox.sqlite3"
        )
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._flush_timeout = flush_timeout
        self._replay_window_s = replay_window_s
        self._window = window
        self._state_every_s = state_every_s

        self._embedded: EmbeddedBroker | None = None
        self._outbox: Outbox | None = None
        self._client: aiomqtt.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._connected_once = asyncio.Event()
        self._work = asyncio.Event()  # the outbox has new rows
        self._state_changed = asyncio.Event()
        self._idle = asyncio.Event()  # the session ended and the outbox is empty
        self._follower_done = False
        self._commands: asyncio.Queue[bytes] = asyncio.Queue()
        self._identifier = f"companion-{session.band_id}-{os.getpid()}"
        self.reconnects = 0

    # -- what others read ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the relay is connected to its broker right now."""
        return self._client is not None

    @property
    def url(self) -> str:
        """The broker's URL (without password), for display."""
        return self._config.url

    @property
    def pending(self) -> int:
        """Messages stored but not yet acknowledged by the broker."""
        return self._outbox.pending_count() if self._outbox else 0

    @property
    def _config(self) -> BrokerConfig:
        if self.broker_config is None:
            raise CompanionError("the relay has no broker yet; use it as `async with Relay(...)`")
        return self.broker_config

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self.broker_config is None:
            self._embedded = EmbeddedBroker()
            await self._embedded.start()
            self.broker_config = self._embedded.config
        self._outbox = Outbox(self._outbox_path, owner=self.session.band_id)
        self._runner = asyncio.create_task(self._run(), name="mqtt-relay")
        connected = asyncio.create_task(self._connected_once.wait())
        try:
            async with asyncio.timeout(self._connect_timeout):
                await asyncio.wait({self._runner, connected}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            connected.cancel()
        if not self._connected_once.is_set():
            error = self._runner.exception() if self._runner.done() else None
            cause = _root_cause(error) if error else None
            await self._shutdown()
            raise _connect_error(self._config, cause, self._connect_timeout) from cause
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self._flush()
        await self._shutdown()

    async def _flush(self) -> None:
        """Publish what the session left in the outbox, then say goodbye on the broker."""
        outbox = self._outbox
        assert outbox is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_timeout):
                self._idle.clear()  # look again now: the session may have ended since
                self._check_idle()
                await self._idle.wait()
        if outbox.pending_count():
            logger.warning(
                "%d MQTT messages not yet acknowledged; they stay in %s for the next run",
                outbox.pending_count(),
                outbox.path,
            )
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(self._flush_timeout):
                    await self._publish_state(client)
                    await client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)

    def _check_idle(self) -> None:
        """Wake a waiting flush once the session is followed to its end and all is delivered."""
        outbox = self._outbox
        # A session still running when the relay closes has nothing more to wait for.
        followed = self._follower_done or not self.session.finished
        if followed and outbox is not None and not outbox.pending_count():
            self._idle.set()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        if self._embedded is not None:
            await self._embedded.stop()
        if self._outbox is not None:
            self._outbox.close()

    # -- the long-lived work ---------------------------------------------------------

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow_session())
            tasks.create_task(self._obey_commands())
            await self._stay_connected()

    async def _follow_session(self) -> None:
        outbox = self._outbox
        assert outbox is not None
        async for numbered in self.session.events():
            if isinstance(numbered.event, HeartRate):
                if not self.heart_rate:
                    continue
                outbox.put(self.topics.hr, heart_rate_payload(numbered, numbered.event), qos=0)
            outbox.put(self.topics.event, event_payload(numbered), qos=1)
            self._idle.clear()
            self._work.set()
            self._state_changed.set()
        self._follower_done = True
        self._check_idle()

    async def _obey_commands(self) -> None:
        while True:
            payload = await self._commands.get()
            try:
                command = parse_command(payload)
            except ValueError as exc:
                shown = payload[:40].decode("utf-8", "replace")
                self.session.reject("mqtt", shown, str(exc))
                continue
            try:
                await getattr(self.session, command)()
            except CompanionError as exc:
                self.session.reject("mqtt", command, str(exc))
            self._state_changed.set()

    async def _stay_connected(self) -> None:
        backoff = _BACKOFF_FIRST_S
        unexpected = False
        while True:
            error: BaseException | None = None
            try:
                await self._connection(replay=unexpected)
            except* (aiomqtt.MqttError, OSError) as group:
                error = group.exceptions[0]
            finally:
                self._client = None
            if not self._connected_once.is_set():
                assert error is not None
                raise error
            if error is not None:
                logger.warning("MQTT broker %s lost (%s); reconnecting", self._config.url, error)
            unexpected = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _connection(self, *, replay: bool) -> None:
        outbox = self._outbox
        assert outbox is not None
        will = aiomqtt.Will(self.topics.availability, OFFLINE, qos=1, retain=True)
        client = _new_client(
            self._config,
            self._identifier,
            will=will,
            keepalive=self._keepalive,
            window=self._window,
            timeout=self._flush_timeout,
        )
        async with client:
            if replay:
                self.reconnects += 1
                again = outbox.replay_recent(self._replay_window_s)
                logger.info("MQTT broker back; publishing %d recent messages again", again)
            outbox.prune(_PRUNE_AFTER_S)
            await client.subscribe(self.topics.cmd, qos=1)
            if self.discovery:
                await client.subscribe(f"{self._discovery_root}/status", qos=1)
            await client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
            await self._announce(client)
            self._client = client
            self._connected_once.set()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read(client))
                tasks.create_task(self._drain_outbox(client))
                tasks.create_task(self._keep_state(client))

    async def _announce(self, client: aiomqtt.Client) -> None:
        if self.discovery:
            await client.publish(
                discovery_topic(self.session.band_id, self._discovery_root),
                discovery_payload(self.session.device, self.topics),
                qos=1,
                retain=True,
            )

    async def _read(self, client: aiomqtt.Client) -> None:
        status = f"{self._discovery_root}/status"
        async for message in client.messages:
            payload = _as_bytes(message.payload)
            if message.topic.matches(self.topics.cmd):
                if message.retain:
                    # A retained command would replay on every connect: a stale "stop".
                    logger.warning("ignored a retained command on %s", self.topics.cmd)
                    continue
                self._commands.put_nowait(payload)
            elif message.topic.matches(status) and payload == ONLINE.encode():
                await self._announce(client)

    async def _drain_outbox(self, client: aiomqtt.Client) -> None:
        outbox = self._outbox
        assert outbox is not None
        window = asyncio.Semaphore(self._window)
        last_id = 0
        async with asyncio.TaskGroup() as tasks:
            while True:
                self._work.clear()
                batch = outbox.pending(after=last_id, limit=self._window)
                if not batch:
                    await self._work.wait()
                    continue
                for message in batch:
                    await window.acquire()
                    tasks.create_task(self._publish(client, outbox, message, window))
                    last_id = message.id

    async def _publish(
        self,
        client: aiomqtt.Client,
        outbox: Outbox,
        message: OutboxMessage,
        window: asyncio.Semaphore,
    ) -> None:
        try:
            await client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            outbox.ack(message.id)
        finally:
            window.release()
        self._check_idle()

    async def _keep_state(self, client: aiomqtt.Client) -> None:
        while True:
            self._state_changed.clear()
            await self._publish_state(client)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._state_every_s):
                    await self._state_changed.wait()

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        payload = state_payload(self.session.snapshot(), include_heart_rate=self.heart_rate)
        await client.publish(self.topics.state, payload, qos=1, retain=True)


async def remove_discovery(
    broker: BrokerConfig | str, band_id: str, *, discovery_root: str = DISCOVERY_ROOT
) -> None:
    """Remove a band's device and entities from Home Assistant (empty retained config)."""
    config = BrokerConfig.from_url(broker) if isinstance(broker, str) else broker
    client = _new_client(
        config, f"companion-remove-{os.getpid()}", will=None, keepalive=10, window=10, timeout=10
    )
    try:
        async with client:
            await client.publish(discovery_topic(band_id, discovery_root), b"", qos=1, retain=True)
    except aiomqtt.MqttError as exc:
        raise _connect_error(config, exc, 10, fix=" given with --mqtt") from exc
