"""One band interface over the bands people own: what a band is, and what it can do.

A :class:`KindBand` is one connected device of one :class:`BandKind`. Its
:class:`Capabilities` say who times the cues (the band itself, or this host),
which cue patterns it can play, whether it shows text, what its heart rate
carries, its buttons, battery and time sync, so a session, a view or a
dashboard asks the band instead of guessing from its name.

Host-timed kinds deliver one cue at a time through :meth:`KindBand.play`; the
host decides when (see :mod:`companion.kinds.session_band`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, TypedDict

import firmware_protocol as fp

from ..ble.backend import BleakBackend
from ..ble.link import GattLink
from ..ble.scan import find_band
from ..clock import Clock, LoopClock
from ..errors import BandNotFoundError, CompanionError, LinkLostError
from ..events import CueTiming, Event, LinkDown, LinkUp
from ..state import BandKind, CueMode, DeviceInfo

__all__ = [
    "BandKind",
    "Capabilities",
    "CueText",
    "CueTiming",
    "HostCue",
    "KindBand",
    "LinkOptions",
    "StepView",
    "TimeSync",
]

logger = logging.getLogger(__name__)

_RECONNECT_BACKOFF_S: Final = (0.25, 0.5, 1.0, 2.0, 4.0)


class TimeSync(enum.StrEnum):
    # NONE is "" so that ``if caps.time_sync`` reads as "has time sync".
    """How the host and the band agree on time."""

    PROTOCOL = "protocol"  # NTP-style exchanges, drift corrected (companion)
    WALL_CLOCK = "wall_clock"  # the host writes the date and time on connect
    NONE = ""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one kind of band can do; the session, the view and MQTT follow it."""

    kind: BandKind
    cue_timing: CueTiming
    motor: bool
    cue_patterns: frozenset[fp.CueKind]  # kinds it plays as their own pattern
    text: bool  # can show the exercise on the wrist
    heart_rate: bool
    rr_intervals: bool
    contact: bool
    buttons: frozenset[fp.Button]
    battery: bool
    time_sync: TimeSync
    notes: tuple[str, ...] = ()  # what the user should know ("do not disturb silences cues")

    def features(self) -> tuple[str, ...]:
        """What it can do, in a few words each (for ``companion scan`` and dashboards)."""
        heart = "heart rate" + (" + RR" if self.rr_intervals else "")
        heart += " + contact" if self.contact else ""
        return (
            f"{self.cue_timing}-timed cues",
            "motor" if self.motor else "no motor",
            *(("text",) if self.text else ()),
            *((heart,) if self.heart_rate else ()),
            *(
                ("buttons: " + ", ".join(sorted(b.name.lower() for b in self.buttons)),)
                if self.buttons
                else ()
            ),
            *(("battery",) if self.battery else ()),
            *((f"time: {self.time_sync.value.replace('_', ' ')}",) if self.time_sync else ()),
        )

    @property
    def cue_mode(self) -> CueMode:
        """Where the wearer gets the cues: from the band's clock, the host's writes, or no wrist."""
        if self.cue_timing is CueTiming.BAND:
            return CueMode.BAND
        return CueMode.HOST if self.motor else CueMode.SCREEN

    @property
    def expected_error(self) -> str:
        """What a cue's timing figure means for this kind, in words for a summary."""
        if self.cue_timing is CueTiming.BAND:
            return "cues fired by the band's own clock: a few milliseconds"
        if not self.motor:
            return "no motor: the cues are this computer's bell and screen, not the wrist"
        return (
            "cues sent by this computer: delivered within one BLE connection interval "
            "(10-50 ms), as confirmed by the write, not as felt"
        )


@dataclass(frozen=True, slots=True)
class CueText:
    """What a cue shows on a band that has a screen."""

    title: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class HostCue:
    """One cue for a host-timed band to play now: its place in the plan, pattern and text."""

    cue: fp.PlannedCue
    pattern: fp.Pattern
    text: CueText | None


@dataclass(frozen=True, slots=True)
class StepView:
    """Where a host-timed workout stands, for a band that can show "now / next / progress".

    Times are the plan's seconds; ``rate`` is plan seconds per real second (a demo's
    ``--speed``), so a band that counts on its own clock can count at the workout's pace.
    ``elapsed_s`` and ``workout_elapsed_s`` are as of the moment the view was taken.
    """

    name: str  # the step now ("Rest" between rounds)
    kind: fp.StepKind
    next_name: str | None  # None: this is the last step of the workout
    round: int
    rounds: int
    duration_s: float
    elapsed_s: float
    workout_elapsed_s: float
    workout_total_s: float
    playing: bool  # False while paused and once the workout has ended
    first: bool = False  # the workout's first step
    rate: float = 1.0

    @property
    def remaining_s(self) -> float:
        """Seconds left in this step."""
        return max(self.duration_s - self.elapsed_s, 0.0)

    @property
    def progress(self) -> float:
        """How much of the workout is behind, 0 to 1."""
        if self.workout_total_s <= 0:
            return 1.0
        return min(max(self.workout_elapsed_s / self.workout_total_s, 0.0), 1.0)


class LinkOptions(TypedDict, total=False):
    """How :class:`KindBand` reaches a band and keeps it; a kind takes them as ``**link``,
    so their defaults stand in one place."""

    backend: BleakBackend | None
    clock: Clock | None
    scan_timeout: float
    reconnect_for: float


class _Closed:
    def __init__(self, error: CompanionError | None) -> None:
        self.error = error


