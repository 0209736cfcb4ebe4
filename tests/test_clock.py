"""A deadline is reached in whole microseconds, so a clock woken a float hair short of it
does not sleep again for ever (a host-timed cue and an InfiniTime's held heart rate did)."""

from __future__ import annotations

from companion.clock import LoopClock, reached


def test_a_hair_short_of_a_deadline_has_reached_it_and_a_microsecond_has_not() -> None:
    due = 0.1 + 0.2  # 0.30000000000000004: the float sum a period adds up to
    assert reached(0.3, due)
    assert reached(due, due)
    assert not reached(due - 1e-6, due)
    assert reached(due + 1.0, due)


async def test_a_sped_up_clock_woken_at_its_deadline_has_reached_it() -> None:
    clock = LoopClock(speed=7.0)
    for step in range(1, 12):
        deadline = clock.now() + step * 0.0131
        await clock.sleep_until(deadline)
        assert reached(clock.now(), deadline)
