"""The relay: a session's events, state and heart rate on MQTT, and commands back.

A follower task writes every session event into the outbox and, when the
connection is up and has room, hands it to the client in the same pass (the
live ``hr`` copy of a heart-rate sample, QoS 0, skips the outbox: it is sent
then or never, and the sample itself is an event like any other); a
connection loop opens a *fresh* aiomqtt client for every attempt (a reused
client re-sends its stale in-flight messages), announces the band, drains
what the outbox holds with a bounded window of publishes in flight, keeps the
retained state current and reads commands. Any broker error ends that
connection's task group at once and the loop reconnects with backoff; the
outbox makes sure nothing is lost.

Whatever fails is never silent: a command that cannot be parsed or obeyed
becomes a ``command_rejected`` event, and any other failure of the relay is
logged, marks the band ``offline``, leaves the follower filling the outbox
(the next run publishes it) and is raised as a :class:`BrokerError` when the
relay closes, so the CLI exits non-zero with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self

import aiomqtt

from ..errors import BrokerError, CompanionError
from ..events import HeartRate, SessionEvent, StopReason
from ..state import DeviceInfo, SessionCommand, SessionSnapshot
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
_CANCEL_AGAIN_S: Final = 1.0  # a runner not ended this long after a cancel is cancelled again
_HELD_S: Final = 5.0  # a connection up this long was a good one: the backoff starts over
_MAINTAIN_EVERY_S: Final = 1.0  # prune acknowledged rows, checkpoint the WAL
_COMMANDS_QUEUED: Final = 16  # more waiting than this is a flood: rejected at once
_OFFLINE_TIMEOUT_S: Final = 2.0


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


def next_backoff(delay_s: float, held_s: float) -> float:
    """The wait before the next attempt, after a connection that lasted ``held_s``.

    Doubling while attempts keep failing (a broker that is down is not hammered),
    back to the first step after a connection that held: one drop after an hour
    of service is retried at once, not after the longest wait ever reached.
    """
    if held_s >= _HELD_S:
        return _BACKOFF_FIRST_S
    return min(delay_s * 2, _BACKOFF_MAX_S)


@dataclass(eq=False)
class _Line:
    """The publishing side of one connection: its client and what it has in flight."""

    client: aiomqtt.Client
    tasks: asyncio.TaskGroup
    in_flight: int = 0
    last_id: int = 0  # the highest outbox id handed to this client
    backlog: bool = True  # the outbox may hold rows this connection has not sent yet
    room: asyncio.Event = field(default_factory=asyncio.Event)
    since: float = field(default_factory=time.monotonic)


class RelayedSession(Protocol):
    """What the relay follows and commands: a :class:`~companion.session.Session` (or
    anything with its numbered events, snapshot and commands)."""

    @property
    def band_id(self) -> str: ...
    @property
    def device(self) -> DeviceInfo: ...
    @property
    def finished(self) -> bool: ...
    def events(self) -> AsyncIterator[SessionEvent]: ...
    def snapshot(self) -> SessionSnapshot: ...
    async def obey(self, command: SessionCommand, *, by: StopReason) -> None: ...
    def reject(self, source: str, command: str, reason: str) -> None: ...


class Relay:
    """``async with Relay(session, "mqtt://host:1883")``: the session on MQTT.

    ``broker`` is a URL, a :class:`BrokerConfig`, or ``None`` for an embedded
    broker on 127.0.0.1 that the relay starts and stops. ``heart_rate=False``
    keeps heart rate (health data) off the broker entirely. ``outbox`` is the
    SQLite file that holds messages until the broker acknowledges them;
    ``wall_clock`` stamps their acknowledgements (a test speeds it up).
    """

    def __init__(
        self,
        session: RelayedSession,
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
        wall_clock: Callable[[], float] = time.time,
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
        self._wall_clock = wall_clock

        self._embedded: EmbeddedBroker | None = None
        self._outbox: Outbox | None = None
        self._line: _Line | None = None
        self._runner: asyncio.Task[None] | None = None
        self._connected_once = asyncio.Event()
        self._work = asyncio.Event()  # the outbox has rows the connection has not taken
        self._state_changed = asyncio.Event()
        self._idle = asyncio.Event()  # the session ended and the outbox is empty
        self._flushing = False
        self._follower_done = False
        self._acks: list[int] = []
        self._pruned_at = -math.inf  # monotonic time of the last prune of the outbox
        self._commands: asyncio.Queue[SessionCommand] = asyncio.Queue(_COMMANDS_QUEUED)
        self._identifier = f"companion-{session.band_id}-{os.getpid()}"
        self._failure: BaseException | None = None
        self.reconnects = 0

    # -- what others read ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the relay is connected to its broker right now."""
        return self._line is not None

    @property
    def url(self) -> str:
        """The broker's URL (without password), for display."""
        return self._config.url

    @property
    def pending(self) -> int:
        """Messages stored but not yet acknowledged by the broker."""
        return self._outbox.pending_count() if self._outbox else 0

    @property
    def failure(self) -> str | None:
        """Why the relay stopped publishing, if it did (it then only fills the outbox)."""
        if self._failure is None:
            return None
        reason = str(self._failure) or type(self._failure).__name__
        return f"{type(self._failure).__name__}: {reason}" if str(self._failure) else reason

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
        self._outbox = Outbox(self._outbox_path, owner=self.session.band_id, clock=self._wall_clock)
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
        if exc_type is None and self._failure is None:
            await self._flush()
        pending = self.pending  # before the outbox closes
        await self._shutdown()
        if self._failure is not None and exc_type is None:
            raise BrokerError(
                f"the MQTT relay stopped publishing ({self.failure}); the workout went on and "
                f"{pending} messages wait in {self._outbox_path}: the next `companion run` "
                "with this band publishes them first"
            ) from self._failure

    async def _flush(self) -> None:
        """Publish what the session left in the outbox, then say goodbye on the broker."""
        outbox = self._outbox
        assert outbox is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_timeout):
                self._flushing = True
                self._idle.clear()  # look again now: the session may have ended since
                self._check_idle()
                await self._idle.wait()
        if outbox.pending_count():
            logger.warning(
                "%d MQTT messages not yet acknowledged; they stay in %s for the next run",
                outbox.pending_count(),
                outbox.path,
            )
        line = self._line
        if line is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(self._flush_timeout):
                    await self._publish_state(line.client)
                    await line.client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)

    def _check_idle(self) -> None:
        """Wake a waiting flush once the session is followed to its end and all is delivered."""
        outbox = self._outbox
        if not self._flushing or outbox is None:
            return  # counting rows on every acknowledgement would cost a query each
        # A session still running when the relay closes has nothing more to wait for.
        followed = self._follower_done or not self.session.finished
        if followed and not self._acks and not outbox.pending_count():
            self._idle.set()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            runner = self._runner
            runner.cancel()
            # Python 3.11's wait_for (inside aiomqtt's publish) can swallow a cancel that
            # lands as its inner wait ends: the runner would go on, and this wait for ever.
            while not (await asyncio.wait({runner}, timeout=_CANCEL_AGAIN_S))[0]:
                runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
            except Exception:
                # Only a first connection that failed ends the runner with an error, and
                # __aenter__ raises that one: _run records every later failure, the follower
                # its own. Anything else is a bug, and surfaces.
                if self._connected_once.is_set():
                    raise
        if self._embedded is not None:
            await self._embedded.stop()
        if self._outbox is not None:
            self._flush_acks()
            self._outbox.close()
            self._outbox = None

    # -- the long-lived work ---------------------------------------------------------

    async def _run(self) -> None:
        # The follower is outside the task group: whatever breaks the publishing side,
        # the session's events keep going into the outbox.
        follower = asyncio.create_task(self._follow_session(), name="mqtt-relay-follower")
        try:
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._obey_commands())
                    tasks.create_task(self._maintain_outbox())
                    await self._stay_connected()
            except Exception as exc:
                if not self._connected_once.is_set():
                    raise  # the first connection failed: __aenter__ says why
                await self._fail("publishing", exc)
            await follower
        finally:
            if not follower.done():
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower

    async def _fail(self, doing: str, exc: BaseException) -> None:
        """Never silent: log it, mark the band offline, keep it for ``__aexit__`` to raise."""
        cause = _root_cause(exc)
        if self._failure is not None:
            return
        self._failure = cause
        self._line = None
        logger.error(
            "the MQTT relay stopped %s (%s); the workout goes on and its events stay in %s",
            doing,
            self.failure,
            self._outbox_path,
        )
        logger.debug("what stopped the MQTT relay", exc_info=cause)
        client = _new_client(
            self._config,
            f"{self._identifier}-offline",
            will=None,
            keepalive=self._keepalive,
            window=1,
            timeout=_OFFLINE_TIMEOUT_S,
        )
        with contextlib.suppress(aiomqtt.MqttError, OSError, TimeoutError):
            async with asyncio.timeout(_OFFLINE_TIMEOUT_S), client:
                await client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)

    async def _follow_session(self) -> None:
        outbox = self._outbox
        assert outbox is not None
        try:
            async for numbered in self.session.events():
                if isinstance(numbered.event, HeartRate):
                    if not self.heart_rate:
                        continue
                    self._send_live(self.topics.hr, heart_rate_payload(numbered, numbered.event))
                else:
                    self._state_changed.set()  # heart rate alone waits for the periodic state
                payload = event_payload(numbered)
                message_id = outbox.put(self.topics.event, payload)
                self._idle.clear()
                self._offer(OutboxMessage(message_id, self.topics.event, payload, 1, False))
        except Exception as exc:
            await self._fail("following the session", exc)
        finally:
            self._follower_done = True
            self._check_idle()

    def _offer(self, message: OutboxMessage) -> None:
        """Publish a new row at once if the connection has no backlog and has room."""
        line = self._line
        free = line is not None and not line.backlog and line.in_flight < self._window
        if free and line is not None and self._send(line, message):
            return
        if line is not None:
            line.backlog = True  # keep the order: this row goes out before any later one
        self._work.set()

    def _send(self, line: _Line, message: OutboxMessage) -> bool:
        # If the connection is closing, the next one takes the row from the outbox.
        if not self._start(line, self._publish(line, message)):
            return False
        line.last_id = message.id
        return True

    def _send_live(self, topic: str, payload: bytes) -> None:
        """A QoS 0 message: sent now if the connection is up and has room, else dropped.

        Live heart rate only, whose sample also goes out as a QoS 1 event through the
        outbox: an old copy published after a reconnect would show a stale pulse, and
        writing it to disk first (and marking it sent) cost two transactions a sample.
        """
        line = self._line
        if line is not None and line.in_flight < self._window:
            self._start(line, self._publish_counted(line, topic, payload, qos=0))

    @staticmethod
    def _start(line: _Line, publish: Coroutine[Any, Any, None]) -> bool:
        """Run ``publish`` in the connection's task group, counted in its window."""
        try:
            line.tasks.create_task(publish)
        except RuntimeError:  # the connection is closing
            publish.close()
            return False
        line.in_flight += 1
        return True

    def _read_command(self, payload: bytes) -> None:
        """Parse a ``cmd`` payload now (bounded); queue the command or reject it."""
        try:
            command = parse_command(payload)
        except Exception as exc:  # anything a stranger sends is refused, never raised
            shown = payload[:40].decode("utf-8", "replace")
            self.session.reject("mqtt", shown, str(exc) or type(exc).__name__)
            return
        try:
            self._commands.put_nowait(command)
        except asyncio.QueueFull:
            self.session.reject(
                "mqtt", command, f"{_COMMANDS_QUEUED} commands already wait; send fewer at once"
            )

    async def _obey_commands(self) -> None:
        while True:
            command = await self._commands.get()
            try:
                await self.session.obey(command, by=StopReason.MQTT)
            except CompanionError as exc:
                self.session.reject("mqtt", command, str(exc))
            except Exception as exc:  # a command the band could not carry out, reported
                logger.exception("MQTT command %r failed", command)
                self.session.reject("mqtt", command, f"{type(exc).__name__}: {exc}")
            self._state_changed.set()

    async def _maintain_outbox(self) -> None:
        """Prune when no acknowledgement has (keeping the replay window); checkpoint off-loop."""
        outbox = self._outbox
        assert outbox is not None
        while True:
            await asyncio.sleep(_MAINTAIN_EVERY_S)
            self._flush_acks()
            # Acknowledgements prune as they go; this is for a connection with none coming.
            if time.monotonic() - self._pruned_at >= 2 * _MAINTAIN_EVERY_S:
                outbox.prune(self._replay_window_s)
                self._pruned_at = time.monotonic()
            if outbox.needs_checkpoint():
                await asyncio.to_thread(outbox.checkpoint)

    async def _stay_connected(self) -> None:
        delay = _BACKOFF_FIRST_S / 2  # next_backoff doubles it: the first wait is the first step
        unexpected = False
        while True:
            error: BaseException | None = None
            try:
                await self._connection(replay=unexpected)
            except* (aiomqtt.MqttError, OSError) as group:
                error = group.exceptions[0]
            finally:
                line, self._line = self._line, None
                held = time.monotonic() - line.since if line is not None else 0.0
                self._flush_acks()
            if not self._connected_once.is_set():
                assert error is not None
                raise error
            delay = next_backoff(delay, held)
            if error is not None and line is not None:
                # Said once per outage; the retries that follow are not news.
                logger.warning("MQTT broker %s lost (%s); reconnecting", self._config.url, error)
            elif error is not None:
                logger.info("MQTT broker %s still unreachable (%s)", self._config.url, error)
            unexpected = True
            await asyncio.sleep(delay)

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
            await client.subscribe(self.topics.cmd, qos=1)
            if self.discovery:
                await client.subscribe(f"{self._discovery_root}/status", qos=1)
            await client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
            await self._announce(client)
            async with asyncio.TaskGroup() as tasks:
                line = _Line(client, tasks)
                self._line = line
                self._connected_once.set()
                tasks.create_task(self._read(client))
                tasks.create_task(self._drain_outbox(line))
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
                self._read_command(payload)
            elif message.topic.matches(status) and payload == ONLINE.encode():
                await self._announce(client)

    async def _drain_outbox(self, line: _Line) -> None:
        """Publish what the outbox holds that this connection has not sent (after a drop)."""
        outbox = self._outbox
        assert outbox is not None
        while True:
            self._work.clear()
            batch = outbox.pending(after=line.last_id, limit=self._window)
            if not batch:
                line.backlog = False  # new rows go straight from the follower now
                await self._work.wait()
                continue
            line.backlog = True
            for message in batch:
                while line.in_flight >= self._window:
                    line.room.clear()
                    await line.room.wait()
                if not self._send(line, message):
                    return

    async def _publish(self, line: _Line, message: OutboxMessage) -> None:
        await self._publish_counted(
            line, message.topic, message.payload, qos=message.qos, retain=message.retain
        )
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acks.append(message.id)

    @staticmethod
    async def _publish_counted(
        line: _Line, topic: str, payload: bytes, *, qos: int, retain: bool = False
    ) -> None:
        try:
            await line.client.publish(topic, payload, qos=qos, retain=retain)
        finally:
            line.in_flight -= 1
            line.room.set()

    def _flush_acks(self) -> None:
        """Mark the acknowledged rows in one transaction (once per loop pass, not per PUBACK)."""
        if not self._acks or self._outbox is None:
            return
        acks, self._acks = self._acks, []
        now = time.monotonic()
        prune = now - self._pruned_at >= _MAINTAIN_EVERY_S
        self._outbox.ack_many(acks, prune_older_than_s=self._replay_window_s if prune else None)
        if prune:
            self._pruned_at = now
        self._check_idle()

    async def _keep_state(self, client: aiomqtt.Client) -> None:
        """The retained state: at once when what it shows changes, else once a period.

        Every retained publish is a write the broker saves, so heart rate and
        the countdown refresh it once per ``state_every_s``, not per event.
        """
        loop = asyncio.get_running_loop()
        shown: tuple[object, ...] | None = None
        published_at = -math.inf
        while True:
            self._state_changed.clear()
            snapshot = self.session.snapshot()
            key = (snapshot.phase, snapshot.round, snapshot.step_index, snapshot.link_up)
            if key != shown or loop.time() - published_at >= self._state_every_s:
                payload = state_payload(snapshot, include_heart_rate=self.heart_rate)
                await client.publish(self.topics.state, payload, qos=1, retain=True)
                shown, published_at = key, loop.time()
            wait = max(0.0, published_at + self._state_every_s - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
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
