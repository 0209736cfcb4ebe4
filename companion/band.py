"""Band: the async client of one companion band.

``async with Band.connect("Companion Band") as band`` scans, connects, pairs
when the band asks for it, says HELLO (checking the protocol version), reads
who the band is and syncs clocks. From then on one driver task owns the
protocol state machine: notifications go in, the timer ticks it, and the
fragments it wants sent are written in order. Commands are awaited as
requests; band events come out of :meth:`Band.events` exactly once, in order,
even across link drops, because the band replays what the host has not
acknowledged and the state machine drops duplicates. A workout's event is
acknowledged once the reader of :meth:`Band.events` comes back for the next
one, or, for a reader that keeps events itself (a
:class:`~companion.session.Session`, once its store has committed them), when it
calls :meth:`Band.done_with_events`; so a host killed at any moment leaves what
it had not recorded on the band. Events outside a workout are acknowledged on
arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import firmware_protocol as fp
from firmware_protocol import gatt

from .ble.backend import BleakBackend
from .ble.link import GattLink
from .ble.scan import find_band
from .clock import Clock, LoopClock
from .errors import (
    CommandError,
    CompanionError,
    IncompatibleBandError,
    LinkLostError,
    PairingRequiredError,
)
from .events import (
    BandStateChanged,
    Battery,
    ButtonPressed,
    CueFired,
    Event,
    HeartRate,
    InferredStopCause,
    LinkDown,
    LinkUp,
    TimeSynced,
)
from .heart_rate import subscribe_heart_rate
from .plan import Plan
from .state import DeviceInfo
from .timesync import ClockSync

__all__ = ["Band"]

logger = logging.getLogger(__name__)

_RR_UNITS_PER_S: Final = 1024
_PLAN_CHUNK_BYTES: Final = 128  # one command per chunk: small enough for any band's frame buffer
_TIME_SYNC_SAMPLES: Final = 8  # at connect: ~8 round trips, a first bound before START
_REFINE_SAMPLES: Final = 56  # then in the background, while the plan is pushed and after
_RETRANSMIT_S: Final = 0.3  # real seconds before a command is sent again (doubling)
_RECONNECT_BACKOFF_S: Final = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True, slots=True)
class _Place:
    """A band event's place in the band's numbering (the boot, its number)."""

    boot_id: int | None
    number: int


class _Closed:
    """Marks the end of the event stream (the band was closed or lost for good)."""

    def __init__(self, error: CompanionError | None) -> None:
        self.error = error


def _is_event_ack(fragment: bytes) -> bool:
    peeked = fp.peek_fragment(fragment)
    return peeked is not None and peeked[0] is fp.MessageType.EVENT_ACK


def _band_id(serial: str, address: str) -> str:
    """A stable id that is safe in MQTT topics and Home Assistant ids ([a-zA-Z0-9_-])."""
    raw = serial or address
    return re.sub(r"[^a-zA-Z0-9_-]", "", raw.replace(":", "").replace("/", "-")).lower() or "band"


class Band:
    """One connected companion band; build it with :meth:`Band.connect`."""

    def __init__(
        self,
        target: str,
        *,
        backend: BleakBackend | None = None,
        clock: Clock | None = None,
        pair: bool = True,
        scan_timeout: float = 10.0,
        request_timeout: float = 30.0,
        reconnect_for: float = 300.0,
    ) -> None:
        self.target = target
        self._backend = backend
        self._clock = clock or LoopClock()
        self._pair_allowed = pair
        self._scan_timeout = scan_timeout
        self._request_timeout = request_timeout
        self._reconnect_for = reconnect_for

        # An event is acknowledged once the reader of events() is done with it (a Session
        # has recorded it by then), not on arrival: a host killed in between leaves it on
        # the band, which replays it to the next host.
        self._protocol = fp.HostProtocol(
            retransmit_us=round(_RETRANSMIT_S * 1_000_000 * self._clock.rate),
            first_seq=random.randrange(1, 0xFFFF),
            hold_acks=True,
        )
        self._link: GattLink | None = None
        self._link_up = False
        self._closing = False
        self._paired_once = False
        self._pending: dict[int, asyncio.Future[fp.CommandResult | fp.CommandFailed]] = {}
        self._idle = asyncio.Event()  # no command pending: background work may send one
        self._idle.set()
        self._inbox: list[tuple[bytes, int]] = []  # fragments with their arrival time
        self._wake = asyncio.Event()
        # Each band event with the workout it belongs to (0: none), so that only the workout
        # this host follows reaches the reader (see ``follow``), and its place in the band's
        # numbering (None: made by the host), released once the reader is done with it.
        self._events: asyncio.Queue[tuple[int, Event, _Place | None] | _Closed] = asyncio.Queue()
        self._taken: _Place | None = None  # the last event taken by the reader, not released
        self._session_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._advertised_name = ""
        self._control_confirmed = False  # a write with response went through on this link
        self._timesync = ClockSync(self._clock, self._request_result, self._adjust)
        # band times mean nothing before a sync
        self._unsynced: list[tuple[fp.BandEvent, _Place]] = []
        self._plan_on_band: bytes | None = None
        self.capabilities: fp.Capabilities | None = None
        self.info = DeviceInfo(band_id=_band_id("", target), name=target, address=target)

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        backend: BleakBackend | None = None,
        clock: Clock | None = None,
        pair: bool = True,
        scan_timeout: float = 10.0,
        request_timeout: float = 30.0,
        reconnect_for: float = 300.0,
    ) -> Band:
        """A band to use as ``async with Band.connect(name_or_address) as band``.

        ``backend`` reaches a virtual band (see :mod:`companion.sim`); ``clock``
        is the host's time source (a fast one makes demos and tests quick);
        ``reconnect_for`` is how long a dropped link is retried before the
        event stream ends with :class:`LinkLostError`.
        """
        return cls(
            target,
            backend=backend,
            clock=clock,
            pair=pair,
            scan_timeout=scan_timeout,
            request_timeout=request_timeout,
            reconnect_for=reconnect_for,
        )

    async def __aenter__(self) -> Self:
        try:
            await self._open_link()
            self._spawn(self._drive())
            await self._hello()
            await self._read_device_info()
            await self.sync_time()
        except BaseException:
            await self.aclose()
            raise
        # START does not wait for it (a command right after connect must not queue behind a
        # second of exchanges on a slow link); once done, ADJUST moves the timeline to it.
        self._spawn(self._refine())
        self._spawn(self._timesync.follow_drift())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect and stop every task of this band (the band itself keeps running).

        What the reader of :meth:`events` has not come back from stays on the band for
        the next host (which drops it if it belongs to a workout it does not follow).
        """
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._link is not None:
            await self._link.close()
        self._link_up = False
        self._fail_pending(LinkLostError("the band was closed while a command was pending"))
        self._events.put_nowait(_Closed(None))

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- public API --------------------------------------------------------------

    @property
    def band_id(self) -> str:
        """Stable, topic-safe id of this band (from its serial number)."""
        return self.info.band_id

    @property
    def clock(self) -> Clock:
        """The host clock every time in this band's events is measured on."""
        return self._clock

    @property
    def link_up(self) -> bool:
        """Whether the BLE link is up right now (the band runs on without it)."""
        return self._link_up

    @property
    def offset_us(self) -> int:
        """Latest estimate of band clock minus host clock now, in microseconds."""
        return round(self._timesync.offset_at(self._clock.now_us()))

    @property
    def clock_estimate(self) -> fp.ClockEstimate | None:
        """The latest time sync estimate with its bound and drift (None before any sync)."""
        return self._timesync.estimate

    def to_host_time(self, band_us: int) -> float:
        """A band-clock time as host-clock seconds, with the latest sync estimate."""
        return self._timesync.to_host_us(band_us) / 1_000_000

    def to_band_time(self, host_s: float) -> int:
        """A host-clock time as band-clock microseconds."""
        return self._timesync.to_band_us(host_s * 1_000_000)

    @property
    def session_id(self) -> int:
        """The band workout this host follows (0: none); see :meth:`follow`."""
        return self._session_id

    def follow(self, session_id: int) -> None:
        """Follow band workout ``session_id`` (adopting it): only its events, and events
        outside any workout (heart rate between workouts), come out of :meth:`events`."""
        self._session_id = session_id
        self._protocol.follow(session_id)

    async def events(self, *, kept_by_reader: bool = False) -> AsyncIterator[Event]:
        """Band events, in order, each once: cues, band state, heart rate, buttons, link.

        Only events of the workout this host follows (started with :meth:`start` or
        adopted with :meth:`follow`) and events outside any workout come out: another
        workout's events, replayed by the band, are dropped. There is one stream per
        band: a :class:`~companion.session.Session` normally consumes it and fans it
        out. It ends when the band is closed, and raises :class:`LinkLostError` if the
        link could not be restored.

        An event of a workout is acknowledged to the band when the reader comes back
        for the next one, or calls :meth:`done_with_events`: until then the band keeps
        it, and replays it to the next host if this one dies. With
        ``kept_by_reader`` only :meth:`done_with_events` does: for a reader whose
        records are durable later than it takes the next event (a store that
        commits in groups).
        """
        while True:
            item = await self._events.get()
            if isinstance(item, _Closed):
                self._events.put_nowait(item)  # every later reader ends too
                if item.error is not None:
                    raise item.error
                return
            session_id, event, place = item
            if session_id and session_id != self._session_id:
                logger.debug("dropped an event of band workout %08x: %r", session_id, event)
                if self._taken is None:
                    self._release(place)
                else:  # acknowledging it would take in the reader's, not yet kept
                    self._taken = place
                continue
            if place is not None:
                self._taken = place
            yield event
            if not kept_by_reader:
                self.done_with_events()  # the reader came back for the next: done with this one

    def done_with_events(self) -> None:
        """The reader of :meth:`events` has kept every event it took (recorded it, or
        found it needs no record): they are acknowledged now.

        Held, they and every later one would be resent by the band every 400 ms for
        as long as this host stays connected.
        """
        place, self._taken = self._taken, None
        self._release(place)

    async def heart_rate(self) -> AsyncIterator[HeartRate]:
        """Heart rate from the band's standard Heart Rate Service, stamped on arrival.

        Independent of the companion protocol (whose samples carry the band's own
        timestamps and arrive through :meth:`events`): this is the same code path
        a standard strap uses, see :class:`companion.heart_rate.HeartRateSensor`.
        """
        if self._link is None:
            raise LinkLostError(f"band {self.target} is not connected")
        async for sample in subscribe_heart_rate(self._link, self._clock):
            yield sample

    async def push_plan(self, plan: Plan) -> bool:
        """Send ``plan`` to the band; False when the band already holds it (nothing sent)."""
        capabilities = self._require_capabilities()
        plan.check_fits(capabilities)
        data = fp.encode_plan(plan.to_wire())
        plan_id = fp.plan_id(data)
        if self._plan_on_band == plan_id:
            logger.info("band %s already holds plan %s", self.band_id, plan_id.hex())
            return False
        for offset in range(0, len(data), _PLAN_CHUNK_BYTES):
            chunk = data[offset : offset + _PLAN_CHUNK_BYTES]
            await self._request(fp.PlanChunk(plan_id, len(data), offset, chunk))
        self._plan_on_band = plan_id
        logger.info("pushed plan %s (%d bytes) to %s", plan_id.hex(), len(data), self.band_id)
        return True

    async def sync_time(self, samples: int = _TIME_SYNC_SAMPLES) -> fp.ClockEstimate:
        """``samples`` more NTP-style exchanges, combined with every earlier one, then the
        running timeline (if any) moved to follow the band's drift through ADJUST."""
        estimate = await self._timesync.sync(samples)
        await self._synced(estimate)
        return estimate

    async def _synced(self, estimate: fp.ClockEstimate) -> None:
        self._emit(TimeSynced(estimate.offset_us, estimate.uncertainty_us, self._clock.now()))
        if self._unsynced:
            for held, place in self._unsynced:
                self._emit(self._convert(held), held.session_id, place)
            self._unsynced.clear()
        await self._timesync.correct()

    async def _refine(self) -> None:
        try:
            estimate = None
            for _ in range(_REFINE_SAMPLES):
                # Only while nothing else is pending: the user's commands (a plan push,
                # START, a pause) never queue behind background exchanges.
                await self._idle.wait()
                estimate = await self._timesync.sync(1)
            if estimate is not None:
                await self._synced(estimate)
        except CompanionError as exc:
            logger.info("background time sync refinement stopped: %s", exc)

    async def _adjust(self, delta_us: int) -> None:
        await self._request(fp.Adjust(delta_us))

    def new_session_id(self) -> int:
        """A fresh band workout id for :meth:`start` (random, never the band's last one)."""
        last = self.capabilities.session_id if self.capabilities is not None else 0
        while (session_id := random.randrange(1, 1 << 32)) == last:
            pass
        return session_id

    async def start(self, *, lead_s: float = 0.5, session_id: int | None = None) -> float:
        """Start the pushed plan ``lead_s`` from now; returns the start in host-clock seconds.

        The band runs the timeline from its own clock after this: every cue
        fires on time even if the link drops right after. ``session_id`` is the
        workout's identity on the band (default: :meth:`new_session_id`); a host
        that records it can adopt the workout after a restart.
        """
        return await self.start_at(self._clock.now() + lead_s, session_id=session_id)

    async def start_at(self, host_s: float, *, session_id: int | None = None) -> float:
        """Start the pushed plan at host-clock instant ``host_s``; returns it.

        The instant goes to the band through this band's own clock estimate, so
        bands with different clocks given one instant start together (a group
        class). The band refuses a start more than a minute behind its clock and
        fires at once every cue due before now: start in the future.
        """
        if self._plan_on_band is None:
            raise CompanionError("no plan on the band: call push_plan(plan) before start()")
        start = host_s
        start_band_us = self.to_band_time(start)
        session_id = session_id or self.new_session_id()
        self.follow(session_id)  # before START: its first events may follow the ACK
        await self._request(fp.Start(self._plan_on_band, start_band_us, session_id))
        self._timesync.started(round(start * 1_000_000), start_band_us)
        return start

    def adopt(self, *, at: float | None = None) -> float:
        """Follow the workout the band runs now (say, one this host started before it
        crashed); returns its start in host-clock seconds, where the band's timeline is.

        Its missed events come out of :meth:`events` (the band replays what was never
        acknowledged), and drift correction carries on from the band's own adjustments.
        With ``at`` (host-clock seconds) the timeline is kept due at that instant
        instead: the next :meth:`sync_time` moves it there (a group class keeps every
        band on its one start instant this way, however long the band was unlinked).
        """
        capabilities = self._require_capabilities()
        if not capabilities.session_id:
            raise CompanionError(f"band {self.target} has run no workout since it started")
        self.follow(capabilities.session_id)
        start_band_us = capabilities.session_start_us
        adjust_us = capabilities.session_adjust_us
        start = self.to_host_time(start_band_us + adjust_us) if at is None else at
        self._timesync.started(round(start * 1_000_000), start_band_us, adjusted_us=adjust_us)
        return start

    async def pause(self) -> None:
        """Pause the timeline on the band (cues stop until :meth:`resume`)."""
        await self._request(fp.Pause())

    async def resume(self) -> None:
        """Resume the timeline, shifted by the time spent paused."""
        await self._request(fp.Resume())

    async def stop(self) -> None:
        """End the session on the band at once; it plays the "stopped" pattern."""
        await self._request(fp.Stop())

    async def skip(self) -> None:
        """Jump to the next step."""
        await self._request(fp.Skip())

    # -- requests ----------------------------------------------------------------

    def _require_capabilities(self) -> fp.Capabilities:
        if self.capabilities is None:
            raise CompanionError("the band has not said HELLO yet: use `async with Band.connect()`")
        return self.capabilities

    async def _request(self, command: fp.Command) -> fp.Reply:
        result = await self._request_result(command)
        reply = result.reply
        if isinstance(reply, fp.Nack):
            name = type(command).__name__
            raise CommandError(
                f"band refused {name}: {reply.code.name.lower()} {reply.detail}".rstrip(),
                code=int(reply.code),
            )
        return reply

    async def _request_result(self, command: fp.Command) -> fp.CommandResult:
        seq = self._protocol.send_command(command, self._clock.now_us())
        future: asyncio.Future[fp.CommandResult | fp.CommandFailed] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[seq] = future
        self._idle.clear()
        self._wake.set()
        try:
            async with asyncio.timeout(self._request_timeout):
                outcome = await future
        except TimeoutError:
            raise LinkLostError(
                f"band {self.target} did not answer {type(command).__name__} within "
                f"{self._request_timeout:g} s: is it still in range?"
            ) from None
        finally:
            self._pending.pop(seq, None)
            if not self._pending:
                self._idle.set()
        if isinstance(outcome, fp.CommandFailed):
            raise LinkLostError(
                f"band {self.target} never acknowledged {type(command).__name__} "
                f"after {outcome.attempts} attempts"
            )
        return outcome

    def _fail_pending(self, error: CompanionError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    # -- connection --------------------------------------------------------------

    async def _open_link(self) -> None:
        device = await find_band(self.target, timeout=self._scan_timeout, backend=self._backend)
        self._advertised_name = device.name or ""
        link = await GattLink.open(device, backend=self._backend, on_disconnect=self._on_disconnect)
        if not link.has_characteristic(gatt.CONTROL_CHAR_UUID):
            await link.close()
            raise IncompatibleBandError(
                f"{self.target} ({device.address}) has no companion service: it is not a "
                "companion band. If it is a standard heart-rate sensor, read it with "
                "companion.heart_rate.HeartRateSensor; `companion scan` shows what each offers"
            )
        self._link = link
        self._control_confirmed = False
        await self._subscribe(link)
        self._link_up = True
        self._protocol.connection_made(link.mtu, self._clock.now_us())
        self._wake.set()

    async def _subscribe(self, link: GattLink) -> None:
        try:
            await link.subscribe(gatt.EVENTS_CHAR_UUID, self._on_fragment)
        except PairingRequiredError:
            await self._pair(link)
            await link.subscribe(gatt.EVENTS_CHAR_UUID, self._on_fragment)
        if link.has_characteristic(gatt.BATTERY_LEVEL_UUID):
            await link.subscribe(gatt.BATTERY_LEVEL_UUID, self._on_battery)

    async def _pair(self, link: GattLink) -> None:
        if not self._pair_allowed:
            raise PairingRequiredError(
                f"band {link.address} requires pairing: run `companion pair {link.address}` "
                "once, or connect with pair=True"
            )
        logger.info("pairing with %s", link.address)
        await link.pair()
        self._paired_once = True

    def _on_disconnect(self) -> None:
        if not self._link_up:
            return
        self._link_up = False
        self._protocol.connection_lost()
        if self._closing:
            return
        logger.warning("link to %s dropped; the band keeps running, reconnecting", self.target)
        self._emit(LinkDown(self._clock.now(), "link dropped"))
        self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        deadline = self._clock.now() + self._reconnect_for * self._clock.rate
        attempt = 0
        while not self._closing:
            try:
                await self._open_link()
            except PairingRequiredError as exc:
                self._end(exc)
                return
            except CompanionError as exc:
                if self._clock.now() >= deadline:
                    self._end(
                        LinkLostError(
                            f"band {self.target} stayed out of reach for "
                            f"{self._reconnect_for:g} s ({exc}); the session on the band may "
                            "still be running"
                        )
                    )
                    return
                delay = _RECONNECT_BACKOFF_S[min(attempt, len(_RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                logger.info(
                    "reconnect to %s failed (%s); retrying in %g s", self.target, exc, delay
                )
                await asyncio.sleep(delay)
                continue
            self._emit(LinkUp(self._clock.now()))
            try:
                await self._hello()  # a rebooted band says so here (new boot id, no plan)
                await self.sync_time()
            except CompanionError as exc:
                logger.info("resync after reconnect failed (%s); the link will be retried", exc)
            return

    def _end(self, error: CompanionError) -> None:
        self._fail_pending(error)
        self._events.put_nowait(_Closed(error))

    async def _hello(self) -> None:
        reply = await self._request(fp.Hello(fp.PROTOCOL_VERSION, fp.PROTOCOL_VERSION))
        if not isinstance(reply, fp.Capabilities):
            raise IncompatibleBandError(f"band answered HELLO with {type(reply).__name__}")
        if reply.protocol_version != fp.PROTOCOL_VERSION:
            raise IncompatibleBandError(
                f"band speaks protocol v{reply.protocol_version}, this host v"
                f"{fp.PROTOCOL_VERSION}: update companion (pip install -U companion) or the "
                "band's firmware"
            )
        if self.capabilities is not None and reply.boot_id != self.capabilities.boot_id:
            logger.warning("band %s rebooted: its plan and session are gone", self.target)
            if self._timesync.running:  # a workout was running: it ended with the reboot
                self._emit(
                    BandStateChanged(
                        fp.SessionStateCode.STOPPED,
                        0,
                        -1,
                        0.0,
                        InferredStopCause.REBOOT,
                        self._clock.now(),
                    ),
                    self._session_id,
                )
            self._timesync.reset()
        self.capabilities = reply
        held = reply.plan_id
        self._plan_on_band = held if any(held) else None

    async def _read_device_info(self) -> None:
        assert self._link is not None
        fields: dict[str, str] = {}
        for key, uuid in (
            ("manufacturer", gatt.MANUFACTURER_NAME_UUID),
            ("model", gatt.MODEL_NUMBER_UUID),
            ("firmware", gatt.FIRMWARE_REVISION_UUID),
            ("serial", gatt.SERIAL_NUMBER_UUID),
        ):
            if self._link.has_characteristic(uuid):
                fields[key] = (await self._link.read(uuid)).decode("utf-8", "replace").strip("\0 ")
        serial = fields.get("serial", "")
        self.info = DeviceInfo(
            band_id=_band_id(serial, self._link.address),
            name=self._advertised_name or self.target,
            address=self._link.address,
            manufacturer=fields.get("manufacturer", ""),
            model=fields.get("model", ""),
            firmware=fields.get("firmware", ""),
            serial=serial,
        )
        if self._link.has_characteristic(gatt.BATTERY_LEVEL_UUID):
            self._on_battery(await self._link.read(gatt.BATTERY_LEVEL_UUID))

    # -- the driver: the only code that touches the protocol state machine -------

    def _on_fragment(self, data: bytes) -> None:
        # Stamped on arrival, not when the driver wakes: a time sync answer's receive time.
        self._inbox.append((data, self._clock.now_us()))
        self._wake.set()

    def _on_battery(self, data: bytes) -> None:
        if data:
            self._emit(Battery(data[0]))

    async def _drive(self) -> None:
        while True:
            await self._wait_for_work()
            now = self._clock.now_us()
            inbox, self._inbox = self._inbox, []
            for fragment, arrived_us in inbox:
                try:
                    self._protocol.receive_data(fragment, arrived_us)
                except fp.ProtocolError as exc:
                    logger.warning("dropped a malformed frame from %s: %s", self.target, exc)
            self._protocol.tick(now)
            self._dispatch()
            await self._flush()

    async def _wait_for_work(self) -> None:
        if self._inbox:
            return
        deadline_us = self._protocol.next_deadline_us()
        if deadline_us is None:
            await self._wake.wait()
        else:
            waiter = asyncio.ensure_future(self._wake.wait())
            timer = asyncio.ensure_future(self._clock.sleep_until(deadline_us / 1_000_000))
            try:
                await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                timer.cancel()
        self._wake.clear()

    async def _flush(self) -> None:
        fragments = self._protocol.data_to_send()
        link = self._link
        if not fragments or link is None or not self._link_up:
            return  # while the link is down the state machine retransmits after reconnect
        for fragment in fragments:
            response = self._timesync.write_mode(fragment, confirmed_link=self._control_confirmed)
            if response and self._control_confirmed and _is_event_ack(fragment):
                # An acknowledgement is cumulative and idempotent: one lost is made good by
                # the band's retransmission and the next one, so it needs no write response
                # (which cost a second inbound packet per heart-rate sample).
                response = False
            try:
                await link.write(gatt.CONTROL_CHAR_UUID, fragment, response=response)
                self._control_confirmed |= response
            except PairingRequiredError as exc:
                if self._paired_once or not self._pair_allowed:
                    self._end(exc)
                    return
                try:
                    await self._pair(link)
                    await link.write(gatt.CONTROL_CHAR_UUID, fragment)
                except CompanionError as pairing_error:
                    self._end(pairing_error)
                    return
            except LinkLostError as exc:
                logger.debug("write to %s lost: %s", self.target, exc)
                return

    def _dispatch(self) -> None:
        while (item := self._protocol.next_event()) is not None:
            if isinstance(item, fp.CommandResult | fp.CommandFailed):
                future = self._pending.get(item.seq)
                if future is not None and not future.done():
                    future.set_result(item)
            else:
                place = _Place(self._protocol.boot_id, item.event_number)
                if self._timesync.synced:
                    self._emit(self._convert(item), item.session_id, place)
                else:
                    # Band times mean nothing on the host until the first time sync.
                    self._unsynced.append((item, place))

    def _convert(self, event: fp.BandEvent) -> Event:
        t = self.to_host_time(event.band_time_us)
        match event:
            case fp.CueFired():
                return CueFired(
                    cue_id=event.cue_id,
                    kind=event.kind,
                    round=event.round,
                    step_index=event.step_index,
                    planned=self.to_host_time(event.planned_us),
                    fired=self.to_host_time(event.fired_us),
                )
            case fp.SessionState():
                if event.state in (
                    fp.SessionStateCode.DONE,
                    fp.SessionStateCode.STOPPED,
                ) and event.session_id in (0, self._session_id):
                    self._timesync.ended()
                return BandStateChanged(
                    state=event.state,
                    round=event.round,
                    step_index=event.step_index,
                    shift_s=event.shift_us / 1_000_000,
                    cause=event.cause,
                    t=t,
                )
            case fp.HeartRateSample():
                return HeartRate(
                    bpm=event.bpm,
                    t=t,
                    rr_ms=tuple(rr * 1000 / _RR_UNITS_PER_S for rr in event.rr_1024),
                    contact=event.contact,
                )
            case fp.ButtonPressed():
                return ButtonPressed(event.button, t)
        raise AssertionError(f"unhandled band event {event!r}")

    def _emit(self, event: Event, session_id: int = 0, place: _Place | None = None) -> None:
        self._events.put_nowait((session_id, event, place))

    def _release(self, place: _Place | None) -> None:
        """The reader is done with the event at ``place``: the driver acknowledges it."""
        if place is not None:
            self._protocol.release(place.number, place.boot_id)
            self._wake.set()
