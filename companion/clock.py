"""Injectable clocks: where the host library and the virtual band get their time.

All scheduling goes through a :class:`Clock` so that a 25-minute workout can run
in a test in well under a second (a fast clock, or a virtual-time event loop)
and a demo can run ten times faster than real time, without a single ``sleep``
whose error accumulates.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

__all__ = ["Clock", "LoopClock", "reached"]


def reached(now: float, deadline: float) -> bool:
    """Whether ``now`` has reached ``deadline``, judged in whole microseconds (the protocol's unit).

    A clock woken at a deadline that is a float sum can read a hair before it: judged
    exactly, a loop that sleeps until that deadline again would wait for ever, on a sleep
    too short to move a virtual clock forward.
    """
    return round((deadline - now) * 1_000_000) <= 0


class Clock(ABC):
    """A monotonic time source in seconds that can also wait until a deadline."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since an arbitrary, fixed origin; never goes backwards."""

    @abstractmethod
    async def sleep_until(self, deadline: float) -> None:
        """Return once :meth:`now` has reached ``deadline`` (at once if it already has)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        await self.sleep_until(self.now() + seconds)

    def now_us(self) -> int:
        """:meth:`now` in whole microseconds, the unit of the wire protocol."""
        return round(self.now() * 1_000_000)

    @property
    def rate(self) -> float:
        """Seconds of this clock per real second (1 unless sped up for a demo).

        Link timers (retransmission, reconnection windows) are about the radio,
        not the workout: they scale by this so they stay the same in real time.
        """
        return 1.0


class LoopClock(Clock):
    """The running event loop's clock, optionally sped up by ``speed``.

    ``speed=10`` makes one real second count as ten: a demo of a 5-minute
    workout takes 30 seconds. Under a virtual-time loop in tests, the loop's
    clock itself jumps forward, so ``speed`` can stay 1.

    Time counts from the clock's first use, or from the loop clock's own origin
    with ``shared=True`` (the system's monotonic clock, so every process on the
    machine reads the same time: a host that restarts and adopts a workout keeps
    the times its previous run recorded comparable).
    """

    def __init__(self, speed: float = 1.0, *, shared: bool = False) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.speed = speed
        self._origin: float | None = 0.0 if shared else None

    @property
    def rate(self) -> float:
        return self.speed

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def now(self) -> float:
        loop_time = self._loop_time()
        if self._origin is None:
            self._origin = loop_time
        return (loop_time - self._origin) * self.speed

    async def sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.now()
        if remaining > 0:
            await asyncio.sleep(remaining / self.speed)
