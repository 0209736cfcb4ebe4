"""A group class on one host: one plan, many bands, one start instant.

Every band gets the plan and a START at the same host-clock instant, each
converted with that band's own clock estimate, so every wrist buzzes on its
own timer at the same moment. A class is many :class:`~companion.session.Session`
objects with one instant: each participant's session records and checks its
band as a lone session would.

**More bands than links.** An adapter holds ~5-7 links, so a band-timed band
is not kept linked: the class rotates through them within ``links`` slots
(connect, sync, push, START or re-sync, disconnect, next). Each turn adopts the
band's workout at the class's instant, so the turn's time sync moves the band's
timeline back onto it (drift, and a pause or skip that reached this band later
than others, are both taken out by one ADJUST); the band replays on the turn
what it fired meanwhile. Host-timed kinds need a live link for the whole class
and take a slot each (:class:`LinkBudgetError` when they do not fit).

**Joining late.** A band refuses a START more than a minute behind its clock
and fires at once every cue due before now (``firmware_protocol.band``): a late
START would burst past cues on the wrist. So a band that joins a running class
gets the rest of the plan from the next round that is far enough ahead, started
at that round's instant on the class timeline; the rounds before count as
missed for that participant.

Pause, resume, skip and stop reach a linked band at once and a rotated one on
its next turn (its timeline is then realigned on the class's at that turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import statistics
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

import firmware_protocol as fp

from .band import Band
from .ble.backend import BleakBackend
from .clock import Clock, LoopClock
from .clock_line import ClockPoint, fit_clock_line
from .errors import CompanionError, LinkLostError
from .events import (
    BandStateChanged,
    ButtonPressed,
    CueFired,
    CueProblem,
    CueWarning,
    Event,
    HeartRate,
    SessionEvent,
    SessionStopped,
    StopReason,
)
from .group_state import ClassSnapshot, ParticipantSnapshot, heart_zone
from .kinds import BandKind, HostTimedBand, connect_for_session
from .kinds import Capabilities as KindCapabilities
from .plan import Plan
from .session import Session
from .state import CueMode, DeviceInfo, SessionCommand, SessionPhase
from .store import Store

__all__ = [
    "Class",
    "ClassEnded",
    "ClassEvent",
    "ClassStarted",
    "ClassStopped",
    "GroupClass",
    "LinkBudgetError",
    "Participant",
    "ParticipantJoined",
    "ParticipantStopped",
    "StartHook",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_HR: Final = 190
_TURN_SCAN_S: Final = 1.5  # a rotated band not found this soon is out of range: try next turn
_TURN_RECONNECT_S: Final = 1.0
_TURN_DWELL_S: Final = 2.0  # at most this long per turn waiting for the band's replay
_TURN_SYNC_SAMPLES: Final = 24  # added to the 8 each connect takes (fewer: a noisier line)
_START_SYNC_SAMPLES: Final = 48  # before START: the first cues rest on this estimate alone
_TURN_EVERY_S: Final = 10.0  # at least this between two turns of one band
_START_MARGIN_S: Final = 2.0
_FIT_TURNS: Final = 12  # the last turns' estimates a band's clock line is fitted through
_FLUSH_S: Final = 0.1  # before a turn's link closes: the last acknowledgements go out
_LAST_TURN_HR_S: Final = 60.0  # a rotated band's last heart rate is shown this long (real s)
_STOP_TURN_S: Final = 5.0  # a last turn's bound (real seconds) when a cancelled class stops


class LinkBudgetError(CompanionError):
    """The class needs more live links than the host's budget (host-timed bands)."""


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone in the class: their band (name or address), and what sets their zones."""

    target: str
    name: str = ""
    age: int | None = None
    max_hr: int | None = None

    @property
    def resolved_max_hr(self) -> int:
        """The max heart rate their zones use: given, else 220 - age, else 190."""
        if self.max_hr:
            return self.max_hr
        return 220 - self.age if self.age else DEFAULT_MAX_HR


@dataclass(frozen=True, slots=True)
class ClassStarted:
    """Every band was given the class's start instant (host clock); or, ``resumed``, the
    bands already ran the class, left running by a host that stopped without ending it."""

    class_id: str
    start: float
    bands: int
    rotating: bool
    links: int
    resumed: bool = False
    from_round: int = 1
    """The round this host's bands start from: later than 1 when the host came after the
    class began (the rounds before are its bands' missed cues, :class:`ParticipantJoined`;
    ``start`` is then the class's, moved by the pauses and skips before it came)."""


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    """A band joined the running class from ``from_round``, starting at ``start``."""

    band_id: str
    from_round: int
    start: float
    missed_cues: int


@dataclass(frozen=True, slots=True)
class ParticipantStopped:
    """One participant's workout ended early (the pain button, say); the class goes on."""

    band_id: str
    reason: StopReason
    t: float


@dataclass(frozen=True, slots=True)
class ClassStopped:
    """The whole class was stopped (``reason``: who asked): every band gets STOP, a rotated
    one on its next turn, and its participant then stops."""

    class_id: str
    reason: StopReason
    t: float


@dataclass(frozen=True, slots=True)
class ClassEnded:
    """Every participant's session has ended."""

    class_id: str
    t: float


ClassEvent: TypeAlias = (
    SessionEvent | ClassStarted | ParticipantJoined | ParticipantStopped | ClassStopped | ClassEnded
)

StartHook: TypeAlias = Callable[[float], Awaitable[float]]
"""Given how long this host's first contacts took (s), the host-clock instant to start at:
how a class across several hosts agrees on one instant (:mod:`companion.mqtt.class_hosts`)."""


class _Seat:
    """One participant's band as a session sees it (a :class:`SessionBand`).

    ``held``: one live link for the whole class (any kind). Otherwise the band is
    rotated: the class connects it on its turns, and its events, replayed by the
    band on each turn, come out of one stream that lasts the class.
    """

    def __init__(self, group: GroupClass, participant: Participant, plan: Plan) -> None:
        self.group = group
        self.participant = participant
        self.plan = plan
        self.held: Band | HostTimedBand | None = None
        self.linked: Band | None = None  # a rotated band's link on its turn
        self.info = DeviceInfo(band_id=participant.target, name=participant.target, address="")
        self.fp_capabilities: fp.Capabilities | None = None
        self.band_session = 0
        self.start_s = 0.0
        self.shift_base_s = 0.0  # the class's shift when this band's timeline was started
        self.first_round = 1
        self.missed_before = 0  # cues of the rounds before a late join
        self.heard_at: float | None = None
        self.battery: int | None = None
        self.heart_rate: HeartRate | None = None  # the latest reading heard
        self.session: Session | None = None
        self.pending: list[SessionCommand] = []  # for a rotated band's next turn
        self.started = asyncio.Event()  # START went through: the band's turns begin
        self.band_t = -math.inf  # the latest band-stamped time heard (host clock)
        self.offsets: list[ClockPoint] = []  # each turn's sync: the band's clock line
        # Where the class workout this band still runs started (host clock), when a host
        # that recorded it in this store stopped without ending it (killed, say).
        self.resumed_start: float | None = None
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._cues_seen: set[int] = set()
        self._last_t = -math.inf

    # -- SessionBand -------------------------------------------------------------------

    @property
    def band_id(self) -> str:
        return self.info.band_id

    @property
    def target(self) -> str:
        return self.participant.target

    @property
    def clock(self) -> Clock:
        return self.group.clock

    @property
    def link_up(self) -> bool:
        band = self.held or self.linked
        return band is not None and band.link_up

    @property
    def capabilities(self) -> fp.Capabilities | KindCapabilities | None:
        return self.held.capabilities if self.held is not None else self.fp_capabilities

    def done_with_events(self) -> None:
        if self.held is not None:
            self.held.done_with_events()  # a rotated band's events are taken as they come

    async def events(self, *, kept_by_reader: bool = False) -> AsyncIterator[Event]:
        if self.held is not None:
            async for event in self.held.events(kept_by_reader=kept_by_reader):
                self._heard(event)
                yield event
            return
        while (item := await self._queue.get()) is not None:
            yield item

    async def push_plan(self, plan: Plan) -> bool:
        if self.held is not None:
            return await self.held.push_plan(plan)
        return False  # pushed on the band's first turn

    async def sync_time(self, samples: int = 8) -> fp.ClockEstimate:
        band = self.held or self.linked
        if band is None:
            raise LinkLostError(f"band {self.target} is not linked now (rotated)")
        return await band.sync_time(samples)

    def new_session_id(self) -> int:
        last = self.fp_capabilities.session_id if self.fp_capabilities is not None else 0
        while (session_id := random.randrange(1, 1 << 32)) == last:
            pass
        return session_id

    async def start(self, *, lead_s: float = 0.5, session_id: int | None = None) -> float:
        """Start at the class's instant (``lead_s`` is the class's to choose)."""
        del lead_s
        self.band_session = session_id or self.new_session_id()
        store, session = self.group.store, self.session
        if store is not None and session is not None:  # its row is there: START comes next
            store.link_class_session(session.session_id, self.group.class_id)
        held = self.held
        if isinstance(held, Band):
            return await held.start_at(self.start_s, session_id=self.band_session)
        if held is not None:
            await held.start(
                lead_s=max(self.start_s - self.clock.now(), 0.0), session_id=self.band_session
            )
            return self.start_s
        await self.group.turn(self, starting=True)
        self.started.set()
        return self.start_s

    def adopt(self) -> float:
        """Follow the class workout the band still runs: the class resumed it (``run``)."""
        if self.resumed_start is None:
            raise CompanionError(
                f"band {self.target} runs a workout this class did not start: stop it "
                f"(companion stop --band {self.target}) and start the class again"
            )
        if isinstance(self.held, Band):
            self.held.adopt()
        return self.start_s

    async def pause(self) -> None:
        await self._command(SessionCommand.PAUSE)

    async def resume(self) -> None:
        await self._command(SessionCommand.RESUME)

    async def skip(self) -> None:
        await self._command(SessionCommand.SKIP)

    async def stop(self) -> None:
        await self._command(SessionCommand.STOP)

    async def _command(self, command: SessionCommand) -> None:
        band = self.held or self.linked
        # On the START turn a command waits for the START, which it follows on that turn.
        if band is not None and band.link_up and (self.held or self.started.is_set()):
            await getattr(band, command.value)()  # the band's method of the command's name
            return
        # Not awaited: a band out of range must not hold the whole class's command up.
        logger.info("band %s gets %s on its next turn", self.band_id, command.value)
        self.pending.append(command)

    # -- what the class does with it ----------------------------------------------------

    def _heard(self, event: Event) -> None:
        self.heard_at = self.clock.now()
        if isinstance(event, HeartRate):
            self.heart_rate = event
        battery = getattr(event, "percent", None)
        if isinstance(battery, int):
            self.battery = battery

    def deliver(self, event: Event) -> None:
        """A rotated band's event: once each (a replay the band repeats is dropped)."""
        if isinstance(event, CueFired) and event.cue_id != fp.STOPPED_CUE_ID:
            if event.cue_id in self._cues_seen:
                return
            self._cues_seen.add(event.cue_id)
        if isinstance(event, HeartRate | BandStateChanged | ButtonPressed):
            # Band-stamped, in the band's order: an older one is a replay already taken.
            if event.t < self._last_t - 0.002:
                return
            self._last_t = max(self._last_t, event.t)
            self.band_t = max(self.band_t, event.t)
        self._heard(event)
        self._queue.put_nowait(event)

    def close(self) -> None:
        self._queue.put_nowait(None)

    def correction_s(self, band: Band, target: float | None = None) -> float:
        """How far to move an instant given to ``band`` so that it lands where the clock
        line through every recent turn puts it, rather than this turn's estimate alone.

        Each turn's sync is a fresh estimate, a little off under link jitter; taken on
        its own it would move the band's timeline by that noise at every turn
        (:mod:`companion.clock_line` says how the line is fitted).
        """
        estimate = band.clock_estimate
        if estimate is None:
            return 0.0
        now = self.clock.now()
        offset = estimate.offset_at(now * 1_000_000)
        point = ClockPoint(now, offset, estimate.uncertainty_us)
        self.offsets = [*self.offsets[-(_FIT_TURNS - 1) :], point]
        # Where the timeline should be right: the instant itself, or the middle of the
        # wait for the next turn, along the fitted drift.
        fitted = fit_clock_line(self.offsets).offset_at(now if target is None else target)
        return (fitted - offset) / 1_000_000


class GroupClass:
    """One plan on many bands of any kind from one host: ``await GroupClass(plan, …).run()``."""

    def __init__(
        self,
        plan: Plan,
        participants: list[Participant] | list[str],
        *,
        backend: BleakBackend | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        links: int = 5,
        kind: BandKind | None = None,
        class_id: str | None = None,
        turn_scan_s: float = _TURN_SCAN_S,
        grace_s: float = 120.0,
        turn_every_s: float = _TURN_EVERY_S,
    ) -> None:
        if links < 1:
            raise CompanionError("a class needs at least one link: --links 1 or more")
        self.plan = plan
        self.participants = [
            p if isinstance(p, Participant) else Participant(p) for p in participants
        ]
        self.backend = backend
        self.clock = clock or LoopClock()
        self.store = store
        self.links = links
        self.kind = kind
        self.class_id = class_id or uuid.uuid4().hex[:12]
        self.rotating = len(self.participants) > links
        self._turn_scan_s = turn_scan_s
        self.grace_s = grace_s
        self.turn_every_s = turn_every_s
        self._timeline = fp.build_timeline(plan.to_wire())
        self._slots = asyncio.Semaphore(links)
        # One connection set-up at a time, as a controller makes one LE connection at a time
        # (concurrent set-ups on the virtual adapter stall for a minute).
        self._connecting = asyncio.Lock()
        self._seats: list[_Seat] = []
        self._stack = contextlib.AsyncExitStack()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribers: list[asyncio.Queue[ClassEvent | None]] = []
        self._history: list[ClassEvent] = []
        self._turn_s = 1.0
        self._prepared_in_s = 0.0
        self.start_s: float | None = None
        # The bands still ran this class (its host was killed): ``run`` resumed it.
        self.resumed = False
        self._shift_s = 0.0
        self._paused_at: float | None = None
        self._stats: dict[str, tuple[int, int, float | None]] = {}
        self._ended = asyncio.Event()
        self._stopped = False  # stop() was asked for: said once on the class's events
        self._hurry = asyncio.Event()  # cancelled: every rotated band's last turn, now
        self.cancel_reason = StopReason.HOST
        """What a cancelled class (Ctrl-C at the CLI) records as the bands' stop reason."""

    # -- what others read ------------------------------------------------------------------

    def events(self) -> AsyncIterator[ClassEvent]:
        """Every class event from the first: participants' session events and the class's own."""
        queue: asyncio.Queue[ClassEvent | None] = asyncio.Queue()
        for event in self._history:
            queue.put_nowait(event)
        if self._ended.is_set():
            queue.put_nowait(None)
        else:
            self._subscribers.append(queue)

        async def iterate() -> AsyncIterator[ClassEvent]:
            while (item := await queue.get()) is not None:
                yield item

        return iterate()

    @property
    def sessions(self) -> list[Session]:
        """Each participant's session (in the order given)."""
        return [seat.session for seat in self._seats if seat.session is not None]

    def elapsed_s(self, now: float | None = None) -> float:
        """Where the class timeline is (seconds from its start, pauses left out)."""
        if self.start_s is None:
            return 0.0
        now = self.clock.now() if now is None else now
        if self._paused_at is not None:
            now = self._paused_at
        return now - self.start_s - self._shift_s

    def snapshot(self) -> ClassSnapshot:
        """The class and every participant now: what the class screen shows."""
        now = self.clock.now()
        elapsed_us = round(self.elapsed_s(now) * 1_000_000)
        segment = self._timeline.segment_at(elapsed_us) if self.start_s is not None else None
        steps = self.plan.steps
        if segment is None:
            exercise, next_name, remaining = "", "", 0.0
            round_number = 0 if elapsed_us < 0 or self.start_s is None else self.plan.rounds
        else:
            round_number = segment.round
            exercise = "rest" if segment.step_index < 0 else steps[segment.step_index].name
            later = [s for s in self._timeline.segments if s.start_us >= segment.end_us]
            next_name = (
                ("rest" if later[0].step_index < 0 else steps[later[0].step_index].name)
                if later
                else ""
            )
            remaining = (segment.end_us - elapsed_us) / 1_000_000
        return ClassSnapshot(
            class_id=self.class_id,
            plan=self.plan.name,
            phase=self._phase(segment),
            round=round_number,
            rounds=self.plan.rounds,
            exercise=exercise,
            next_exercise=next_name,
            step_remaining_s=remaining,
            elapsed_s=max(elapsed_us / 1_000_000, 0.0),
            total_s=self.plan.total_s,
            participants=tuple(self._participant(seat, now) for seat in self._seats),
        )

    def _phase(self, segment: fp.Segment | None) -> SessionPhase:
        if self._ended.is_set():
            return SessionPhase.DONE
        if self.start_s is None or segment is None:
            return SessionPhase.IDLE
        if self._paused_at is not None:
            return SessionPhase.PAUSED
        return SessionPhase.ROUND_REST if segment.step_index < 0 else SessionPhase.RUNNING

    def _participant(self, seat: _Seat, now: float) -> ParticipantSnapshot:
        session = seat.session
        snap = session.snapshot() if session is not None else None
        fired, missed, error = self._stats.get(seat.band_id, (0, 0, None))
        max_hr = seat.participant.resolved_max_hr
        heart = snap.heart_rate if snap is not None else None
        reading = seat.heart_rate
        age = None if reading is None else max(now - reading.t, 0.0) / self.clock.rate
        if (
            heart is None
            and seat.held is None
            and reading is not None
            and reading.contact is not False
            and age is not None
            and age <= _LAST_TURN_HR_S
        ):
            heart = reading.bpm  # from its last turn: shown with its age, not as live
        features = session.features if session is not None else None
        return ParticipantSnapshot(
            band_id=seat.band_id,
            name=seat.participant.name or seat.info.name,
            kind=features.kind if features is not None else BandKind.COMPANION,
            cue_mode=features.cue_mode if features is not None else CueMode.BAND,
            phase=snap.phase if snap is not None else SessionPhase.IDLE,
            heart_rate=heart,
            max_hr=max_hr,
            zone=heart_zone(heart, max_hr),
            battery=seat.battery if seat.battery is not None else (snap.battery if snap else None),
            link_up=seat.link_up,
            seen_s_ago=None if seat.heard_at is None else (now - seat.heard_at) / self.clock.rate,
            last_cue_error_ms=error,
            cues_fired=fired,
            cues_missed=missed + seat.missed_before,
            heart_rate_age_s=age if heart is not None else None,
        )

    @staticmethod
    def start_lead_s(prepared_in_s: float) -> float:
        """How far ahead of now the class can start, its first contacts having taken
        ``prepared_in_s``.

        The START turns do what the first contacts did (connect, sync), less the plan,
        plus a longer sync when there is time for it: twice as long reaches the slowest band.
        """
        return prepared_in_s * 2 + _START_MARGIN_S

    # -- commands (to every band) ---------------------------------------------------------

    async def pause(self, *, at: float | None = None) -> None:
        """Pause the class: every band (a rotated one on its next turn).

        ``at`` (host clock, default now) is when the class timeline stops: hosts of one
        class given the same instant keep the same timeline.
        """
        if self._paused_at is None:
            self._paused_at = self.clock.now() if at is None else at
        await self._each(lambda session: session.pause())

    async def resume(self, *, at: float | None = None) -> None:
        """Resume the class where it was paused (``at``: as for :meth:`pause`)."""
        if self._paused_at is not None:
            self._shift_s += (self.clock.now() if at is None else at) - self._paused_at
            self._paused_at = None
        await self._each(lambda session: session.resume())

    async def skip(self, *, at: float | None = None) -> None:
        """Skip every band to the next step (``at``: as for :meth:`pause`)."""
        elapsed_us = round(self.elapsed_s(at) * 1_000_000)
        target = self._timeline.next_segment_start_after(elapsed_us)
        target = self._timeline.total_us if target is None else target
        self._shift_s -= max(target - elapsed_us, 0) / 1_000_000
        await self._each(lambda session: session.skip())

    async def stop(self, *, by: StopReason = StopReason.HOST) -> None:
        """Stop the class on every band."""
        if not self._stopped:
            self._stopped = True
            self._publish(ClassStopped(self.class_id, by, self.clock.now()))
        await self._each(lambda session: session.stop(by=by))

    async def _each(self, command: Callable[[Session], Awaitable[None]]) -> None:
        sessions = [s for s in self.sessions if not s.finished]
        results = await asyncio.gather(*(command(s) for s in sessions), return_exceptions=True)
        for session, result in zip(sessions, results, strict=True):
            if isinstance(result, CompanionError):
                logger.warning("band %s: %s", session.band_id, result)
            elif isinstance(result, BaseException):
                raise result

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, start: StartHook | None = None) -> ClassSnapshot:
        """Connect every band, start them all at one instant, follow the class to its end.

        ``start`` chooses the instant once the bands are prepared (default: as soon as
        the slowest band can be reached again, :func:`start_lead_s`).
        """
        async with self._stack:
            try:
                began = self.clock.now()
                await self._prepare()
                self._prepared_in_s = self.clock.now() - began
                resumed = self.resumed = any(s.resumed_start is not None for s in self._seats)
                if resumed:
                    seats = self._resume()
                    if start is not None:  # the instant is the bands': the hook is told it
                        await start(self._prepared_in_s)
                else:
                    if start is None:
                        self.start_s = self.clock.now() + self.start_lead_s(self._prepared_in_s)
                    else:
                        self.start_s = await start(self._prepared_in_s)
                    seats = self._seats
                    # A host that came after the class began, or too close to its start
                    # for the START turns, puts its bands on as late bands are.
                    late = start is not None and self.start_s - self.clock.now() < (
                        self.start_lead_s(self._prepared_in_s) / 2
                    )
                    for seat in seats:
                        seat.start_s = self.start_s
                        if late:
                            self._from_next_round(seat)
                assert self.start_s is not None
                self._publish(
                    ClassStarted(
                        self.class_id,
                        self.start_s,
                        len(self._seats),
                        self.rotating,
                        self.links,
                        resumed,
                        min((s.first_round for s in seats), default=1),
                    )
                )
                for seat in seats:
                    if seat.first_round > 1:
                        self._publish(self._joined(seat))
                    self._spawn(self._run_seat(seat))
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
            except asyncio.CancelledError:
                if self.start_s is not None:
                    await self._stop_when_cancelled()
                raise
            finally:
                for task in self._tasks:
                    task.cancel()
                for task in list(self._tasks):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for seat in self._seats:
                    seat.close()
        self._publish(ClassEnded(self.class_id, self.clock.now()))
        self._ended.set()
        for queue in self._subscribers:
            queue.put_nowait(None)
        return self.snapshot()

    async def join(self, participant: Participant | str) -> ParticipantJoined:
        """Put a band on the running class's timeline at the next round far enough ahead."""
        if self.start_s is None:
            raise CompanionError("the class has not started: add the band to its participants")
        if not isinstance(participant, Participant):
            participant = Participant(participant)
        seat = _Seat(self, participant, self.plan)
        self._from_next_round(seat)  # before its first contact: the tail is what it gets
        await self._seat_up(seat, rotate=self.rotating)
        self._seats.append(seat)
        joined = self._joined(seat)
        self._publish(joined)
        self._spawn(self._run_seat(seat))
        return joined

    def _from_next_round(self, seat: _Seat) -> None:
        """Give ``seat`` the rest of the plan from the first whole round of the running
        class that starts far enough ahead (a first contact, a START turn and a margin, as
        its prepare took); the cues of the rounds before count as missed."""
        assert self.start_s is not None
        margin = self._prepared_in_s * 1.5 + self.turn_every_s + _START_MARGIN_S
        elapsed = self.elapsed_s() + margin
        period = sum(s.duration_s for s in self.plan.steps) + self.plan.round_rest_s
        first = max(math.ceil(elapsed / period), 0) + 1 if elapsed > 0 else 1
        if first > self.plan.rounds:
            raise CompanionError(
                f"too late to join: the class is in its last round ({self.plan.rounds}), or "
                f"less than {margin:.0f} s before it, and a late band joins at a round's "
                "start: join before the last round, or wait for the next class"
            )
        tail = self.plan.with_rounds(self.plan.rounds - first + 1)
        seat.plan = tail
        seat.first_round = first
        seat.start_s = self.start_s + self._shift_s + (first - 1) * period
        seat.shift_base_s = self._shift_s
        seat.missed_before = len(self._timeline.cues) - len(fp.build_timeline(tail.to_wire()).cues)

    @staticmethod
    def _joined(seat: _Seat) -> ParticipantJoined:
        return ParticipantJoined(seat.band_id, seat.first_round, seat.start_s, seat.missed_before)

    async def _stop_when_cancelled(self) -> None:
        """A cancelled class stops on every band before it lets go, within a bound, so
        no band goes on with a workout nobody follows: a held band at once, a rotated
        band on one last turn taken now (its acknowledgements since its last turn come
        with it), the links shared as on any turn."""
        left = [s for s in self._seats if s.session is not None and not s.session.finished]
        if not left:
            return
        rounds = math.ceil(sum(1 for s in left if s.held is None) / self.links)
        bound_s = max(_STOP_TURN_S, (rounds + 1) * (self._turn_s / self.clock.rate + 1.0))
        logger.warning(
            "stopping the class on %d bands (at most %.0f s; the links are shared)",
            len(left),
            bound_s,
        )
        try:
            async with asyncio.timeout(bound_s):
                await self.stop(by=self.cancel_reason)
                self._hurry.set()
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
        except TimeoutError:
            still = [s.band_id for s in left if s.session is not None and not s.session.finished]
            logger.warning(
                "not reached in %.0f s, so still running its workout: %s (it ends on its own)",
                bound_s,
                ", ".join(still),
            )

    def _left_running(self, seat: _Seat, band: Band) -> float | None:
        """Where the band's workout started (host clock) if it is this plan, recorded in
        this store by a class that never saw it end: a host killed mid-class."""
        capabilities = band.capabilities
        if self.store is None or capabilities is None or not capabilities.workout_running:
            return None
        record = self.store.find_band_session(seat.band_id, capabilities.session_id)
        if record is None or record.outcome is not None or self.store.class_of(record.id) is None:
            return None  # not ours, ended, or a lone run's (that is `companion run`'s to adopt)
        if fp.plan_id(fp.encode_plan(seat.plan.to_wire())) != capabilities.plan_id:
            return None
        # Converted, not adopted: the band's replay waits for the class's first turn.
        return band.to_host_time(capabilities.session_start_us + capabilities.session_adjust_us)

    def _resume(self) -> list[_Seat]:
        """Go on with the class the bands still run, on the timeline they keep: each band
        is followed from where it is (its session row goes on, with the band's replay);
        a band that no longer runs it sits the class out."""
        resumed = [s for s in self._seats if s.resumed_start is not None]
        self.start_s = statistics.median(
            s.resumed_start for s in resumed if s.resumed_start is not None
        )
        self._shift_s = statistics.median(
            s.fp_capabilities.session_shift_us / 1_000_000
            for s in resumed
            if s.fp_capabilities is not None
        )
        logger.info(
            "resuming the class %d of %d bands still run (left running by a host that "
            "stopped without ending it), %.0f s in",
            len(resumed),
            len(self._seats),
            self.elapsed_s(),
        )
        for seat in self._seats:
            if seat.resumed_start is None:
                logger.warning(
                    "band %s no longer runs the class's workout: it sits this class out",
                    seat.band_id,
                )
                continue
            assert seat.fp_capabilities is not None
            seat.start_s = self.start_s
            seat.band_session = seat.fp_capabilities.session_id
            seat.started.set()  # its START went out before: its turns begin at once
        return resumed

    def _free_slots(self) -> int:
        return self.links - sum(1 for s in self._seats if s.held is not None)

    async def _prepare(self) -> None:
        self._seats = [_Seat(self, p, self.plan) for p in self.participants]
        await asyncio.gather(*(self._seat_up(seat, rotate=self.rotating) for seat in self._seats))

    async def _seat_up(self, seat: _Seat, *, rotate: bool) -> None:
        """First contact: which kind the band is, who it is, the plan pushed; a band that
        needs a live link (host-timed, or no rotation) keeps its slot for the class."""
        await self._slots.acquire()
        began = self.clock.now()
        keep = False
        try:
            band = await connect_for_session(
                seat.target, kind=self.kind, backend=self.backend, clock=self.clock
            )
            await self._open(band)
            try:
                seat.info = band.info
                await band.push_plan(seat.plan)
                if isinstance(band, Band):
                    seat.fp_capabilities = band.capabilities
                    # The first point of its clock line: the first cues rest on its slope.
                    await band.sync_time(_TURN_SYNC_SAMPLES)
                    seat.correction_s(band)
                    seat.resumed_start = self._left_running(seat, band)
                keep = isinstance(band, HostTimedBand) or not rotate
                # A rotated class needs one slot left to rotate through.
                if keep and rotate and self._free_slots() <= 1:
                    raise LinkBudgetError(
                        f"band {seat.target} is host-timed and needs a live link for the whole "
                        f"class, but only one of the {self.links} links is left, for the bands "
                        "that rotate: raise --links if the adapter holds more, or run the "
                        "host-timed bands from another host"
                    )
            except BaseException:
                keep = False
                await band.aclose()
                raise
            if keep:
                seat.held = band
                self._stack.push_async_callback(band.aclose)
            else:
                await band.aclose()
        finally:
            self._turn_s = max(self._turn_s, self.clock.now() - began)
            if not keep:
                self._slots.release()

    async def _open(self, band: Band | HostTimedBand) -> None:
        """``async with`` entry of ``band``, one link set-up at a time: the lock is held
        until the link is up, and the HELLO, reads and time sync run beside the next."""
        async with self._connecting:
            opening = asyncio.ensure_future(band.__aenter__())
            try:
                while not opening.done() and not band.link_up:  # noqa: ASYNC110 (no event for it)
                    await asyncio.sleep(0.01)
            except BaseException:
                opening.cancel()
                raise
        await opening

    async def _run_seat(self, seat: _Seat) -> None:
        session = Session(seat, seat.plan, store=self.store)
        seat.session = session
        follower = asyncio.create_task(self._follow(seat, session))
        runner = asyncio.create_task(session.run())
        try:
            if seat.held is None:
                waiter = asyncio.ensure_future(seat.started.wait())
                await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                # A band that never comes back is given up once the class is well over.
                give_up = seat.start_s + seat.plan.total_s + self.grace_s
                while not session.finished and not runner.done():
                    if self.clock.now() > give_up:
                        logger.warning("band %s was not heard again: given up", seat.band_id)
                        break
                    await self._until_next_turn()
                    await self.turn(seat)
                seat.close()
            await runner
        except CompanionError as exc:
            logger.warning("participant %s: %s", seat.band_id, exc)
        finally:
            seat.close()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, CompanionError):
                await runner
            if not session.finished:  # given up: its history stays open, nothing more comes
                follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    async def _until_next_turn(self) -> None:
        """``turn_every_s``, or less when the class is stopping after a cancel."""
        if self._hurry.is_set():
            return
        hurry = asyncio.ensure_future(self._hurry.wait())
        sleep = asyncio.ensure_future(self.clock.sleep(self.turn_every_s))
        try:
            await asyncio.wait({hurry, sleep}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
            sleep.cancel()

    async def _follow(self, seat: _Seat, session: Session) -> None:
        async for event in session.events():
            self._publish(event)
            fired, missed, error = self._stats.get(seat.band_id, (0, 0, None))
            match event.event:
                case CueFired() as cue if cue.cue_id != fp.STOPPED_CUE_ID:
                    self._stats[seat.band_id] = (fired + 1, missed, cue.error_ms)
                case CueWarning(problem=CueProblem.MISSED | CueProblem.MISSING):
                    self._stats[seat.band_id] = (fired, missed + 1, error)
                case SessionStopped(reason=reason, t=t):
                    self._publish(ParticipantStopped(seat.band_id, reason, t))

    async def turn(self, seat: _Seat, *, starting: bool = False) -> None:
        """One rotated band's turn on a link: START or re-sync, replay, queued commands."""
        async with self._slots:
            began = self.clock.now()
            try:
                band = Band.connect(
                    seat.target,
                    backend=self.backend,
                    clock=self.clock,
                    scan_timeout=self._turn_scan_s,
                    reconnect_for=_TURN_RECONNECT_S,
                )
                await self._open(band)
                seat.linked = band
                pump = asyncio.create_task(self._pump(seat, band))
                try:
                    await self._on_turn(seat, band, starting=starting, began=began)
                finally:
                    seat.linked = None
                    await band.aclose()
                    await pump
            except CompanionError as exc:
                if starting:
                    raise
                logger.info("band %s missed its turn: %s", seat.band_id, exc)
            finally:
                took = self.clock.now() - began
                logger.debug("band %s: turn of %.2f s", seat.band_id, took)
                if starting:
                    self._turn_s = max(self._turn_s, took)

    async def _on_turn(self, seat: _Seat, band: Band, *, starting: bool, began: float) -> None:
        capabilities = band.capabilities
        assert capabilities is not None
        seat.fp_capabilities = capabilities
        if capabilities.session_id == seat.band_session:
            band.follow(seat.band_session)  # before any await: the replay is the class's
        if starting:
            await band.push_plan(seat.plan)
            if seat.start_s - self.clock.now() > self._prepared_in_s / 2:
                await band.sync_time(_START_SYNC_SAMPLES)
            at = seat.start_s + seat.correction_s(band, seat.start_s)
            await band.start_at(at, session_id=seat.band_session)
        elif SessionCommand.STOP in seat.pending:
            pass  # the band's last turn: no timeline to keep
        elif capabilities.session_id == seat.band_session:
            # Before the start, a turn has time to spare: a better line for the first cues.
            early = self.clock.now() < seat.start_s
            await band.sync_time(_START_SYNC_SAMPLES if early else _TURN_SYNC_SAMPLES)
            shift_s = capabilities.session_shift_us / 1_000_000
            due = seat.start_s + (self._shift_s - seat.shift_base_s) - shift_s
            ahead = self.clock.now() + max(self.turn_every_s, self._prepared_in_s) / 2
            band.adopt(at=due + seat.correction_s(band, ahead))
            await band.sync_time(0)  # no new exchange: ADJUST onto the class's instant
        else:
            logger.warning("band %s no longer runs the class's workout", seat.band_id)
        pending, seat.pending = seat.pending, []
        for command in pending:
            try:
                await getattr(band, command.value)()
            except CompanionError as exc:
                logger.info("band %s refused %s: %s", seat.band_id, command.value, exc)
        deadline = self.clock.now() + _TURN_DWELL_S * self.clock.rate
        while self.clock.now() < deadline and seat.band_t < began:
            await self.clock.sleep(0.1)
        await self.clock.sleep(_FLUSH_S * self.clock.rate)

    async def _pump(self, seat: _Seat, band: Band) -> None:
        try:
            async for event in band.events():
                seat.deliver(event)
        except LinkLostError as exc:
            logger.info("band %s: %s", seat.band_id, exc)

    # -- fan-out ------------------------------------------------------------------------------

    def _publish(self, event: ClassEvent) -> None:
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


Class = GroupClass
"""``companion.Class``: the name the issue and the README use."""
