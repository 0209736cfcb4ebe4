"""One class across several hosts, coordinated through the MQTT broker.

A gym has several BLE hosts, each in reach of some of the bands. One of them
coordinates: it publishes the plan (``announce``), waits until every expected
host has prepared its bands and measured its clock, publishes one start
instant in UTC (``start``) and relays the class's commands (``control``, each
at a UTC instant). Every host runs its own bands with a
:class:`~companion.group.GroupClass` and publishes their session events and
its participants under the class (topics: :mod:`companion.mqtt.class_topics`).

**Clocks.** The start instant is UTC: hosts keep their clocks with NTP or
chrony, and each converts the instant to its own clock. Each host also
measures its offset against the coordinator over the broker (the exchanges'
hard bounds intersected, as a band's time sync is, so the figure comes with a
real bound), and the coordinator refuses to start when a host is surely
further off than ``max_offset_ms`` (and warns when it may be), naming the host
and the fix. The hosts' clocks are checked, not corrected: NTP is what keeps
them, and a class that moved one host's timeline by a noisy broker
measurement would hide the clock that needs fixing.

**A host that comes late.** A host that gets ready after the class began
puts its bands on the class timeline from the next round far enough ahead, as
a late band is (:meth:`~companion.group.GroupClass.join`). Controls are not
retained, so the coordinator publishes the retained ``start`` again after each
one with where it left the timeline: the late host starts from that, pauses
and skips included, and waits out a pause.

Nothing here speaks BLE: a host's class is any :class:`HostedClass`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Protocol, Self

import aiomqtt

import firmware_protocol as fp

from ..clock import Clock
from ..errors import BrokerError, CompanionError
from ..events import SessionEvent
from ..group_json import snapshot_to_json
from ..group_state import ClassSnapshot, ParticipantSnapshot
from ..plan import Plan
from ..state import SessionCommand
from .class_topics import (
    ClassAnnouncement,
    ClassControl,
    ClassMessageError,
    ClassStart,
    ClassTopics,
    HostState,
    HostStatus,
    TimeAnswer,
    TimeAsk,
    encode,
    parse_announcement,
    parse_control,
    parse_host_status,
    parse_start,
    parse_time_answer,
    parse_time_ask,
    participants_from_payload,
    participants_payload,
    with_participants,
)
from .config import BrokerConfig
from .discovery import class_discovery_payload, class_discovery_topic
from .topics import event_payload, parse_command

__all__ = [
    "ClassBus",
    "ClassHost",
    "ClassHostError",
    "HostedClass",
    "MqttClassBus",
    "fetch_announcement",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_OFFSET_MS: Final = 2.5  # two hosts each this far off keep a 5 ms spread
_TIME_SAMPLES: Final = 16
_TIME_ANSWER_S: Final = 1.0
_PUBLISH_EVERY_S: Final = 1.0
_FINISH_WAIT_S: Final = 60.0  # the other hosts' last turns after this one's class ended
_LEAVE_S: Final = 2.0  # a stopped host's last words on the broker
_BROKER_MARGIN_S: Final = 1.0  # the start message's way to every host, and their first await
_TIMELINE_WAIT_S: Final = 10.0  # for the start the coordinator publishes after a control


class ClassHostError(CompanionError):
    """The class cannot run across these hosts (the message names the host and the fix)."""


class HostedClass(Protocol):
    """A host's part of the class (a :class:`~companion.group.GroupClass`)."""

    class_id: str
    plan: Plan
    links: int
    clock: Clock
    start_s: float | None  # the class's start (host clock), once chosen
    resumed: bool  # the bands still ran the class: its start is theirs

    @property
    def participants(self) -> list[Any]: ...

    async def run(
        self, *, start: Callable[[float], Awaitable[float]] | None = None
    ) -> ClassSnapshot: ...

    def start_lead_s(self, prepared_in_s: float) -> float: ...

    def elapsed_s(self, now: float | None = None) -> float: ...

    def snapshot(self) -> ClassSnapshot: ...

    def events(self) -> AsyncIterator[Any]: ...

    async def pause(self, *, at: float | None = None) -> None: ...

    async def resume(self, *, at: float | None = None) -> None: ...

    async def skip(self, *, at: float | None = None) -> None: ...

    async def stop(self) -> None: ...