class KindBand(abc.ABC):
    """One connected band of some kind: ``async with`` it, iterate its :meth:`events`.

    The base keeps the link: it finds the device, connects, calls
    :meth:`on_link` for the kind to subscribe and set up, and reconnects with
    backoff after a drop (events say :class:`LinkDown` / :class:`LinkUp`).
    """

    capabilities: Capabilities

    def __init__(
        self,
        target: str,
        *,
        backend: BleakBackend | None = None,
        clock: Clock | None = None,
        scan_timeout: float = 10.0,
        reconnect_for: float = 300.0,
    ) -> None:
        self.target = target
        self._backend = backend
        self.clock = clock or LoopClock()
        self._scan_timeout = scan_timeout
        self._reconnect_for = reconnect_for
        self._link: GattLink | None = None
        self._link_up = False
        self._closing = False
        self._events: asyncio.Queue[Event | _Closed] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.info = DeviceInfo(
            band_id=target, name=target, address=target, kind=self.capabilities.kind
        )

    # -- what a kind provides -----------------------------------------------------------------

    @abc.abstractmethod
    async def on_link(self, link: GattLink, first: bool) -> None:
        """The link is up (``first`` on the initial connect): check, subscribe, set up."""

    async def play(self, cue: HostCue) -> None:
        """Deliver ``cue`` now; returns once the band confirmed it (host-timed kinds only)."""
        raise CompanionError(
            f"a {self.capabilities.kind} band times its own cues: push the plan and start it"
        )

    async def show_step(self, step: StepView) -> None:  # noqa: B027 (optional hook)
        """A step started, paused or resumed: show it if the band can (host-timed kinds).

        Best effort and never a cue: a kind logs its own failed writes. The default shows
        nothing.
        """

    def not_found_hint(self) -> str | None:
        """Why a band of this kind may not be found and what to do (None: the scan's message)."""
        return None

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._connect(first=True)
        except BaseException as exc:
            await self.aclose()
            hint = self.not_found_hint() if isinstance(exc, BandNotFoundError) else None
            if hint is not None:
                raise BandNotFoundError(hint) from exc
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect and stop every task of this band."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._link is not None:
            await self._link.close()
        self._link_up = False
        self._events.put_nowait(_Closed(None))

    @property
    def band_id(self) -> str:
        """Stable, topic-safe id of this band."""
        return self.info.band_id

    @property
    def link_up(self) -> bool:
        """Whether the BLE link is up right now."""
        return self._link_up

    def require_link(self) -> GattLink:
        """The link, or :class:`LinkLostError` while it is down."""
        if self._link is None or not self._link_up:
            raise LinkLostError(f"band {self.target} is out of reach right now")
        return self._link

    async def events(self) -> AsyncIterator[Event]:
        """Band events in order (heart rate, battery, buttons, link); ends when closed."""
        while True:
            item = await self._events.get()
            if isinstance(item, _Closed):
                self._events.put_nowait(item)
                if item.error is not None:
                    raise item.error
                return
            yield item

    def emit(self, event: Event) -> None:
        """Hand ``event`` to :meth:`events`."""
        self._events.put_nowait(event)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` until the band is closed (closing cancels it); returns its task."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the link -----------------------------------------------------------------------------

    async def _connect(self, *, first: bool) -> None:
        device = await find_band(self.target, timeout=self._scan_timeout, backend=self._backend)
        link = await GattLink.open(device, backend=self._backend, on_disconnect=self._on_drop)
        self._link, self._link_up = link, True
        try:
            if first:
                self.info = DeviceInfo(
                    band_id=_band_id(link.address),
                    name=device.name or self.target,
                    address=link.address,
                    kind=self.capabilities.kind,
                )
            await self.on_link(link, first)
        except BaseException:
            self._link_up = False
            await link.close()
            raise

    def _on_drop(self) -> None:
        if not self._link_up:
            return
        self._link_up = False
        if self._closing:
            return
        logger.warning("link to %s dropped; reconnecting", self.target)
        self.emit(LinkDown(self.clock.now(), "link dropped"))
        self.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        deadline = self.clock.now() + self._reconnect_for * self.clock.rate
        attempt = 0
        while not self._closing:
            try:
                await self._connect(first=False)
            except CompanionError as exc:
                if self.clock.now() >= deadline:
                    self._events.put_nowait(
                        _Closed(
                            LinkLostError(
                                f"band {self.target} stayed out of reach for "
                                f"{self._reconnect_for:g} s ({exc})"
                            )
                        )
                    )
                    return
                delay = _RECONNECT_BACKOFF_S[min(attempt, len(_RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self.emit(LinkUp(self.clock.now()))
            return


def _band_id(address: str) -> str:
    """A topic-safe id from an address ([a-z0-9-])."""
    cleaned = "".join(c for c in address.lower() if c.isalnum() or c == "-")
    return cleaned or "band"


def cue_text_for(plan: fp.WirePlan) -> Callable[[fp.PlannedCue], CueText | None]:
    """The text each cue of ``plan`` shows: the exercise at a transition, the round at its end."""

    def text(cue: fp.PlannedCue) -> CueText | None:
        steps = plan.steps
        match cue.kind:
            case fp.CueKind.NEXT_EXERCISE:
                step = steps[cue.step_index]
                after = cue.step_index + 1
                following = steps[after].name if after < len(steps) else ""
                body = f"round {cue.round}/{plan.rounds}"
                return CueText(step.name, f"{body}, then {following}" if following else body)
            case fp.CueKind.ROUND_DONE:
                return CueText(f"Round {cue.round} done", f"{plan.rounds - cue.round} to go")
            case fp.CueKind.WORKOUT_DONE:
                return CueText("Workout done", plan.name)
            case fp.CueKind.SWITCH_SIDE:
                return CueText("Switch side", steps[cue.step_index].name)
        return None

    return text
