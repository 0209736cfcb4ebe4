"""The time sync of one companion band: exchanges, the estimate, and drift correction.

A :class:`~companion.band.Band` owns one :class:`ClockSync` and drives it: the
band's driver asks it how to write each fragment (:meth:`ClockSync.write_mode`),
so a TIME_SYNC request is stamped the moment it is really written and goes
*without response* once the link has shown it carries the band's security
(a confirmed write went through): with response, the band's answer would queue
behind the write response and the return leg would always be the slower of
two. The estimate itself is :class:`firmware_protocol.ClockTracker`'s: every
exchange bounds the offset, the bounds are intersected, and a drift shows in
successive syncs.

While a workout runs, the band's timeline is kept on the host's clock through
ADJUST: after each sync, and in between as often as the estimated drift needs
to stay within :data:`FOLLOW_US`. Without drift the estimate only tightens, so
a resync moves the timeline by what was learnt, never by the new exchanges'
noise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import firmware_protocol as fp

from .clock import Clock
from .errors import CommandError, CompanionError

__all__ = ["FOLLOW_US", "ClockSync"]

logger = logging.getLogger(__name__)

FOLLOW_US: Final = 250  # drift allowed to build up on the band's timeline between ADJUSTs
_MIN_ADJUST_US: Final = 20  # below the sync's own resolution: not worth a command
_FOLLOW_MIN_S: Final = 1.0
_FOLLOW_MAX_S: Final = 30.0
_FOLLOW_IDLE_S: Final = 5.0  # how soon a drift the last sync revealed is followed

Exchange = Callable[[fp.Command], Awaitable[fp.CommandResult]]
Adjust = Callable[[int], Awaitable[None]]


class ClockSync:
    """Band clock against host clock for one band, and the running timeline kept on it."""

    def __init__(self, clock: Clock, exchange: Exchange, adjust: Adjust) -> None:
        """``exchange`` sends a command and returns its result (the band's request path);
        ``adjust`` sends ADJUST and raises :class:`CommandError` if the band refuses."""
        self._clock = clock
        self._exchange = exchange
        self._adjust = adjust
        self._tracker = fp.ClockTracker()
        self._estimate: fp.ClockEstimate | None = None
        self._written: dict[int, list[int]] = {}  # seq -> host times its request was written
        # The running timeline's anchor: START's host time and band time (us), and how far
        # it has been adjusted since.
        self._anchor: tuple[int, int] | None = None
        self._adjusted_us = 0

    # -- the estimate ------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether any exchange has been taken (band times mean nothing on the host before)."""
        return self._estimate is not None

    @property
    def estimate(self) -> fp.ClockEstimate | None:
        """The latest estimate (None before the first sync)."""
        return self._estimate

    def offset_at(self, host_us: float) -> float:
        """Band clock minus host clock at host time ``host_us`` (0 before the first sync)."""
        return 0.0 if self._estimate is None else self._estimate.offset_at(host_us)

    def to_band_us(self, host_us: float) -> int:
        """A host-clock time in band-clock microseconds."""
        return round(host_us + self.offset_at(host_us))

    def to_host_us(self, band_us: int) -> float:
        """A band-clock time in host-clock microseconds (the drift makes it a fixed point)."""
        guess = band_us - self.offset_at(self._clock.now_us())
        return band_us - self.offset_at(guess)

    def reset(self) -> None:
        """Forget every exchange: the band rebooted, its clock started afresh."""
        self._tracker.reset()
        self._estimate = None
        self._anchor = None

    # -- the exchanges --------------------------------------------------------------------

    def write_mode(self, fragment: bytes, *, confirmed_link: bool) -> bool:
        """Whether to write ``fragment`` with response; a TIME_SYNC request's write time is
        stamped here, just before the write.

        Without response only for a first send on a link where a confirmed write already
        went through: an unpaired band drops unconfirmed writes silently, and a resend
        goes with response in any case.
        """
        peeked = fp.peek_fragment(fragment)
        if peeked is None or peeked[0] is not fp.MessageType.TIME_SYNC_REQUEST:
            return True
        _kind, seq, flags = peeked
        self._written.setdefault(seq, []).append(self._clock.now_us())
        return not confirmed_link or bool(flags & fp.FrameFlags.RETRANSMIT)

    async def sync(self, exchanges: int) -> fp.ClockEstimate:
        """``exchanges`` more exchanges, added to every earlier one; returns the new estimate."""
        taken = 0
        for _ in range(exchanges):
            result = await self._exchange(fp.TimeSyncRequest(self._clock.now_us()))
            written = self._written.pop(result.seq, [])
            reply = result.reply
            if not isinstance(reply, fp.TimeSyncResponse):
                raise CommandError(f"band answered time sync with {reply!r}", code=-1)
            if len(written) != 1:
                continue  # sent more than once: which copy the band answered is unknown
            self._tracker.add(
                fp.TimeSyncSample(
                    written[0], reply.band_receive_us, reply.band_send_us, result.received_us
                )
            )
            taken += 1
        if not self._tracker.samples:
            raise CompanionError(
                f"time sync failed: none of {exchanges} exchanges was answered on its first send"
            )
        self._estimate = self._tracker.estimate(self._clock.now_us())
        logger.debug(
            "time sync: %d exchanges (%d kept), offset %d us +- %d us, drift %.2f ppm",
            exchanges,
            taken,
            self._estimate.offset_us,
            self._estimate.uncertainty_us,
            self._estimate.drift_ppm,
        )
        return self._estimate

    # -- the running timeline ---------------------------------------------------------------

    def started(self, start_host_us: int, start_band_us: int, *, adjusted_us: int = 0) -> None:
        """START was accepted (or a running workout adopted): the band's timeline runs from
        ``start_band_us``, already moved by ``adjusted_us``, and is due at ``start_host_us``."""
        self._anchor, self._adjusted_us = (start_host_us, start_band_us), adjusted_us

    def ended(self) -> None:
        """The workout ended (done, stopped, or gone with a reboot): nothing to keep on time."""
        self._anchor = None

    @property
    def running(self) -> bool:
        """Whether a started timeline is being kept on the host's clock."""
        return self._anchor is not None

    async def correct(self) -> None:
        """Move the rest of the band's timeline to where the host's clock wants it now.

        A band crystal may be 50 ppm off, 75 ms over a 25-minute workout; the
        timeline fires cue ``k`` at band time ``start_band + k + adjusted``, which
        the band's clock reaches at host time ``start_band + k + adjusted - offset``.
        """
        if self._anchor is None or self._estimate is None:
            return
        start_host_us, start_band_us = self._anchor
        now_us = self._clock.now_us()
        wanted = round(self.offset_at(now_us)) - (start_band_us - start_host_us)
        delta = wanted - self._adjusted_us
        if abs(delta) < _MIN_ADJUST_US:
            return
        try:
            await self._adjust(delta)
        except CommandError as exc:
            logger.debug("drift correction refused (the session just ended?): %s", exc)
            return
        self._adjusted_us += delta

    async def follow_drift(self) -> None:
        """While a timeline runs, ADJUST it as often as the estimated drift needs (forever)."""
        while True:
            drift = self._tracker.drift_ppm
            if self._anchor is None or drift == 0.0:
                wait_s = _FOLLOW_IDLE_S
            else:
                wait_s = FOLLOW_US / abs(drift)  # us / (us per s)
            await self._clock.sleep(min(max(wait_s, _FOLLOW_MIN_S), _FOLLOW_MAX_S))
            if self._anchor is not None and drift != 0.0:
                try:
                    await self.correct()
                except CompanionError as exc:
                    logger.debug("drift follow skipped: %s", exc)
