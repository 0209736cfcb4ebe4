"""Session: run a workout plan on a band, mirror its timeline, record everything.

The band runs the timeline on its own clock. The session pushes the plan,
syncs clocks, starts it, and then only *listens*: it mirrors the timeline to
show what is happening now, checks every cue acknowledgement against the plan,
turns band reports into session events (step started, round done...), numbers
them, records them and hands them to every subscriber (live view, MQTT relay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import firmware_protocol as fp

from .clock import Clock
from .errors import (
    CommandError,
    CompanionError,
    LinkLostError,
    StoreError,
    WorkoutRunningError,
)
from .events import (
    BandStateChanged,
    Battery,
    CommandRejected,
    CueFired,
    CueProblem,
    CueWarning,
    Event,
    HeartRate,
    InferredStopCause,
    LinkDown,
    LinkUp,
    RoundDone,
    SessionDone,
    SessionEvent,
    SessionPaused,
    SessionResumed,
    SessionStarted,
    SessionStopped,
    StepStarted,
    StopReason,
    StopSource,
)
from .kinds import CAPABILITIES, Capabilities
from .plan import Plan
from .state import DeviceInfo, SessionPhase, SessionSnapshot
from .store import Store

__all__ = ["Session", "SessionBand"]

logger = logging.getLogger(__name__)

_STOP_REASONS: Final[dict[fp.StopCause | InferredStopCause, tuple[StopReason, StopSource]]] = {
    fp.StopCause.BUTTON: (StopReason.USER, StopSource.BAND),
    fp.StopCause.PAIN: (StopReason.PAIN, StopSource.BAND),
    # A STOP this host did not send: another host.
    fp.StopCause.HOST: (StopReason.HOST, StopSource.BAND),
    InferredStopCause.REBOOT: (StopReason.REBOOT, StopSource.BAND),
}
_PHASES: Final = {
    fp.SessionStateCode.RUNNING: SessionPhase.RUNNING,
    fp.SessionStateCode.ROUND_REST: SessionPhase.ROUND_REST,
    fp.SessionStateCode.PAUSED: SessionPhase.PAUSED,
}
_END_PHASES: Final = (SessionPhase.DONE, SessionPhase.STOPPED)
_STOP_TIMEOUT_S: Final = 5.0
_BEFORE_START_S: Final = 5.0  # heart rate this long before the start still counts (warm-up)
_RESYNC_EXCHANGES: Final = 16  # ~16 round trips every resync: enough to see a drift early


class SessionBand(Protocol):
    """What a session drives: a :class:`~companion.band.Band` (the band times the cues)
    or a :class:`~companion.kinds.HostTimedBand` (this host does, for the bands people own).

    Both take the plan, start, pause, resume, skip and stop it, and report what
    happens as typed events; only a band that times its own cues can hold a
    workout of its own (``capabilities`` is then the protocol's CAPABILITIES).
    """

    @property
    def band_id(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def info(self) -> DeviceInfo: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def link_up(self) -> bool: ...
    @property
    def capabilities(self) -> fp.Capabilities | Capabilities | None: ...
    def events(self) -> AsyncIterator[Event]: ...
    async def push_plan(self, plan: Plan) -> bool: ...
    async def sync_time(self, samples: int = ...) -> fp.ClockEstimate: ...
    def new_session_id(self) -> int: ...
    async def start(self, *, lead_s: float = ..., session_id: int | None = ...) -> float: ...
    def adopt(self) -> float: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def skip(self) -> None: ...
    async def stop(self) -> None: ...


class _Subscription:
    """One subscriber's queue of session events; iterating it ends with the session."""

    def __init__(self, history: list[SessionEvent]) -> None:
        self.queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        for event in history:
            self.queue.put_nowait(event)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> SessionEvent:
        item = await self.queue.get()
        if item is None:
            self.queue.put_nowait(None)
            raise StopAsyncIteration
        return item


@dataclass(slots=True)
class _Mirror:
    """The host's copy of where the band's timeline is, on the host's clock.

    ``shift_us`` is the band's reported shift (pauses add, skips subtract);
    drift corrections are not in it, so the mirror's plan stays the host's:
    a cue is planned at ``start + offset + shift`` in host time, whatever the
    band's clock does.
    """

    timeline: fp.Timeline
    start: float = 0.0  # host clock
    shift_us: int = 0
    paused_at: float | None = None  # host clock
    phase: SessionPhase = SessionPhase.IDLE
    round: int = 0
    step_index: int = -1
    acked: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)

    def elapsed_us(self, now: float) -> int:
        """Time into the plan's timeline at host time ``now``."""
        if self.phase is SessionPhase.IDLE:
            return 0
        at = self.paused_at if self.paused_at is not None else now
        elapsed = round((at - self.start) * 1_000_000) - self.shift_us
        return max(0, min(elapsed, self.timeline.total_us))

    def planned(self, cue: fp.PlannedCue) -> float:
        """When ``cue`` should fire, in host-clock seconds."""
        return self.start + (cue.offset_us + self.shift_us) / 1_000_000


