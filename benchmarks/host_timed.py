"""Host-timed cues on the InfiniTime and Bangle.js emulators, under link jitter.

Run from the repository root::

    python benchmarks/host_timed.py                # InfiniTime and Bangle.js, ~40 s
    python benchmarks/host_timed.py --quick
    python benchmarks/host_timed.py --jitter-ms 10 40

Real time on the virtual link, every LE packet delayed by a uniform
``--jitter-ms LOW HIGH`` per direction (as ``benchmarks/cues.py``). The host
fires each cue at its absolute offset through
:class:`companion.kinds.HostTimedBand`, the driver a session runs;
*delivered* is when the watch's motor started, from the emulator's own record
on the shared clock, minus the planned time; *confirmed* is what the host can
know (the write's confirmation, ``CueFired.fired``). For InfiniTime's Immediate
Alert (write without response) the confirmation is only the local stack
taking the write, which is why the delivered figure is the one to quote.

:func:`measure_host_timed` runs one kind's trials and returns the figures, for a
caller that wants them without this table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from cues import bench_plan  # the same plan as the band-timed rows

import firmware_protocol as fp
from companion.clock import LoopClock
from companion.events import BandStateChanged, CueFired, CueWarning, Event
from companion.kinds import BandKind, HostTimedBand, connect_band
from companion.plan import Plan
from companion.sim import (
    BangleConfig,
    InfiniTimeConfig,
    MotorSource,
    Peripheral,
    VirtualWorld,
)

__all__ = ["HostTimedResult", "measure_host_timed"]

_LEAD_S = 1.0
_SETTLE_S = 0.5
_MATCH_WINDOW_S = 0.5


@dataclass(slots=True)
class HostTimedResult:
    """One kind's figures: per-cue errors in milliseconds (signed)."""

    kind: BandKind
    delivered_ms: list[float] = field(default_factory=list)  # motor start - planned
    confirmed_ms: list[float] = field(default_factory=list)  # CueFired.fired - planned
    missed: int = 0
    expected: int = 0


async def measure_host_timed(
    kind: BandKind,
    plan: Plan,
    *,
    jitter_ms: tuple[float, float] = (10.0, 40.0),
    trials: int = 1,
    seed: int = 0x5EED,
) -> HostTimedResult:
    """Run ``plan`` ``trials`` times on the ``kind`` emulator with host-timed cues."""
    result = HostTimedResult(kind)
    clock = LoopClock()
    timeline = fp.build_timeline(plan.to_wire())
    async with VirtualWorld(name="bench-host") as world:
        world.link.set_delay(jitter_ms[0] / 1000, jitter_ms[1] / 1000, seed=seed)
        watch: Peripheral
        if kind is BandKind.INFINITIME:
            watch, source = (
                await world.add_infinitime(InfiniTimeConfig(clock=clock)),
                (MotorSource.NOTIFICATION),
            )
        elif kind is BandKind.BANGLE:
            watch, source = await world.add_bangle(BangleConfig(clock=clock)), MotorSource.BUZZ
        else:
            raise ValueError(f"no emulator with a motor for {kind}")
        band = HostTimedBand(
            await connect_band(watch.address, kind=kind, backend=world.backend, clock=clock)
        )
        async with band, contextlib.aclosing(band.events()) as stream:
            await band.push_plan(plan)
            for _ in range(trials):
                before = len(watch.motor)
                start = await band.start(lead_s=_LEAD_S)
                events = await _one_workout(stream)
                await clock.sleep(_SETTLE_S)
                result.expected += len(timeline.cues)
                fired = {e.cue_id: e for e in events if isinstance(e, CueFired)}
                result.missed += sum(isinstance(e, CueWarning) for e in events)
                pulses = [p.t for p in watch.motor[before:] if p.source is source]
                used = 0
                for cue in timeline.cues:
                    planned = start + cue.offset_us / 1_000_000
                    if cue.cue_id in fired:
                        result.confirmed_ms.append((fired[cue.cue_id].fired - planned) * 1000)
                    while used < len(pulses) and pulses[used] < planned - 0.001:
                        used += 1
                    if used < len(pulses) and pulses[used] < planned + _MATCH_WINDOW_S:
                        result.delivered_ms.append((pulses[used] - planned) * 1000)
                        used += 1
    return result


async def _one_workout(stream: AsyncGenerator[Event, None]) -> list[Event]:
    # Leaving the loop does not close the stream: the next trial reads on from here.
    events: list[Event] = []
    async for event in stream:
        events.append(event)
        if isinstance(event, BandStateChanged) and event.state is fp.SessionStateCode.DONE:
            return events
    raise RuntimeError("the band's events ended before the workout was done")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(abs(v) for v in values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def row(result: HostTimedResult) -> dict[str, Any]:
    """The figures of one kind, as the report prints them."""
    return {
        "kind": str(result.kind),
        "cues": f"{len(result.delivered_ms)}/{result.expected}",
        "missed": result.missed,
        "delivered_p50_ms": round(_percentile(result.delivered_ms, 50), 3),
        "delivered_p99_ms": round(_percentile(result.delivered_ms, 99), 3),
        "confirmed_p50_ms": round(_percentile(result.confirmed_ms, 50), 3),
        "confirmed_p99_ms": round(_percentile(result.confirmed_ms, 99), 3),
    }


async def _main(args: argparse.Namespace) -> list[dict[str, Any]]:
    plan = bench_plan(args.quick)

    async def one(kind: BandKind) -> dict[str, Any]:
        began = time.perf_counter()
        result = await measure_host_timed(
            kind, plan, jitter_ms=tuple(args.jitter_ms), trials=args.trials
        )
        return row(result) | {"seconds": round(time.perf_counter() - began, 1)}

    kinds = (BandKind.INFINITIME, BandKind.BANGLE)
    if args.quick:
        # Side by side, to finish in seconds: each watch's link set-up is most of a run, and
        # two light workouts on one loop barely move each other's figures (a smoke run).
        return list(await asyncio.gather(*(one(kind) for kind in kinds)))
    return [await one(kind) for kind in kinds]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one trial per kind, both kinds side by side"
    )
    parser.add_argument("--trials", type=int, help="workouts per kind [default: 3, 1 --quick]")
    parser.add_argument("--jitter-ms", type=float, nargs=2, default=(10.0, 40.0))
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = 1 if args.quick else 3
    rows = asyncio.run(_main(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    low, high = args.jitter_ms
    print(f"host-timed cues, link jitter {low:g}-{high:g} ms per packet (|error|, ms)")
    print(
        f"{'kind':<12}{'cues':>8}{'missed':>8}{'deliv p50':>11}{'deliv p99':>11}"
        f"{'conf p50':>10}{'conf p99':>10}"
    )
    for r in rows:
        print(
            f"{r['kind']:<12}{r['cues']:>8}{r['missed']:>8}{r['delivered_p50_ms']:>11.1f}"
            f"{r['delivered_p99_ms']:>11.1f}{r['confirmed_p50_ms']:>10.1f}"
            f"{r['confirmed_p99_ms']:>10.1f}"
        )
    # benchmarks/cues.py runs these beside the band-timed cues, its baseline, as a ratio.
    print(
        json.dumps(
            {
                "bench": "host_timed",
                "jitter_ms": list(args.jitter_ms),
                "trials": args.trials,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