class ClassBus(Protocol):
    """Publish and subscribe on the class's broker (:class:`MqttClassBus`)."""

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Send ``payload`` on ``topic``; an empty retained payload clears the topic."""

    async def subscribe(self, topic: str) -> None:
        """Receive what is published on ``topic`` (MQTT wildcards allowed)."""

    def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        """Every message on the subscribed topics, retained ones first."""


class MqttClassBus:
    """A :class:`ClassBus` on a real broker through aiomqtt; ``async with`` connects.

    ``will`` is published by the broker when this host is lost (its ``hosts/<host>``:
    offline), so the coordinator hears of a host that died without a word.
    """

    def __init__(
        self, config: BrokerConfig, identifier: str, *, will: tuple[str, bytes] | None = None
    ) -> None:
        self.config = config
        self._client = aiomqtt.Client(
            **config.client_options(),
            identifier=identifier,
            will=aiomqtt.Will(will[0], will[1], qos=1, retain=True) if will else None,
            keepalive=10,
        )

    async def __aenter__(self) -> Self:
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise BrokerError(
                f"cannot reach the MQTT broker at {self.config.url} for the class: {exc}. "
                "Start the broker or fix --broker (mqtt://HOST:PORT)"
            ) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(exc_type, exc, tb)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        await self._client.publish(topic, payload, qos=qos, retain=retain)

    async def subscribe(self, topic: str) -> None:
        await self._client.subscribe(topic, qos=1)

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        async for message in self._client.messages:
            payload = message.payload
            yield message.topic.value, payload if isinstance(payload, bytes) else b""


async def fetch_announcement(
    bus: ClassBus, topics: ClassTopics, *, timeout_s: float = 60.0
) -> ClassAnnouncement:
    """The class's plan and coordinator, as the coordinator announced them (retained)."""
    await bus.subscribe(topics.announce)
    try:
        async with asyncio.timeout(timeout_s):
            async for topic, payload in bus.messages():
                if topic != topics.announce or not payload:
                    continue
                try:
                    return parse_announcement(payload)
                except ClassMessageError as exc:
                    raise ClassHostError(
                        f"the class {topics.class_id}'s announcement cannot be read: {exc}"
                    ) from None
    except TimeoutError:
        pass
    raise ClassHostError(
        f"no class {topics.class_id} is announced on the broker (waited {timeout_s:g} s): start "
        "it on the coordinating host first (companion class PLAN --broker URL --hosts N), and "
        "give this host the class id it printed"
    )


def _event_payload(event: object) -> bytes:
    """A class event (a frozen dataclass) as ``{"type": "ClassStarted", ...fields}``."""

    def plain(value: object) -> object:
        return value.value if isinstance(value, enum.Enum) else value

    fields = {k: plain(v) for k, v in dataclasses.asdict(event).items()}  # type: ignore[call-overload]
    return json.dumps({"type": type(event).__name__, **fields}, separators=(",", ":")).encode()


