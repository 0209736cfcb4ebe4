"""Session: run a workout plan on a band and record everything, the async edge.

The band runs the timeline on its own clock (or, for the bands people own, a
:class:`~companion.kinds.HostTimedBand` runs it here). The session pushes the
plan, starts it, and then only *listens*: each band event goes through the
pure :class:`~companion.tracker.SessionTracker`, which mirrors the timeline and
checks every cue against the plan; the session numbers what it returns,
records it and hands it to every subscriber (store, live view, MQTT relay are
equal subscribers of :meth:`Session.events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
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
    CommandRejected,
    Event,
    SessionEvent,
    StopReason,
)
from .kinds import CAPABILITIES, Capabilities
from .plan import Plan
from .state import DeviceInfo, SessionCommand, SessionPhase, SessionSnapshot
from .store import Store
from .tracker import SessionTracker

__all__ = ["Session", "SessionBand"]

logger = logging.getLogger(__name__)

_STOP_TIMEOUT_S: Final = 5.0
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
    def events(self, *, kept_by_reader: bool = ...) -> AsyncIterator[Event]: ...
    def done_with_events(self) -> None: ...
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
        self._tracker = SessionTracker(
            plan,
            speed=band.clock.rate,
            late_cue_ms=late_cue_ms,
            heart_rate_fresh_s=heart_rate_fresh_s,
        )
        # Events a late subscriber replays from memory: all of them without a store, else
        # only those the store failed to take. Recorded ones are read back from the store
        # (a class of hundreds of bands would otherwise hold ~1 MB per band-hour here).
        self._unstored: list[SessionEvent] = []
        self._replay_after = 0  # this Session's numbers follow this one (an adopted session's)
        self._subscribers: list[_Subscription] = []
        self._number = 0
        self._started = False
        self._storage_error: StoreError | None = None  # the history failed: stop the workout
        self._finished = asyncio.Event()
        self._start_requested = asyncio.Event()
        self._prepared: bool | None = None  # None: not yet; True: adopted; False: start anew
        self._start_sent = False
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
        return self._tracker.phase

    @property
    def finished(self) -> bool:
        """Whether the session has ended (done, stopped or the link lost for good)."""
        return self._finished.is_set()

    def events(self) -> AsyncIterator[SessionEvent]:
        """Every event of this session from the first, in order; ends when the session ends.

        Each call is an independent subscription, so a live view and an MQTT
        relay can both follow the same session. A late subscriber's earlier events
        are read back from the store, when the session has one: the session keeps
        in memory only what the store did not take.
        """
        subscription = _Subscription(self._replay())
        if self._finished.is_set():
            subscription.queue.put_nowait(None)
        else:
            self._subscribers.append(subscription)
        return subscription

    def _replay(self) -> list[SessionEvent]:
        """What this Session has published so far, in order: what it recorded, read back
        from the store (not what an earlier host recorded before an adoption), then what
        the store did not take."""
        if self.store is None:
            return list(self._unstored)
        first_unstored = self._unstored[0].number if self._unstored else self._number + 1
        stored = self.store.events_between(
            self.session_id, self.band_id, self._replay_after, first_unstored
        )
        return stored + self._unstored

    def snapshot(self) -> SessionSnapshot:
        """What a live view or dashboard shows right now."""
        features = self.features
        return self._tracker.snapshot(
            self.band.clock.now(),
            band_id=self.band_id,
            session_id=self.session_id,
            link_up=self.band.link_up,
            kind=features.kind,
            cue_mode=features.cue_mode,
        )

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
        self._tracker.stopping(by)
        await self.band.stop()

    async def obey(self, command: SessionCommand, *, by: StopReason) -> None:
        """Carry out ``command`` asked by ``by`` (e.g. a dashboard over MQTT)."""
        match command:
            case SessionCommand.START:
                await self.start()
            case SessionCommand.PAUSE:
                await self.pause()
            case SessionCommand.RESUME:
                await self.resume()
            case SessionCommand.SKIP:
                await self.skip()
            case SessionCommand.STOP:
                await self.stop(by=by)

    def reject(self, source: str, command: str, reason: str) -> None:
        """Record that a command from ``source`` was refused (the session goes on)."""
        logger.warning("rejected %s command %r: %s", source, command, reason)
        self._publish([CommandRejected(source, command, reason, self.band.clock.now())])

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
        store = self.store
        recorded = [n.event for n in store.events(session_id)] if store is not None else []
        self._number = store.last_event_number(session_id) if store is not None else 0
        self._replay_after = self._number
        self._tracker.adopted(self.band.adopt(), capabilities.session_shift_us, recorded)
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
        # The band keeps each event until the store has committed it (see _kept).
        events = self.band.events(kept_by_reader=True)
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
            self._tracker.abandoned()  # also when it failed before START
            raise StoreError(
                "the workout was stopped on the band (stopped: storage) and everything "
                f"recorded before the failure is kept: {exc}"
            ) from exc
        except LinkLostError as exc:
            self._publish(self._tracker.link_lost(self.band.clock.now(), str(exc)))
            self._close_if_ended()
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
        self._publish(self._tracker.started(start))

    async def _follow(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self._publish(self._tracker.band_event(event))
            if self._storage_error is not None:
                raise self._storage_error
            if self.store is None:
                self.band.done_with_events()  # nothing to wait for: in memory is all there is
            else:
                self.store.after_commit(self._kept)
            if self._tracker.ended:
                self._close_if_ended()
                return

    def _kept(self, error: StoreError | None) -> None:
        """What this session recorded is committed (the band may drop it), or failed to be."""
        if error is None:
            self.band.done_with_events()
        else:  # the follower stops the workout at its next event; the band keeps the rest
            self._storage_error = self._storage_error or error

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
        tracker = self._tracker
        # A START may be on its way (cancelled while awaiting its ACK): stop whatever runs, so
        # a cancellation never leaves a workout on the band that nobody follows.
        if not tracker.ended and (tracker.phase is not SessionPhase.IDLE or self._start_sent):
            tracker.stopping(reason)
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await asyncio.shield(self.band.stop())
            except CommandError as exc:
                logger.info("nothing to stop on the band: %s", exc)
            except (TimeoutError, CompanionError) as exc:
                logger.warning("could not stop the band: %s", exc)
            self._publish(tracker.stopped_by_host(reason, self.band.clock.now()))
        self._close(tracker.outcome or f"stopped: {reason.value}")

    # -- numbering, recording, fan-out -------------------------------------------------

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self._number += 1
            numbered = SessionEvent(
                band_id=self.band_id,
                session_id=self.session_id,
                number=self._number,
                at=datetime.now(UTC),
                event=event,
            )
            if self.store is not None and self._storage_error is None:
                try:
                    self.store.record(numbered)
                except StoreError as exc:  # the follower stops the workout at its next event
                    self._storage_error = exc
            if self.store is None or self._storage_error is not None:
                self._unstored.append(numbered)
            for subscriber in self._subscribers:
                subscriber.queue.put_nowait(numbered)

    def _close_if_ended(self) -> None:
        if self._tracker.outcome is not None:
            self._close(self._tracker.outcome)

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
