"""Playing a cue pattern as separate writes, for bands whose motor takes one pulse a write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import firmware_protocol as fp

from ..clock import Clock
from ..errors import CompanionError

__all__ = ["PulsePlayer"]

logger = logging.getLogger(__name__)


class PulsePlayer:
    """Plays one pattern at a time: the first pulse is awaited, the rest run behind.

    The first write is the cue's delivery (its confirmation is what the host
    records); the following pulses are placed at their absolute offsets from
    it. A new cue pre-empts what is left of the previous pattern, as a band
    that runs its own timeline does.
    """

    def __init__(
        self,
        clock: Clock,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]] = asyncio.create_task,
    ) -> None:
        """``spawn`` runs the pattern's later pulses: a band's own, so closing it stops them."""
        self._clock = clock
        self._spawn = spawn
        self._rest: asyncio.Task[None] | None = None

    async def play(self, pattern: fp.Pattern, pulse: Callable[[int, int], Awaitable[None]]) -> None:
        """Play ``pattern``; ``pulse(index, on_ms)`` makes one pulse happen."""
        await self.cancel()
        started = self._clock.now()
        await pulse(0, pattern.pulses[0].on_ms)
        if len(pattern.pulses) > 1:
            self._rest = self._spawn(self._play_rest(pattern, started, pulse))

    async def _play_rest(
        self,
        pattern: fp.Pattern,
        started: float,
        pulse: Callable[[int, int], Awaitable[None]],
    ) -> None:
        offset_ms = 0
        for index, step in enumerate(pattern.pulses):
            if index:
                await self._clock.sleep_until(started + offset_ms / 1000)
                try:
                    await pulse(index, step.on_ms)
                except CompanionError as exc:
                    logger.info("pulse %d of a %s cue lost: %s", index, pattern.cue.name, exc)
                    return
            offset_ms += step.on_ms + step.off_ms

    async def cancel(self) -> None:
        """Stop what is left of the current pattern."""
        rest, self._rest = self._rest, None
        if rest is not None and not rest.done():
            rest.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rest
