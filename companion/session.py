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
from typing import Final

import firmware_protocol as fp

from .band import Band
from .errors import CompanionError, LinkLostError, StoreError
from .events import (
    BandStateChanged,
    Battery,
    CommandRejected,
    CueFired,
    CueWarning,
    Event,
    HeartRate,
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
)
from .plan import Plan
from .state import DeviceInfo, SessionPhase, SessionSnapshot
from .store import Store

__all__ = ["Session"]

logger = logging.getLogger(__name__)

_STOP_REASONS: Final = {
    "button": StopReason.USER,
    "pain": StopReason.PAIN,
    "host": StopReason.HOST,
    "reboot": StopReason.REBOOT,
}
_END_PHASES: Final = (SessionPhase.DONE, SessionPhase.STOPPED)
_STOP_TIMEOUT_S: Final = 5.0


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
        band: Band,
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

    async def stop(self) -> None:
        """Stop the workout now (the band plays the "stopped" pattern)."""
        await self.band.stop()

    def reject(self, source: str, command: str, reason: str) -> None:
        """Record that a command from ``source`` was refused (the session goes on)."""
        logger.warning("rejected %s command %r: %s", source, command, reason)
        self._publish(CommandRejected(source, command, reason, self.band.clock.now()))

    # -- running -------------------------------------------------------------------

    async def run(self, *, autostart: bool = True) -> SessionSnapshot:
        """Push the plan, start it and follow it to its end; returns the final snapshot.

        Cancelling ``run()`` (Ctrl-C) stops the workout on the band first, and
        everything recorded so far stays recorded.
        """
        if not autostart:
            await self._start_requested.wait()
        self._started = True
        events = self.band.events()
        try:
            await self.band.push_plan(self.plan)
            start = await self.band.start()
            self._begin(start)
            # Not a TaskGroup: it would wrap the follower's LinkLostError in an ExceptionGroup.
            resync = asyncio.create_task(self._resync_periodically())
            try:
                await self._follow(events)
            finally:
                resync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resync
        except asyncio.CancelledError:
            await self._stop_by_host(StopReason.HOST)
            raise
        except StoreError as exc:
            # A workout that cannot be recorded is stopped, not followed blind: the person
            # would lose it without knowing. What was written before stays.
            self._storage_error = self._storage_error or exc
            await self._stop_by_host(StopReason.STORAGE)
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

    def _begin(self, start: float) -> None:
        mirror = self._mirror
        mirror.start = start
        mirror.phase = SessionPhase.RUNNING
        if self.store is not None:
            self.store.begin_session(self.session_id, self.band_id, self.plan, datetime.now(UTC))
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
                    await self.band.sync_time()
                except CompanionError as exc:
                    logger.info("periodic time sync skipped: %s", exc)

    async def _stop_by_host(self, reason: StopReason) -> None:
        if self._mirror.phase not in _END_PHASES and self._mirror.phase is not SessionPhase.IDLE:
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await asyncio.shield(self.band.stop())
            except (TimeoutError, CompanionError) as exc:
                logger.warning("could not stop the band: %s", exc)
            self._set_end(SessionPhase.STOPPED)
            self._publish(SessionStopped(reason, self.band.clock.now()))
        self._close(f"stopped: {reason.value}")

    # -- turning band reports into session events ------------------------------------

    def _handle(self, event: Event) -> None:
        match event:
            case BandStateChanged():
                self._on_band_state(event)
            case CueFired():
                self._on_cue(event)
            case HeartRate():
                self._heart_rate = event
                self._publish(event)
            case Battery():
                self._battery = event.percent
                self._publish(event)
            case LinkDown() | LinkUp():
                self._publish(event)
            case CueWarning(problem="missed"):
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
        if state == "paused":
            mirror.paused_at = event.t
            mirror.phase = SessionPhase.PAUSED
            self._publish(SessionPaused(event.t))
            return
        if previous[0] is SessionPhase.PAUSED and state in ("running", "round_rest"):
            mirror.paused_at = None
            self._publish(SessionResumed(event.t))
        if state in ("running", "round_rest"):
            mirror.phase = SessionPhase.RUNNING if state == "running" else SessionPhase.ROUND_REST
            if (event.round, event.step_index) != previous[1:]:
                self._on_step_change(previous[1], event)
        elif state == "done":
            self._round_done(previous[1], event.t)
            self._set_end(SessionPhase.DONE)
            self._check_missing_cues()
            self._publish(SessionDone(mirror.round, event.t))
            self._close("done")
        elif state == "stopped":
            self._set_end(SessionPhase.STOPPED)
            reason = _STOP_REASONS.get(event.cause, StopReason.HOST)
            self._publish(SessionStopped(reason, event.t))
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
                    kind=step.kind.name.lower(),
                    duration_s=step.duration_s,
                    tip=step.tip,
                    t=event.t,
                )
            )

    def _round_done(self, round_number: int, t: float) -> None:
        if round_number > 0 and not any(
            isinstance(e.event, RoundDone) and e.event.round == round_number for e in self._history
        ):
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
                CueWarning(event.cue_id, event.kind, "late", checked.error_ms, event.fired)
            )

    def _check_missing_cues(self) -> None:
        now = self.band.clock.now()
        for cue in self._timeline.cues:
            if cue.cue_id not in self._mirror.acked and cue.cue_id not in self._mirror.skipped:
                self._publish(CueWarning(cue.cue_id, cue.kind.name.lower(), "missing", None, now))

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
