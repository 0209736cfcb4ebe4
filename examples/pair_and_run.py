"""Pair a band, push the 5-minute back workout, and print every event.

python examples/pair_and_run.py AA:BB:CC:DD:EE:FF     # a real band
python examples/pair_and_run.py --sim --speed 30      # a virtual band, 30x faster
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from companion.band import Band
from companion.clock import LoopClock
from companion.plan import builtin_plan
from companion.session import Session
from companion.view import describe


async def main(address: str | None, speed: float) -> None:
    clock = LoopClock(speed)
    async with contextlib.AsyncExitStack() as stack:
        backend = None
        if address is None:  # no band at hand: a virtual one in this process
            from companion.sim import VirtualBandConfig, VirtualWorld

            world = await stack.enter_async_context(VirtualWorld())
            address = (await world.add_band(VirtualBandConfig(clock=clock))).address
            backend = world.backend

        # Connects, pairs if the band asks for it, checks the protocol version, syncs clocks.
        band = await stack.enter_async_context(Band.connect(address, backend=backend, clock=clock))
        print(f"connected to {band.info.name} (firmware {band.info.firmware})")
        if speed != 1:  # the workout's clock runs fast; cue errors stay real milliseconds
            print(f"running at {speed:g}x: cue errors are in real milliseconds")

        session = Session(band, builtin_plan("back-5"))
        run = asyncio.create_task(session.run())  # push, start, follow to the end
        async for numbered in session.events():
            line = describe(numbered)  # None for heart rate, battery...: one line per moment
            if line is not None:
                print(f"{numbered.number:4}  {line}")
        final = await run
        print(f"session {final.session_id}: {final.phase.value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="the band's address or name")
    parser.add_argument("--sim", action="store_true", help="use a virtual band")
    parser.add_argument("--speed", type=float, default=1.0, help="with --sim: run N times faster")
    args = parser.parse_args()
    if args.sim == (args.address is not None):
        parser.error("give the band's address, or --sim")
    if args.speed != 1.0 and not args.sim:
        parser.error("--speed only applies to a virtual band")
    asyncio.run(main(args.address, args.speed))
