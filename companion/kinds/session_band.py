"""A host-timed kind with the surface a :class:`~companion.session.Session` drives.

A companion band runs the timeline itself and reports it (state changes, cue
acknowledgements). :class:`HostTimedBand` gives a session the same reports
for a band that cannot: this host keeps the timeline (a
:class:`~companion.kinds.host_cues.HostCueSchedule`), fires each cue through
the kind at its absolute offset, and reports the step changes, the cues with
``timing=host`` (their time is the write's confirmation) and the cues it
missed while the link was down. Pause, resume, skip and stop act on the
host's timeline. At each step change, pause and resume it also hands the kind
a :class:`~companion.kinds.base.StepView` to show ("now / next / progress"),
after the cues of that moment and on a task of its own, so a slow or failed
display write never delays or costs a cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Final, Self

import firmware_protocol as fp

from ..clock import Clock
from ..errors import CompanionError
from ..events import BandStateChanged, CueFired, CueProblem, CueTiming, CueWarning, Event
from ..plan import Plan
from ..state import DeviceInfo
from .base import Capabilities, CueText, HostCue, KindBand, StepView, cue_text_for
from .host_cues import CueVerdict, HostCueSchedule

__all__ = ["HostTimedBand"]

logger = logging.getLogger(__name__)

_LATE_TOLERANCE_S: Final = 0.25


class HostTimedBand:
    """``Session(HostTimedBand(kind_band), plan)``: a host-timed band, session-shaped.

    ``late_tolerance_s`` (real seconds) is how late a cue may still be played;
    a later one is reported missed.
    """

    def __init__(self, band: KindBand, *, late_tolerance_s: float = _LATE_TOLERANCE_S) -> None:
        self.kind_band = band
        self._late_tolerance_s = late_tolerance_s
        self._plan: fp.WirePlan | None = None
        self._schedule: HostCueSchedule | None = None
        self._text = cue_text_for
        self._reports: asyncio.Queue[Event | None] = asyncio.Queue()
        self._driver: asyncio.Task[None] | None = None
        self._segment: fp.Segment | None = None
        self._wake = asyncio.Event()
        self._ended = False
        self._display: asyncio.Task[None] | None = None
        self._display_wake = asyncio.Event()
        self._step_changed = False

    async def __aenter__(self) -> Self:
        await self.kind_band.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the host's timeline and close the band."""
        await self._stop_driver()
        await self.kind_band.aclose()
        self._reports.put_nowait(None)

    # -- what a session reads ---------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """What the kind can do."""
        return self.kind_band.capabilities

    @property
    def band_id(self) -> str:
        """Stable, topic-safe id of the band."""
        return self.kind_band.band_id

    @property
    def target(self) -> str:
        """The name or address the band was asked for."""
        return self.kind_band.target

    @property
    def info(self) -> DeviceInfo:
        """Who the band is."""
        return self.kind_band.info

    @property
    def clock(self) -> Clock:
        """The host clock every time is measured on."""
        return self.kind_band.clock

    @property
    def link_up(self) -> bool:
        """Whether the link is up right now."""
        return self.kind_band.link_up

    def done_with_events(self) -> None:
        """Nothing to acknowledge: a host-timed kind's events are this host's own."""

    async def events(self, *, kept_by_reader: bool = False) -> AsyncGenerator[Event, None]:
        """The kind's own events (heart rate, battery, link) and the host timeline's reports.

        ``kept_by_reader`` changes nothing here: there is nothing to acknowledge.
        """
        merged: asyncio.Queue[Event | None] = asyncio.Queue()

        async def pump_band() -> None:
            try:
                async for event in self.kind_band.events():
                    merged.put_nowait(event)
            finally:
                merged.put_nowait(None)

        async def pump_reports() -> None:
            while (report := await self._reports.get()) is not None:
                merged.put_nowait(report)
            self._reports.put_nowait(None)
            merged.put_nowait(None)

        pumps = [asyncio.create_task(pump_band()), asyncio.create_task(pump_reports())]
        try:
            ended = 0
            while ended < len(pumps):
                item = await merged.get()
                if item is None:
                    ended += 1
                    continue
                yield item
            for pump in pumps:
                pump.result()  # the band's LinkLostError, if that is how it ended
        finally:
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError, CompanionError):
                    await pump

    # -- what a session commands ------------------------------------------------------------

    async def push_plan(self, plan: Plan) -> bool:
        """Keep ``plan`` on the host (nothing is sent: the band cannot hold a timeline)."""
        self._plan = plan.to_wire()
        return True

    async def sync_time(self, samples: int = 0) -> fp.ClockEstimate:
        """Nothing to estimate (``samples`` is ignored): the host fires every cue itself."""
        del samples
        return fp.ClockEstimate(0, 0, 0)

    def new_session_id(self) -> int:
        """A workout id for :meth:`start`, as a companion band takes (random, 32 bits)."""
        return random.randrange(1, 1 << 32)

    async def start(self, *, lead_s: float = 0.5, session_id: int | None = None) -> float:
        """Start the host's timeline ``lead_s`` from now; returns the start (host clock).

        ``session_id`` is accepted for the same call as a companion band's; the
        timeline lives in this process, so no band can hold the workout after it.
        """
        del session_id
        if self._plan is None:
            raise CompanionError("no plan: call push_plan(plan) before start()")
        start = self.clock.now() + lead_s
        self._schedule = HostCueSchedule(
            # The tolerance is real time: at --speed 60 a cue 25 ms late on the wrist is
            # 1.5 s late on the host's clock, and still on time.
            fp.build_timeline(self._plan),
            start,
            self._late_tolerance_s * self.clock.rate,
        )
        self._ended = False
        self._driver = asyncio.create_task(self._drive(self._plan, self._schedule))
        self._display = asyncio.create_task(self._show_steps())
        self._display.add_done_callback(_log_crash)
        return start

    def adopt(self) -> float:
        """Never possible: a host-timed workout lives in the process that started it."""
        raise CompanionError(
            f"{self.kind_band.capabilities.kind} bands cannot hold a workout of their own: "
            "there is nothing on the band to adopt"
        )

    async def pause(self) -> None:
        """Hold the host's timeline."""
        schedule = self._require_running()
        now = self.clock.now()
        schedule.pause(now)
        self._report_state(fp.SessionStateCode.PAUSED, now)
        self._wake.set()
        self._display_wake.set()

    async def resume(self) -> None:
        """Go on, shifted by the pause."""
        schedule = self._require_running()
        now = self.clock.now()
        schedule.resume(now)
        self._report_state(self._running_state(), now)
        self._wake.set()
        self._display_wake.set()

    async def skip(self) -> None:
        """Jump to the next step."""
        schedule = self._require_running()
        now = self.clock.now()
        elapsed_us = round(schedule.elapsed(now) * 1_000_000)
        following = schedule.timeline.next_segment_start_after(elapsed_us)
        if following is None:
            return
        schedule.skip_to(following / 1_000_000, now)
        self._wake.set()

    async def stop(self) -> None:
        """End the workout now; the band plays the "stopped" pattern if it can."""
        schedule = self._require_running()
        plan = self._plan
        await self._stop_driver()
        now = self.clock.now()
        final = self._step_view(now, ended=True)
        if plan is not None and self.capabilities.motor and self.link_up:
            stopped = fp.PlannedCue(fp.STOPPED_CUE_ID, fp.CueKind.STOPPED, 0, -1, 0)
            with contextlib.suppress(CompanionError):
                await self.kind_band.play(
                    HostCue(stopped, plan.pattern_for(fp.CueKind.STOPPED), CueText("Stopped"))
                )
        if final is not None:
            await self._show(final)
        self._report_state(
            fp.SessionStateCode.STOPPED, now, cause=fp.StopCause.HOST, schedule=schedule
        )
        self._ended = True

    def _require_running(self) -> HostCueSchedule:
        if self._schedule is None or self._ended:
            raise CompanionError("no workout is running on this band")
        return self._schedule

    # -- the host's timeline ----------------------------------------------------------------

    def _running_state(self) -> fp.SessionStateCode:
        segment = self._segment
        if segment is not None and segment.step_index < 0:
            return fp.SessionStateCode.ROUND_REST
        return fp.SessionStateCode.RUNNING

    def _report_state(
        self,
        state: fp.SessionStateCode,
        now: float,
        *,
        cause: fp.StopCause = fp.StopCause.NONE,
        schedule: HostCueSchedule | None = None,
    ) -> None:
        segment = self._segment
        timeline = schedule or self._schedule
        shift = timeline.shift_s if timeline is not None else 0.0
        self._reports.put_nowait(
            BandStateChanged(
                state,
                segment.round if segment else 1,
                segment.step_index if segment else 0,
                shift,
                cause,
                now,
            )
        )

    async def _drive(self, plan: fp.WirePlan, schedule: HostCueSchedule) -> None:
        timeline = schedule.timeline
        text_of = self._text(plan)
        clock = self.clock
        while True:
            now = clock.now()
            self._follow_segments(schedule, now)
            for cue, verdict in schedule.due(now, link_up=self.link_up):
                await self._fire(plan, schedule, cue, verdict, text_of(cue))
            if self._step_changed:
                self._step_changed = False
                self._display_wake.set()
            if schedule.done:
                await self._stop_display()
                final = self._step_view(clock.now(), ended=True)
                if final is not None:
                    await self._show(final)
                last = timeline.cues[-1]
                self._segment = fp.Segment(last.round, last.step_index, 0, 0)
                self._report_state(fp.SessionStateCode.DONE, clock.now())
                self._ended = True
                return
            deadlines = [
                d for d in (schedule.next_deadline(), self._next_segment(schedule)) if d is not None
            ]
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            pending: set[asyncio.Future[object]] = {waiter}  # type: ignore[arg-type]
            if deadlines:
                pending.add(asyncio.ensure_future(clock.sleep_until(min(deadlines))))
            try:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for future in pending:
                    future.cancel()

    def _next_segment(self, schedule: HostCueSchedule) -> float | None:
        if schedule.paused_at is not None:
            return None
        now_us = round(schedule.elapsed(self.clock.now()) * 1_000_000)
        following = schedule.timeline.next_segment_start_after(now_us)
        if following is None:
            return None
        return schedule.start + schedule.shift_s + following / 1_000_000

    def _follow_segments(self, schedule: HostCueSchedule, now: float) -> None:
        if schedule.paused_at is not None:
            return
        elapsed_us = round(schedule.elapsed(now) * 1_000_000)
        segment = schedule.timeline.segment_at(elapsed_us)
        if segment is None or segment == self._segment:
            return
        self._segment = segment
        self._step_changed = True
        self._report_state(self._running_state(), now)

    # -- what the band shows -----------------------------------------------------------------

    def _step_view(self, now: float, *, ended: bool = False) -> StepView | None:
        plan, schedule, segment = self._plan, self._schedule, self._segment
        if plan is None or schedule is None or segment is None:
            return None
        segments = schedule.timeline.segments
        try:
            index = segments.index(segment)
        except ValueError:
            return None
        total_s = schedule.timeline.total_us / 1_000_000
        elapsed_s = min(max(schedule.elapsed(now), 0.0), total_s)
        start_s, end_s = segment.start_us / 1_000_000, segment.end_us / 1_000_000
        following = segments[index + 1] if index + 1 < len(segments) else None
        name, kind = _segment_name(plan, segment)
        return StepView(
            name=name,
            kind=kind,
            next_name=_segment_name(plan, following)[0] if following is not None else None,
            round=segment.round,
            rounds=plan.rounds,
            duration_s=end_s - start_s,
            elapsed_s=min(max(elapsed_s - start_s, 0.0), end_s - start_s),
            workout_elapsed_s=elapsed_s,
            workout_total_s=total_s,
            playing=not ended and schedule.paused_at is None,
            first=index == 0,
            rate=self.clock.rate,
        )

    async def _show_steps(self) -> None:
        while True:
            await self._display_wake.wait()
            self._display_wake.clear()
            view = self._step_view(self.clock.now())
            if view is not None:
                await self._show(view)

    async def _show(self, view: StepView) -> None:
        try:
            await self.kind_band.show_step(view)
        except CompanionError as exc:
            logger.debug("step %r not shown on the band: %s", view.name, exc)

    async def _stop_display(self) -> None:
        display, self._display = self._display, None
        if display is not None and not display.done():
            display.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await display

    async def _fire(
        self,
        plan: fp.WirePlan,
        schedule: HostCueSchedule,
        cue: fp.PlannedCue,
        verdict: CueVerdict,
        text: CueText | None,
    ) -> None:
        planned = schedule.planned(cue)
        if verdict is CueVerdict.FIRE:
            try:
                await self.kind_band.play(HostCue(cue, plan.pattern_for(cue.kind), text))
            except CompanionError as exc:
                logger.info("cue %d not delivered: %s", cue.cue_id, exc)
            else:
                self._reports.put_nowait(
                    CueFired(
                        cue.cue_id,
                        cue.kind,
                        cue.round,
                        cue.step_index,
                        planned,
                        self.clock.now(),
                        speed=self.clock.rate,
                        offset_s=cue.offset_us / 1_000_000,
                        timing=CueTiming.HOST,
                    )
                )
                return
        self._reports.put_nowait(
            CueWarning(cue.cue_id, cue.kind, CueProblem.MISSED, None, self.clock.now())
        )

    async def _stop_driver(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None and not driver.done():
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        await self._stop_display()


def _segment_name(plan: fp.WirePlan, segment: fp.Segment) -> tuple[str, fp.StepKind]:
    if segment.step_index < 0:
        return "Rest", fp.StepKind.REST
    step = plan.steps[segment.step_index]
    return step.name, step.kind


def _log_crash(task: asyncio.Task[None]) -> None:
    """The display is never worth a cue: if its task fails, say so and let the cues go on."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("showing the steps on the band failed", exc_info=exc)
