"""A plan built in code, with cue patterns of its own, run on a virtual band.

Every minute the band buzzes "next": here a long-long pattern instead of the
default single buzz, and the countdown is a soft tick. The motor of the
virtual band records what it played, so this script prints the band's own
record of each cue next to the plan.

    python examples/minute_cues.py --speed 60
"""

from __future__ import annotations

import argparse
import asyncio

from companion.band import Band
from companion.clock import LoopClock
from companion.plan import Plan, Step
from companion.session import Session
from companion.sim import VirtualBandConfig, VirtualWorld
from firmware_protocol import CueKind, Pattern, Pulse, default_pattern

PATTERNS = (
    Pattern(CueKind.NEXT_EXERCISE, 255, (Pulse(400, 200), Pulse(400, 0))),
    Pattern(CueKind.COUNTDOWN, 90, (Pulse(60, 0),)),
    # The others keep their defaults, so every cue still feels different.
    *(default_pattern(kind) for kind in (CueKind.SWITCH_SIDE, CueKind.ROUND_DONE)),
    *(default_pattern(kind) for kind in (CueKind.WORKOUT_DONE, CueKind.STOPPED)),
)

PLAN = Plan(
    name="minutes",
    title="Three one-minute moves",
    steps=(
        Step("Side plank", 60, switch_side=True, tip="Hips high; switch at the double buzz."),
        Step("Bird dog", 60, tip="Slow: opposite arm and leg."),
        Step("Glute bridge", 60, tip="Squeeze at the top."),
    ),
    rounds=2,
    round_rest_s=30,
    countdown=3,
    patterns=PATTERNS,
)


async def main(speed: float) -> None:
    clock = LoopClock(speed)
    async with VirtualWorld() as world:
        virtual = await world.add_band(VirtualBandConfig(clock=clock))
        async with Band.connect(virtual.address, backend=world.backend, clock=clock) as band:
            final = await Session(band, PLAN).run()
    print(f"{PLAN.title}: {final.phase.value} after {final.elapsed_s / 60:.1f} min")
    print("what the band's motor played (band clock, seconds from the first cue):")
    played = virtual.motor.played
    for action in played:
        at = (action.at_us - played[0].at_us) / 1e6
        print(f"  {at:7.1f} s  {action.kind.name.lower():14} {action.pattern.duration_ms} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=1.0, help="run N times faster")
    asyncio.run(main(parser.parse_args().speed))