class ClassHost:
    """This host's part of a class across hosts: ``await ClassHost(group, bus, …).run()``.

    The coordinator (``coordinator=True``) announces ``group``'s plan (and, with
    ``discovery``, the class to Home Assistant) and waits for ``expect_hosts`` (other
    hosts' names); the others follow it. ``utc`` is this
    host's UTC clock (seconds): the system's, or a test's.
    """

    def __init__(
        self,
        group: HostedClass,
        bus: ClassBus,
        *,
        host: str,
        coordinator: bool,
        expect_hosts: tuple[str, ...] = (),
        topics: ClassTopics | None = None,
        utc: Callable[[], float] = time.time,
        max_offset_ms: float = DEFAULT_MAX_OFFSET_MS,
        ready_timeout_s: float = 180.0,
        notify: Callable[[str], None] | None = None,
        discovery: bool = True,
    ) -> None:
        if host in expect_hosts:
            raise ClassHostError(f"host {host!r} is this host: --host NAME names the others")
        self.group = group
        self.bus = bus
        self.host = host
        self.coordinator = coordinator
        self.expect_hosts = expect_hosts
        self.topics = topics or ClassTopics(group.class_id)
        self.utc = utc
        self.max_offset_ms = max_offset_ms
        self.ready_timeout_s = ready_timeout_s
        self.discovery = discovery
        self._notify = notify or (lambda text: logger.warning("%s", text))
        self.statuses: dict[str, HostStatus] = {}
        self._remote: dict[str, tuple[tuple[ParticipantSnapshot, ...], float]] = {}
        self._changed = asyncio.Event()
        self._class_start: ClassStart | None = None  # the latest, until this host takes it
        self._start_news = asyncio.Event()
        self._start_utc: float | None = None  # the coordinator's, once published
        self._following = False  # this host took the start: controls move its timeline
        self._heard_seq = 0  # the newest control heard before that
        self._answers: dict[int, asyncio.Future[tuple[TimeAnswer, int]]] = {}
        self._control_seq = 0
        self._started = False  # the coordinator published the start
        self._prepared_s = 0.0
        self.offset: fp.ClockEstimate | None = None

    # -- what others read ------------------------------------------------------------------

    def snapshot(self) -> ClassSnapshot:
        """The class now: this host's participants, then every other host's as last heard."""
        own = self.group.snapshot()
        now = self.utc()
        others: list[ParticipantSnapshot] = []
        for host, (participants, sent) in sorted(self._remote.items()):
            if host == self.host:
                continue
            age = max(now - sent, 0.0)
            others.extend(
                dataclasses.replace(
                    p, seen_s_ago=None if p.seen_s_ago is None else p.seen_s_ago + age
                )
                for p in participants
            )
        return with_participants(own, tuple(others))

    def events(self) -> AsyncIterator[Any]:
        """This host's class events (the class screen's change notifications)."""
        return self.group.events()

    def to_host(self, utc_s: float) -> float:
        """A UTC instant on this host's class clock."""
        clock = self.group.clock
        return clock.now() + (utc_s - self.utc()) * clock.rate

    def to_utc(self, host_s: float) -> float:
        """An instant of this host's class clock in UTC."""
        clock = self.group.clock
        return self.utc() + (host_s - clock.now()) / clock.rate

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> ClassSnapshot:
        """Take part in the class to its end; the final snapshot (every host's participants)."""
        topics = self.topics
        for topic in (topics.start, topics.control, topics.time_answer(self.host)):
            await self.bus.subscribe(topic)
        if self.coordinator:
            for topic in (f"{topics.base}/hosts/#", f"{topics.base}/time/+/ask", topics.cmd):
                await self.bus.subscribe(topic)
            await self.bus.publish(
                topics.announce,
                encode(ClassAnnouncement(topics.class_id, self.host, self.group.plan)),
                retain=True,
            )
            if self.discovery:
                await self.bus.publish(
                    class_discovery_topic(topics.class_id),
                    class_discovery_payload(topics.class_id, self.group.plan.title, topics),
                    retain=True,
                )
        await self._status(HostState.PREPARING)
        tasks = [
            asyncio.create_task(self._listen(), name="class-bus"),
            asyncio.create_task(self._forward(), name="class-events"),
            asyncio.create_task(self._publish_now_and_then(), name="class-state"),
        ]
        try:
            # A task, so that a cancel reaches it and this host can tell the others at once.
            runner = asyncio.ensure_future(self.group.run(start=self._start_at))
            try:
                final = await runner
            except CompanionError as exc:  # this host cannot take part (too late, say)
                await self._status(HostState.REFUSED, note=str(exc))
                raise
            except asyncio.CancelledError:
                await self._leave()  # while the class stops on this host's bands
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
                raise
            # Participants first: whoever reads "done" has this host's last word on them.
            await self._publish_participants()
            await self._status(HostState.DONE)
            if self.coordinator:
                await self._wait_for_the_others()
                state = json.dumps(snapshot_to_json(self.snapshot())).encode()
                await self.bus.publish(topics.state, state, retain=True)
                # A finished class is not there to join: its announcement and start go.
                await self.bus.publish(topics.start, b"", retain=True)
                await self.bus.publish(topics.announce, b"", retain=True)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return with_participants(final, self.snapshot().participants[len(final.participants) :])

    async def _leave(self) -> None:
        """Stopped at this host (Ctrl-C): the coordinator stops the class on every host
        (or, before the start, calls it off); every host says it left, as its will would."""
        with contextlib.suppress(TimeoutError, aiomqtt.MqttError):
            async with asyncio.timeout(_LEAVE_S):
                if self.coordinator and self._started:
                    self._control_seq += 1
                    stop = ClassControl(self._control_seq, SessionCommand.STOP, self.utc())
                    await self.bus.publish(self.topics.control, encode(stop))
                    await self._publish_timeline(stop)
                elif self.coordinator:
                    called_off = ClassStart(None, f"the coordinator ({self.host}) was stopped")
                    await self.bus.publish(self.topics.start, encode(called_off), retain=True)
                await self._status(HostState.OFFLINE, note="stopped at the host")

    async def _start_at(self, prepared_in_s: float) -> float:
        """The group's start hook: agree on the instant with the other hosts."""
        self._prepared_s = prepared_in_s
        if self.coordinator:
            return self.to_host(await self._coordinate_start(prepared_in_s))
        if self.group.resumed:
            raise ClassHostError(
                "this host's bands still run a class that a host left running (killed?), and "
                "a host that --join's cannot resume it: run it again on this host without "
                "--join to follow it to its end here, or stop the bands (companion stop "
                "--band ...) and join the next class"
            )
        self.offset = await self._measure_offset()
        await self._status(HostState.READY)
        start = await self._timeline()
        if start.start_utc is None:
            raise ClassHostError(f"the coordinator refused to start the class: {start.refused}")
        self._control_seq = start.seq
        self._following = True  # the group takes the instant before any other task runs
        began = self.to_host(start.start_utc)
        # The class's zero on its timeline as it runs now: the start, moved by the pauses
        # and skips so far (the group then goes on from there as from a start).
        zero = began if start.at_utc is None else self.to_host(start.at_utc) - start.elapsed_s
        if began < self.group.clock.now():
            logger.info(
                "the class began %.1f s before this host was ready; %d control(s) moved its "
                "timeline %+.3f s since (from the coordinator's retained start)",
                self.group.clock.now() - began,
                start.seq,
                zero - began,
            )
        return zero

    async def _timeline(self) -> ClassStart:
        """The start as this host takes it: the latest the coordinator published, once it
        holds every control this host heard, and the class is not paused (a late host's
        bands join when it resumes)."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        said_paused = False
        while True:
            start = self._class_start
            if start is not None and start.start_utc is None:
                return start
            if start is not None and self._heard_seq > start.seq:
                # The coordinator publishes the start after it has obeyed the control.
                if deadline is None:
                    deadline = loop.time() + _TIMELINE_WAIT_S
                if loop.time() >= deadline:
                    self._notify(
                        f"the class's timeline after control {self._heard_seq} never came: "
                        "this host's bands may be off by that pause or skip"
                    )
                    self._heard_seq = start.seq
                    continue
            elif start is not None and not start.paused:
                return start
            elif start is not None and not said_paused:
                said_paused = True
                self._notify("the class is paused: this host's bands join when it resumes")
            self._start_news.clear()
            left = None if deadline is None else max(deadline - loop.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._start_news.wait()

    async def _coordinate_start(self, prepared_in_s: float) -> float:
        if self.group.resumed:
            return await self._resumed_start()
        await self._status(HostState.READY)
        ready = await self._wait_for_hosts()
        problems: list[str] = []
        for status in ready:
            verdict = self._judge(status)
            if verdict is None:
                continue
            surely, text = verdict
            if surely:
                problems.append(text)
            else:
                self._notify(text)
        if problems:
            reason = "; ".join(problems)
            await self.bus.publish(self.topics.start, encode(ClassStart(None, reason)), retain=True)
            raise ClassHostError(reason)
        slowest = max([prepared_in_s, *(s.prepared_s for s in ready)])
        start_utc = (
            self.utc() + self.group.start_lead_s(slowest) + (_BROKER_MARGIN_S if ready else 0)
        )
        self._started = True
        self._start_utc = start_utc
        await self.bus.publish(self.topics.start, encode(ClassStart(start_utc)), retain=True)
        return start_utc

    async def _resumed_start(self) -> float:
        """The class this host's bands still run (its host was killed) goes on from their
        start: published as the class's, for the screen and the dashboard."""
        if self.expect_hosts:
            raise ClassHostError(
                "this host's bands still run a class that a host left running (killed?), "
                "and a class across hosts cannot resume it: run it again without --hosts to "
                "follow it to its end here, or stop the bands (companion stop --band ...) "
                "and start the class again"
            )
        assert self.group.start_s is not None
        start_utc = self.to_utc(self.group.start_s)
        self._started = True
        self._start_utc = start_utc
        await self._status(HostState.READY)
        await self.bus.publish(self.topics.start, encode(ClassStart(start_utc)), retain=True)
        return start_utc

    async def _publish_timeline(self, control: ClassControl) -> None:
        """The start again, with where ``control`` left the class timeline, for a host that
        comes later (controls are not retained); after a stop, that the class is over."""
        if self._start_utc is None:
            return
        if control.command is SessionCommand.STOP:
            start = ClassStart(None, f"the class was stopped at the coordinator ({self.host})")
        else:
            at = self.to_host(control.at_utc)
            elapsed = self.group.elapsed_s(at)
            start = ClassStart(
                self._start_utc,
                seq=control.seq,
                at_utc=control.at_utc,
                elapsed_s=elapsed,
                paused=self.group.elapsed_s(at + 1.0) == elapsed,  # a paused timeline stands
            )
        await self.bus.publish(self.topics.start, encode(start), retain=True)

    def _judge(self, status: HostStatus) -> tuple[bool, str] | None:
        """(surely too far off, what to say) for a host's clock, or ``None`` when it is fine."""
        allowed_us = self.max_offset_ms * 1000
        if status.offset_us is None or status.uncertainty_us is None:
            return False, f"host {status.host} did not measure its clock: its cues may be off"
        off, bound = abs(status.offset_us), status.uncertainty_us
        if off + bound <= allowed_us:
            return None
        side = "behind" if status.offset_us > 0 else "ahead of"
        where = (
            f"host {status.host}'s clock is {off / 1000:.1f} ms (± {bound / 1000:.1f}) {side} "
            f"the coordinator's ({self.host}); a class allows {self.max_offset_ms:g} ms"
        )
        fix = (
            f": check its time sync (chronyc tracking, or timedatectl timesync-status) on "
            f"{status.host}, wait for NTP to settle, or raise --max-host-offset-ms"
        )
        if off - bound > allowed_us:
            return True, where + fix
        return False, where + " (the broker's delay leaves it unclear)" + fix

    async def _wait_for_hosts(self) -> list[HostStatus]:
        deadline = asyncio.get_running_loop().time() + self.ready_timeout_s
        while True:
            missing = [h for h in self.expect_hosts if self._state_of(h) is not HostState.READY]
            refused = [
                self.statuses[h]
                for h in self.expect_hosts
                if self._state_of(h) is HostState.REFUSED
            ]
            if refused:
                reason = "; ".join(f"host {s.host} cannot take part: {s.note}" for s in refused)
                await self.bus.publish(
                    self.topics.start, encode(ClassStart(None, reason)), retain=True
                )
                raise ClassHostError(reason)
            if not missing:
                return [self.statuses[h] for h in self.expect_hosts]
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                reason = (
                    f"host {', '.join(missing)} did not get ready within {self.ready_timeout_s:g} s"
                    f": run `companion class --join {self.topics.class_id} --host NAME "
                    "--broker URL --band ...` there, or leave it out of --hosts"
                )
                await self.bus.publish(
                    self.topics.start, encode(ClassStart(None, reason)), retain=True
                )
                raise ClassHostError(reason)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._changed.wait()

    async def _wait_for_the_others(self) -> None:
        """Until every other host is done (or gone), so the class's last state has them all."""
        over = (HostState.DONE, HostState.OFFLINE, HostState.REFUSED)

        def others() -> list[str]:  # a host that came after the start is waited for too
            return sorted({*self.expect_hosts, *self.statuses} - {self.host})

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FINISH_WAIT_S):
                while not all(self._state_of(h) in over for h in others()):
                    self._changed.clear()
                    await self._changed.wait()
        late = [h for h in others() if self._state_of(h) not in over]
        if late:
            self._notify(
                f"host {', '.join(late)} had not finished {_FINISH_WAIT_S:g} s after this one: "
                "its participants are shown as last heard"
            )

    def _state_of(self, host: str) -> HostState | None:
        status = self.statuses.get(host)
        return None if status is None else status.state

    async def _measure_offset(self) -> fp.ClockEstimate | None:
        """The coordinator's UTC minus this host's, from exchanges over the broker."""
        samples = []
        for n in range(_TIME_SAMPLES):
            answer = asyncio.get_running_loop().create_future()
            self._answers[n] = answer
            t1 = round(self.utc() * 1_000_000)
            await self.bus.publish(self.topics.time_ask(self.host), encode(TimeAsk(n, t1)), qos=0)
            try:
                async with asyncio.timeout(_TIME_ANSWER_S):
                    reply, t4 = await answer
            except TimeoutError:
                continue
            finally:
                self._answers.pop(n, None)
            if reply.t1_us == t1:
                samples.append(fp.TimeSyncSample(t1, reply.t2_us, reply.t2_us, t4))
        try:
            estimate = fp.estimate_offset(samples)
        except fp.LocalProtocolError as exc:
            self._notify(f"this host's clock against the coordinator's cannot be measured: {exc}")
            return None
        logger.info(
            "clock against the coordinator: %+.2f ms ± %.2f (%d exchanges)",
            estimate.offset_us / 1000,
            estimate.uncertainty_us / 1000,
            estimate.samples,
        )
        return estimate

    async def _status(self, state: HostState, note: str = "") -> None:
        offset = self.offset
        status = HostStatus(
            host=self.host,
            state=state,
            bands=len(self.group.participants),
            links=self.group.links,
            prepared_s=self._prepared_s,
            offset_us=None if offset is None else offset.offset_us,
            uncertainty_us=None if offset is None else offset.uncertainty_us,
            note=note,
        )
        await self.bus.publish(self.topics.host(self.host), encode(status), retain=True)

    # -- the bus ------------------------------------------------------------------------------

    async def _listen(self) -> None:
        async for topic, payload in self.bus.messages():
            try:
                await self._dispatch(topic, payload)
            except (ClassMessageError, ValueError) as exc:
                # Anyone on the broker can publish here: a bad message is dropped, said once.
                logger.warning("class message on %s ignored: %s", topic, exc)

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        topics = self.topics
        if topic == topics.start:
            if payload and not self._following:
                self._class_start = parse_start(payload)
                self._start_news.set()
        elif topic == topics.control:
            if not self.coordinator:
                await self._obey(parse_control(payload))
        elif topic == topics.time_answer(self.host):
            t4 = round(self.utc() * 1_000_000)
            answer = parse_time_answer(payload)
            waiter = self._answers.get(answer.n)
            if waiter is not None and not waiter.done():
                waiter.set_result((answer, t4))
        elif not self.coordinator:
            return
        elif topic == topics.cmd:
            await self._command(parse_command(payload))
        elif (host := topics.host_of(topic)) is not None:
            if topic == topics.time_ask(host):
                ask = parse_time_ask(payload)
                t2 = round(self.utc() * 1_000_000)
                reply = encode(TimeAnswer(ask.n, ask.t1_us, t2))
                await self.bus.publish(topics.time_answer(host), reply, qos=0)
            elif topic == topics.participants(host):
                if payload:
                    self._remote[host] = participants_from_payload(payload)
            elif topic == topics.host(host) and payload:
                status = parse_host_status(payload)
                if status.host != host:
                    raise ClassMessageError(f"a status of {status.host!r} on {host!r}'s topic")
                self.statuses[host] = status
                self._changed.set()
                if status.state is HostState.OFFLINE and host in self.expect_hosts:
                    self._notify(f"host {host} went offline: its bands keep buzzing on their own")

    async def _command(self, command: SessionCommand) -> None:
        """A dashboard's command for the class: numbered, stamped, relayed, obeyed here too."""
        if command is SessionCommand.START:
            raise ValueError("a class starts when every host is ready, not on command")
        self._control_seq += 1
        control = ClassControl(self._control_seq, command, self.utc())
        await self.bus.publish(self.topics.control, encode(control))
        await self._obey(control)
        await self._publish_timeline(control)

    async def command(self, command: SessionCommand) -> None:
        """Pause, resume, skip or stop the class on every host (the coordinator only)."""
        if not self.coordinator:
            raise ClassHostError("only the coordinating host commands the class")
        await self._command(command)

    async def _obey(self, control: ClassControl) -> None:
        if not self.coordinator and not self._following:
            # Before this host takes the start: the start published after it carries it.
            self._heard_seq = max(self._heard_seq, control.seq)
            self._start_news.set()
            return
        if control.seq <= self._control_seq and not self.coordinator:
            return  # a repeat (QoS 1 is at least once)
        self._control_seq = max(self._control_seq, control.seq)
        at = self.to_host(control.at_utc)
        match control.command:
            case SessionCommand.PAUSE:
                await self.group.pause(at=at)
            case SessionCommand.RESUME:
                await self.group.resume(at=at)
            case SessionCommand.SKIP:
                await self.group.skip(at=at)
            case SessionCommand.STOP:
                await self.group.stop()
            case SessionCommand.START:
                pass

    async def _forward(self) -> None:
        """Every session event under its band, every class event on the class's ``event``."""
        async for event in self.group.events():
            if isinstance(event, SessionEvent):
                await self.bus.publish(self.topics.band_event(event.band_id), event_payload(event))
            else:
                await self.bus.publish(self.topics.event, _event_payload(event))
            self._changed.set()

    async def _publish_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(_PUBLISH_EVERY_S)
            await self._publish_participants()
            if self.coordinator:
                state = json.dumps(snapshot_to_json(self.snapshot())).encode()
                await self.bus.publish(self.topics.state, state, retain=True)

    async def _publish_participants(self) -> None:
        own = self.group.snapshot().participants
        await self.bus.publish(
            self.topics.participants(self.host), participants_payload(own, self.utc()), retain=True
        )