class Session:
    """One run of a plan on a band: ``await Session(band, plan).run()``."""

    def __init__(
        self,
        band: SessionBand,
        plan: Plan,
        *,
        store: Store | None = None,
        session_id: str | None = None,
        resync_every_s: float = 30.0,
        late_cue_ms: float = 50.0,
        heart_rate_fresh_s: float = 5.0,
    ) -> None:
        self.band = band
        self.plan = plan
        self.store = store
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self._resync_every_s = resync_every_s
        self.late_cue_ms = late_cue_ms  # a cue acknowledged later than this (real ms) is a warning
        self._hr_fresh_s = heart_rate_fresh_s
        self._timeline = fp.build_timeline(plan.to_wire())
        self._cues = {cue.cue_id: cue for cue in self._timeline.cues}
        self._mirror = _Mirror(self._timeline)
        self._history: list[SessionEvent] = []
        self._subscribers: list[_Subscription] = []
        self._number = 0
        self._heart_rate: HeartRate | None = None
        self._battery: int | None = None
        self._started = False
        self._storage_error: StoreError | None = None  # the history failed: stop the workout
        self._finished = asyncio.Event()
        self._start_requested = asyncio.Event()
        self._prepared: bool | None = None  # None: not yet; True: adopted; False: start anew
        self._start_sent = False
        self._rounds_done: set[int] = set()
        self._stop_by: tuple[StopReason, StopSource] | None = None  # a stop this host asked
        # Who stops the workout when run() is cancelled: the program, unless the caller says
        # (the CLI: a person at the terminal pressed Ctrl-C or sent SIGTERM).
        self.cancel_reason = StopReason.HOST

    # -- what others read ----------------------------------------------------------

    @property
    def band_id(self) -> str:
        """The band's stable id (topic-safe)."""
        return self.band.band_id

    @property
    def device(self) -> DeviceInfo:
        """Who the band is (Device Information)."""
        return self.band.info

    @property
    def features(self) -> Capabilities:
        """What the band's kind can do: who times the cues, motor, text, heart rate..."""
        return CAPABILITIES[self.band.info.kind]

    @property
    def phase(self) -> SessionPhase:
        """Where the session is now."""
        return self._mirror.phase

    @property
    def finished(self) -> bool:
        """Whether the session has ended (done, stopped or the link lost for good)."""
        return self._finished.is_set()

    def events(self) -> AsyncIterator[SessionEvent]:
        """Every event of this session from the first, in order; ends when the session ends.

        Each call is an independent subscription, so a live view and an MQTT
        relay can both follow the same session.
        """
        subscription = _Subscription(self._history)
        if self._finished.is_set():
            subscription.queue.put_nowait(None)
        else:
            self._subscribers.append(subscription)
        return subscription

    def snapshot(self) -> SessionSnapshot:
        """What a live view or dashboard shows right now."""
        mirror = self._mirror
        clock = self.band.clock
        now = clock.now()
        elapsed_us = mirror.elapsed_us(now)
        segment = self._timeline.segment_at(elapsed_us) if mirror.phase not in _END_PHASES else None
        step: int = -1
        remaining_s = duration_s = 0.0
        if segment is not None and mirror.phase is not SessionPhase.IDLE:
            step = segment.step_index
            remaining_s = (segment.end_us - elapsed_us) / 1_000_000
            duration_s = (segment.end_us - segment.start_us) / 1_000_000
        current = self.plan.steps[step] if step >= 0 else None
        hr = self._heart_rate
        fresh = hr is not None and now - hr.t <= self._hr_fresh_s and hr.contact is not False
        return SessionSnapshot(
            band_id=self.band_id,
            session_id=self.session_id,
            plan=self.plan.name,
            phase=mirror.phase,
            round=mirror.round,
            rounds=self.plan.rounds,
            step_index=step,
            step_count=len(self.plan.steps),
            exercise=current.name if current else ("Rest" if segment else ""),
            tip=current.tip if current else "",
            step_remaining_s=remaining_s,
            step_duration_s=duration_s,
            next_exercise=self._next_name(segment),
            elapsed_s=elapsed_us / 1_000_000,
            total_s=self._timeline.total_us / 1_000_000,
            heart_rate=hr.bpm if fresh and hr is not None else None,
            battery=self._battery,
            link_up=self.band.link_up,
            notes=self.plan.notes,
            kind=self.features.kind,
            cue_mode=self.features.cue_mode,
        )

    def _next_name(self, segment: fp.Segment | None) -> str:
        if segment is None:
            return self.plan.steps[0].name if self._mirror.phase is SessionPhase.IDLE else ""
        following = [s for s in self._timeline.segments if s.start_us >= segment.end_us]
        if not following:
            return ""
        index = following[0].step_index
        return self.plan.steps[index].name if index >= 0 else "Rest"

    # -- commands ------------------------------------------------------------------

    async def start(self) -> None:
        """Let a session created with ``run(autostart=False)`` begin (e.g. an MQTT command)."""
        if self._started:
            raise CompanionError(
                "this session has already started; start a new one with `companion run`"
            )
        self._start_requested.set()

    async def pause(self) -> None:
        """Pause the workout on the band; the host's timeline follows the band's report."""
        await self.band.pause()

    async def resume(self) -> None:
        """Resume the workout where it was paused."""
        await self.band.resume()

    async def skip(self) -> None:
        """Skip to the next step."""
        await self.band.skip()

    async def stop(self, *, by: StopReason = StopReason.HOST) -> None:
        """Stop the workout now (the band plays the "stopped" pattern); ``by`` is recorded."""
        self._stop_by = (by, StopSource.HOST)
        await self.band.stop()

    async def obey(self, command: str, *, by: StopReason) -> None:
        """Carry out ``command`` (start, pause, resume, skip, stop) asked by ``by`` (e.g. MQTT)."""
        if command == "stop":
            await self.stop(by=by)
        elif command in ("start", "pause", "resume", "skip"):
            await getattr(self, command)()
        else:
            raise CompanionError(f"unknown command {command!r}: start, pause, resume, skip, stop")

    def reject(self, source: str, command: str, reason: str) -> None:
        """Record that a command from ``source`` was refused (the session goes on)."""
        logger.warning("rejected %s command %r: %s", source, command, reason)
        self._publish(CommandRejected(source, command, reason, self.band.clock.now()))

    # -- running -------------------------------------------------------------------

    async def prepare(self, *, take_over: bool = False) -> bool:
        """Decide what to do with the workout the band runs, before :meth:`run`.

        Returns True if this session **adopts** it: a workout this host recorded
        itself (same store, same plan), say before it crashed; the session goes on
        in the same history row, with the events the band kept for it. A workout
        this host does not know is left alone (:class:`WorkoutRunningError`, whose
        message names the choices) unless ``take_over``, which stops it so that
        :meth:`run` starts this plan. Returns False when :meth:`run` starts anew.
        """
        if self._prepared is not None:
            return self._prepared
        capabilities = self.band.capabilities
        self._prepared = False
        # Only a band that times its own cues (the companion protocol's CAPABILITIES) can
        # hold a workout of its own; a host-timed kind's workout lives in this process.
        if not isinstance(capabilities, fp.Capabilities) or not capabilities.session_id:
            return False
        record = (
            self.store.find_band_session(self.band_id, capabilities.session_id)
            if self.store is not None
            else None
        )
        ours = record is not None and record.outcome is None
        if not capabilities.workout_running:
            if ours and record is not None and self.store is not None:
                # It ended while no host followed it (this one had crashed): close its row.
                ended = capabilities.session_state.name.lower()
                self.store.end_session(record.id, datetime.now(UTC), f"{ended} (not followed)")
            return False
        wire = self.plan.to_wire()
        if ours and record is not None and fp.plan_id(fp.encode_plan(wire)) == capabilities.plan_id:
            self._adopt(record.id, capabilities)
            self._prepared = True
            return True
        described = self._describe(capabilities, record.plan_name if record else None)
        if not take_over:
            raise WorkoutRunningError(
                f"band {self.band.target} is running {described}. Choose: "
                + (
                    f"`companion run {record.plan_name} --band …` follows it again, "
                    if ours and record is not None
                    else ""
                )
                + "`companion run --take-over …` stops it and starts this one, or "
                "`companion stop --band …` ends it",
                session_id=capabilities.session_id,
            )
        logger.warning("taking over the band: stopping %s", described)
        with contextlib.suppress(CommandError):  # it may have ended meanwhile
            await self.band.stop()
        if ours and record is not None and self.store is not None:
            self.store.end_session(record.id, datetime.now(UTC), "stopped: host (taken over)")
        return False

    @staticmethod
    def _describe(capabilities: fp.Capabilities, plan_name: str | None) -> str:
        whose = f"your workout {plan_name!r}" if plan_name else "a workout this host did not start"
        state = capabilities.session_state.name.lower().replace("_", " ")
        where = (
            f"round {capabilities.session_round}, step {capabilities.session_step + 1}"
            if capabilities.session_round
            else "about to start"
        )
        minutes = capabilities.session_elapsed_us / 60_000_000
        return (
            f"{whose} (band workout {capabilities.session_id:08x}, {state}, {where}, "
            f"{minutes:.1f} min in)"
        )

    def _adopt(self, session_id: str, capabilities: fp.Capabilities) -> None:
        """Carry on with recorded session ``session_id``, mirroring the band from where it is."""
        self.session_id = session_id
        mirror = self._mirror
        mirror.start = self.band.adopt()
        # Where the band stands now is in CAPABILITIES, but the band replays what this host
        # missed, so the mirror starts from what was recorded and the replay brings it up to
        # date (every step change then appears once in the history).
        mirror.phase = SessionPhase.RUNNING
        recorded = self.store.events(session_id) if self.store is not None else []
        self._number = self.store.last_event_number(session_id) if self.store is not None else 0
        for numbered in recorded:
            event = numbered.event
            if isinstance(event, CueFired):
                mirror.acked.add(event.cue_id)
            elif isinstance(event, RoundDone):
                self._rounds_done.add(event.round)
                if event.round == mirror.round:
                    mirror.step_index, mirror.phase = fp.REST_STEP, SessionPhase.ROUND_REST
            elif isinstance(event, StepStarted):
                mirror.round, mirror.step_index = event.round, event.step_index
                mirror.phase = SessionPhase.RUNNING
            elif isinstance(event, SessionPaused):
                mirror.phase, mirror.paused_at = SessionPhase.PAUSED, event.t
            elif isinstance(event, SessionResumed):
                mirror.paused_at = None
        mirror.shift_us = capabilities.session_shift_us  # replayed reports bring their own
        self._started = True
        logger.info("adopted session %s (band workout %08x)", session_id, capabilities.session_id)

    async def run(self, *, autostart: bool = True, take_over: bool = False) -> SessionSnapshot:
        """Push the plan, start it and follow it to its end; returns the final snapshot.

        If the band already runs a workout, :meth:`prepare` decides first (adopt
        this host's own, refuse or take over another). Cancelling ``run()``
        (Ctrl-C) stops the workout on the band first, and everything recorded so
        far stays recorded.
        """
        adopted = await self.prepare(take_over=take_over)
        if not autostart and not adopted:
            await self._start_requested.wait()
        self._started = True
        events = self.band.events()
        try:
            if not adopted:
                await self._start_anew()
            # Not a TaskGroup: it would wrap the follower's LinkLostError in an ExceptionGroup.
            resync = asyncio.create_task(self._resync_periodically())
            try:
                await self._follow(events)
            finally:
                resync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resync
        except asyncio.CancelledError:
            await self._stop_by_host(self.cancel_reason)
            raise
        except StoreError as exc:
            # A workout that cannot be recorded is stopped, not followed blind: the person
            # would lose it without knowing. What was written before stays.
            self._storage_error = self._storage_error or exc
            await self._stop_by_host(StopReason.STORAGE)
            self._set_end(SessionPhase.STOPPED)  # also when it failed before START
            raise StoreError(
                "the workout was stopped on the band (stopped: storage) and everything "
                f"recorded before the failure is kept: {exc}"
            ) from exc
        except LinkLostError as exc:
            self._set_end(SessionPhase.STOPPED)
            self._publish(SessionStopped(StopReason.LINK, self.band.clock.now()))
            self._close(f"link lost: {exc}")
            raise
        return self.snapshot()

    async def _start_anew(self) -> None:
        await self.band.push_plan(self.plan)
        band_session = self.band.new_session_id()
        if self.store is not None:
            # Before START: a host killed right after it can still find and adopt its workout.
            self.store.begin_session(self.session_id, self.band_id, self.plan, datetime.now(UTC))
            plan_id = fp.plan_id(fp.encode_plan(self.plan.to_wire()))
            self.store.link_band_session(self.session_id, self.band_id, band_session, plan_id)
        self._start_sent = True
        try:
            start = await self.band.start(session_id=band_session)
        except CommandError as exc:
            self._close(f"not started: {exc}")
            raise
        mirror = self._mirror
        mirror.start = start
        mirror.phase = SessionPhase.RUNNING
        self._publish(SessionStarted(self.plan.name, self.plan.rounds, start, self.plan.notes))

    async def _follow(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self._handle(event)
            if self._storage_error is not None:
                raise self._storage_error
            if self._mirror.phase in _END_PHASES:
                return

    async def _resync_periodically(self) -> None:
        clock = self.band.clock
        while True:
            await clock.sleep(self._resync_every_s)
            if self.band.link_up:
                try:
                    # Added to every earlier exchange: without drift the bound only
                    # tightens, so the band's timeline moves only as far as drift asks.
                    await self.band.sync_time(_RESYNC_EXCHANGES)
                except CompanionError as exc:
                    logger.info("periodic time sync skipped: %s", exc)

    async def _stop_by_host(self, reason: StopReason) -> None:
        phase = self._mirror.phase
        # A START may be on its way (cancelled while awaiting its ACK): stop whatever runs, so
        # a cancellation never leaves a workout on the band that nobody follows.
        if phase not in _END_PHASES and (phase is not SessionPhase.IDLE or self._start_sent):
            self._stop_by = (reason, StopSource.HOST)
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await asyncio.shield(self.band.stop())
            except CommandError as exc:
                logger.info("nothing to stop on the band: %s", exc)
            except (TimeoutError, CompanionError) as exc:
                logger.warning("could not stop the band: %s", exc)
            self._set_end(SessionPhase.STOPPED)
            self._publish(SessionStopped(reason, self.band.clock.now(), StopSource.HOST))
        self._close(f"stopped: {reason.value}")

    # -- turning band reports into session events ------------------------------------

    def _handle(self, event: Event) -> None:
        match event:
            case BandStateChanged():
                self._on_band_state(event)
            case CueFired():
                self._on_cue(event)
            case HeartRate():
                if event.t < self._mirror.start - _BEFORE_START_S:
                    # Measured before this workout (the band replays what no host took, from
                    # its boot on): not this session's heart rate.
                    return
                self._heart_rate = event
                self._publish(event)
            case Battery():
                self._battery = event.percent
                self._publish(event)
            case LinkDown() | LinkUp():
                self._publish(event)
            case CueWarning(problem=CueProblem.MISSED):
                # A host-timed band reports a cue it could not deliver: accounted for.
                self._mirror.acked.add(event.cue_id)
                self._publish(event)
            case _:
                self._publish(event)

    def _on_band_state(self, event: BandStateChanged) -> None:
        mirror = self._mirror
        new_shift = round(event.shift_s * 1_000_000)
        if new_shift < mirror.shift_us and mirror.paused_at is None:
            self._mark_skipped(event.t, new_shift)
        previous = (mirror.phase, mirror.round, mirror.step_index)
        mirror.shift_us = new_shift
        state = event.state
        if state is fp.SessionStateCode.PAUSED:
            mirror.paused_at = event.t
            mirror.phase = SessionPhase.PAUSED
            self._publish(SessionPaused(event.t))
            return
        running = state in (fp.SessionStateCode.RUNNING, fp.SessionStateCode.ROUND_REST)
        if previous[0] is SessionPhase.PAUSED and running:
            mirror.paused_at = None
            self._publish(SessionResumed(event.t))
        if running:
            mirror.phase = _PHASES[state]
            if (event.round, event.step_index) != previous[1:]:
                self._on_step_change(previous[1], event)
        elif state is fp.SessionStateCode.DONE:
            self._round_done(previous[1], event.t)
            self._set_end(SessionPhase.DONE)
            self._check_missing_cues()
            self._publish(SessionDone(mirror.round, event.t))
            self._close("done")
        elif state is fp.SessionStateCode.STOPPED:
            self._set_end(SessionPhase.STOPPED)
            reason, source = _STOP_REASONS.get(event.cause, (StopReason.HOST, StopSource.BAND))
            if event.cause is fp.StopCause.HOST and self._stop_by is not None:
                reason, source = self._stop_by  # the STOP this host sent: who asked for it
            self._publish(SessionStopped(reason, event.t, source))
            self._close(f"stopped: {reason.value}")

    def _on_step_change(self, previous_round: int, event: BandStateChanged) -> None:
        mirror = self._mirror
        if event.round != previous_round or event.step_index < 0:
            self._round_done(previous_round, event.t)
        mirror.round, mirror.step_index = event.round, event.step_index
        if event.step_index >= 0:
            step = self.plan.steps[event.step_index]
            self._publish(
                StepStarted(
                    round=event.round,
                    step_index=event.step_index,
                    name=step.name,
                    kind=step.kind,
                    duration_s=step.duration_s,
                    tip=step.tip,
                    t=event.t,
                )
            )

    def _round_done(self, round_number: int, t: float) -> None:
        if round_number > 0 and round_number not in self._rounds_done:
            self._rounds_done.add(round_number)
            self._publish(RoundDone(round_number, t))

    def _mark_skipped(self, t: float, new_shift_us: int) -> None:
        mirror = self._mirror
        at_us = round((t - mirror.start) * 1_000_000)
        before = at_us - mirror.shift_us
        after = at_us - new_shift_us
        for cue in self._timeline.cues:
            if before <= cue.offset_us < after:
                mirror.skipped.add(cue.cue_id)

    def _on_cue(self, event: CueFired) -> None:
        cue = self._cues.get(event.cue_id)
        if cue is None:  # the "stopped" cue is not on the timeline: no plan to check it against
            self._publish(event)
            return
        if event.cue_id in self._mirror.acked:
            return
        self._mirror.acked.add(event.cue_id)
        planned = self._mirror.planned(cue)
        checked = CueFired(
            cue_id=event.cue_id,
            kind=event.kind,
            round=event.round,
            step_index=event.step_index,
            planned=planned,
            fired=event.fired,
            speed=self.band.clock.rate,  # so error_ms (and the "late" check) is in real ms
            offset_s=cue.offset_us / 1_000_000,
            timing=event.timing,
        )
        self._publish(checked)
        if abs(checked.error_ms) > self.late_cue_ms:
            self._publish(
                CueWarning(event.cue_id, event.kind, CueProblem.LATE, checked.error_ms, event.fired)
            )

    def _check_missing_cues(self) -> None:
        now = self.band.clock.now()
        for cue in self._timeline.cues:
            if cue.cue_id not in self._mirror.acked and cue.cue_id not in self._mirror.skipped:
                self._publish(CueWarning(cue.cue_id, cue.kind, CueProblem.MISSING, None, now))

    def _set_end(self, phase: SessionPhase) -> None:
        self._mirror.phase = phase
        self._mirror.paused_at = None

    # -- numbering, recording, fan-out -------------------------------------------------

    def _publish(self, event: Event) -> None:
        self._number += 1
        numbered = SessionEvent(
            band_id=self.band_id,
            session_id=self.session_id,
            number=self._number,
            at=datetime.now(UTC),
            event=event,
        )
        self._history.append(numbered)
        if self.store is not None and self._storage_error is None:
            try:
                self.store.record(numbered)
            except StoreError as exc:  # the follower stops the workout at its next event
                self._storage_error = exc
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(numbered)

    def _close(self, outcome: str) -> None:
        if self._finished.is_set():
            return
        self._finished.set()
        if self.store is not None:
            with contextlib.suppress(CompanionError):
                self.store.end_session(self.session_id, datetime.now(UTC), outcome)
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(None)
        self._subscribers.clear()
