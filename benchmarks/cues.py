"""Cue timing: band-timed cues against the host writing "vibrate now" at each boundary.

Run from the repository root::

    python benchmarks/cues.py                 # 34 workouts (306 cues, 34 syncs), virtual time
    python benchmarks/cues.py --quick         # 1 workout, 3 syncs
    python benchmarks/cues.py --real-time     # the same in real time (timer floor included)

Every LE packet is delayed by a uniform ``--jitter-ms LOW HIGH`` (default 10-40
ms, the connection-event model of DESIGN.md), per direction, never reordered.
Each trial is a fresh link with its own jitter seed and a fresh connection, so
each draws its own time-sync error: the true-error figures rest on as many
independent syncs as there are trials plus ``--syncs``. The trials run in
virtual time (a looptime loop): what is measured is the protocol and the
estimator, not how late this machine's timers wake; that floor is measured on
its own, in real time, and printed beside (``timer_floor_p99_ms``).

Two virtual bands sit on the same link, with the same link settings, and share
the host's clock (so the band's true clock offset is known exactly):

- **ours** (band A): a :class:`~companion.session.Session` pushes the plan,
  syncs clocks, sends START, and the band fires every cue from its own timer.
  Cue error (BENCHMARKS.md) is ``CueFired.error_ms`` as the session publishes
  it: the band's reported fire time converted to host clock with the host's
  time-sync estimate, minus the host mirror's planned time. Because the band
  was started with the same estimate, the estimate's own error cancels out of
  that figure; so the script also reports the *true* error: the motor's record
  (band clock) converted with the exact band clock mapping, minus the planned
  time. The gap between the two is the time-sync error, reported on its own.
- **naive** (band B): a plain ``BleakClient`` (no companion code) sleeps until
  each boundary of the same plan (same cue times, measured from its own start)
  and writes the Immediate Alert level without response, as hosts cue standard
  bands. "Fired" is when the band received the write: the motor's record
  converted with the exact clock mapping, i.e. measured directly. Converting it
  with a time-sync estimate instead would add that estimate's error to the
  baseline and flatter ours; the direct measure is the conservative one.

The two run at the same time, the naive timeline 0.25 s after ours so that no
two boundaries (all on a 0.5 s grid) land on the same loop iteration.

The stated uncertainty is the half-width of the intersection of every
exchange's hard bound (each leg took no negative time); ``sync_bound_coverage``
is how often the true offset lies inside it and ``sync_bound_ratio`` its median
over the median true error. The link's own floor (LOW ms each way) is
indistinguishable from a clock offset, so no host can bound tighter than ±LOW
without being told that floor; the ``_known_floor`` figures show the bound a
host told it would state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import looptime
from bleak import BleakClient, BleakScanner

import firmware_protocol as fp
from companion.band import Band
from companion.clock import LoopClock
from companion.events import CueFired, SessionStarted
from companion.kinds import BandKind
from companion.plan import Plan, Step
from companion.session import Session
from companion.sim import BandCore, VirtualBand, VirtualBandConfig, VirtualWorld
from firmware_protocol import gatt

_NAIVE_SHIFT_S: Final = 0.25  # the naive timeline runs this much after ours
_NAIVE_LEAD_S: Final = 0.5  # as Band.start's default lead
_ALERT_LEVEL_HIGH: Final = b"\x02"
_SETTLE_S: Final = 0.3  # after the last naive write, before reading the motor
_PROBE_PHASE_S: Final = 0.125  # timer probes sit between the cue grids of both designs
_PROBE_PERIOD_S: Final = 0.25
_REFINE_WAIT_S: Final = 8.0  # virtual seconds after connect: 64 exchanges at 10-40 ms a leg


# -- the plan ----------------------------------------------------------------------------


def bench_plan(quick: bool) -> Plan:
    """A short plan with 1-2 s steps: step starts, a side switch, countdowns, the end."""
    steps: tuple[Step, ...] = (
        Step("Warm up", 1.5),
        Step("Side plank", 2.0, switch_side=True),
        Step("Bridge", 1.0),
        Step("Bird dog", 2.0),
        Step("Rest", 1.0, kind=fp.StepKind.REST),
    )
    if quick:
        steps = (steps[0], Step("Bridge", 1.0))
    return Plan(name="bench-cues", title="Cue benchmark", steps=steps, countdown=3)


# -- measuring -----------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    band_reported_ms: list[float] = field(default_factory=list)  # CueFired.error_ms
    band_true_ms: list[float] = field(default_factory=list)  # motor record, exact clock
    naive_ms: list[float] = field(default_factory=list)  # motor record, exact clock
    naive_est_ms: list[float] = field(default_factory=list)  # motor record, sync estimate
    sync_err_ms: list[float] = field(default_factory=list)  # estimate - true offset
    sync_uncertainty_ms: list[float] = field(default_factory=list)
    trial_sync_err_ms: list[float] = field(default_factory=list)
    band_cues_expected: int = 0
    naive_cues_expected: int = 0
    timer_late_ms: list[float] = field(default_factory=list)  # bare asyncio timer lateness
    crosscheck_max_us: int = 0  # |event fired_us - motor at_us|, should be 0
    connect_s: float = 0.0  # scan, connect, pair, HELLO, first sync (band A) and band B
    seconds: float = 0.0
    host_timed: list[dict[str, Any]] = field(default_factory=list)  # one row per watch kind


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of the absolute values."""
    absolute = [abs(v) for v in values]
    return percentile(absolute, 50), percentile(absolute, 99), max(absolute, default=math.nan)


async def run_ours(
    band: Band,
    virtual: VirtualBand,
    plan: Plan,
    true_offset_us: int,
    results: Results,
    started: asyncio.Future[float],
) -> None:
    """One session on band A; ``started`` gets its start (host clock) once START is accepted."""
    timeline = fp.build_timeline(plan.to_wire())
    played_before = len(virtual.motor.played)
    session = Session(band, plan)
    subscription = session.events()

    async def watch() -> None:
        async for numbered in subscription:
            if isinstance(numbered.event, SessionStarted) and not started.done():
                started.set_result(numbered.event.start)

    watcher = asyncio.create_task(watch())
    await session.run()
    await watcher
    results.band_cues_expected += len(timeline.cues)

    fired: dict[int, CueFired] = {}
    async for numbered in session.events():
        if isinstance(numbered.event, CueFired) and numbered.event.cue_id >= 0:
            fired[numbered.event.cue_id] = numbered.event
    played = {a.cue_id: a for a in virtual.motor.played[played_before:] if a.cue_id >= 0}
    for cue in timeline.cues:
        event = fired.get(cue.cue_id)
        action = played.get(cue.cue_id)
        if event is None or action is None:
            continue  # shows as missing in the sample counts
        results.band_reported_ms.append(event.error_ms)
        true_fired = (action.at_us - true_offset_us) / 1_000_000
        results.band_true_ms.append((true_fired - event.planned) * 1000)
        # Cross-check: the reported fire time is the motor's, through the host's estimate.
        reported_us = round(event.fired * 1_000_000) + band.offset_us
        results.crosscheck_max_us = max(results.crosscheck_max_us, abs(reported_us - action.at_us))


async def run_naive(
    client: BleakClient,
    virtual: VirtualBand,
    plan: Plan,
    start: float,
    clock: LoopClock,
    true_offset_us: int,
    estimate_us: int,
    results: Results,
) -> None:
    """The same cue times on band B, each a host write of "vibrate now" at the boundary."""
    timeline = fp.build_timeline(plan.to_wire())
    played_before = len(virtual.motor.played)
    planned = [start + cue.offset_us / 1_000_000 for cue in timeline.cues]
    for at in planned:
        await clock.sleep_until(at)
        await client.write_gatt_char(gatt.ALERT_LEVEL_UUID, _ALERT_LEVEL_HIGH, response=False)
    await clock.sleep(_SETTLE_S)
    results.naive_cues_expected += len(planned)
    received = [a for a in virtual.motor.played[played_before:] if a.cue_id < 0]
    for at, action in zip(planned, received, strict=False):
        results.naive_ms.append(((action.at_us - true_offset_us) / 1_000_000 - at) * 1000)
        results.naive_est_ms.append(((action.at_us - estimate_us) / 1_000_000 - at) * 1000)


async def probe_timer(clock: LoopClock, start: float, until: float, results: Results) -> None:
    """How late a bare asyncio timer wakes on this machine: the floor under both designs.

    The virtual band fires from an asyncio timer, as the naive host writes from
    one; probes sit between their boundaries (an eighth of a second off the grid).
    """
    at = start + _PROBE_PHASE_S
    while at < until:
        await clock.sleep_until(at)
        results.timer_late_ms.append((clock.now() - at) * 1000)
        at += _PROBE_PERIOD_S


async def run_trial(args: argparse.Namespace, trial: int, results: Results) -> None:
    """One workout on a fresh link (its own jitter seed) and a fresh connection (its own sync)."""
    plan = bench_plan(args.quick)
    low_ms, high_ms = args.jitter_ms
    clock = LoopClock()
    async with VirtualWorld(name=f"bench-host-{trial}") as world:
        world.link.set_delay(low_ms / 1000, high_ms / 1000, seed=args.seed + trial)
        ours_config = VirtualBandConfig(
            name="CueBandA", serial="BENCH-A", clock=clock, core=BandCore(args.core)
        )
        naive_config = VirtualBandConfig(name="CueBandB", serial="BENCH-B", clock=clock)
        ours_virtual = await world.add_band(ours_config)
        naive_virtual = await world.add_band(naive_config)
        true_offset_us = ours_config.clock_offset_us
        assert naive_config.clock_offset_us == true_offset_us
        async with Band.connect(ours_virtual.address, backend=world.backend, clock=clock) as band:
            device = await BleakScanner.find_device_by_address(
                naive_virtual.address, timeout=10.0, backend=world.backend.scanner
            )
            if device is None:
                raise RuntimeError(f"naive band {naive_virtual.address} not found")
            async with BleakClient(device, backend=world.backend.client) as client:
                started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                ours = asyncio.create_task(
                    run_ours(band, ours_virtual, plan, true_offset_us, results, started)
                )
                waiting: set[asyncio.Future[Any]] = {ours, started}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not started.done():
                    ours.result()  # raises why the session never started
                    raise RuntimeError("the session ended without starting")
                start = started.result()
                estimate = band.clock_estimate
                assert estimate is not None
                naive = asyncio.create_task(
                    run_naive(
                        client,
                        naive_virtual,
                        plan,
                        start + _NAIVE_SHIFT_S,
                        clock,
                        true_offset_us,
                        estimate.offset_us,
                        results,
                    )
                )
                tasks: list[asyncio.Future[Any]] = [ours, naive]
                if not args.virtual:
                    tasks.append(
                        asyncio.create_task(
                            probe_timer(clock, start, start + plan.total_s, results)
                        )
                    )
                await asyncio.gather(*tasks)
                record_sync(band, true_offset_us, results, trial=True)


def record_sync(band: Band, true_offset_us: int, results: Results, *, trial: bool) -> None:
    """The band's estimate now against the exact offset (band and host share one clock)."""
    estimate = band.clock_estimate
    assert estimate is not None
    error = (estimate.offset_us - true_offset_us) / 1000
    results.sync_err_ms.append(error)
    results.sync_uncertainty_ms.append(estimate.uncertainty_us / 1000)
    if trial:
        results.trial_sync_err_ms.append(error)


async def run_sync(args: argparse.Namespace, index: int, results: Results) -> None:
    """One independent sync: a fresh link and connection, connect sync plus refinement."""
    low_ms, high_ms = args.jitter_ms
    clock = LoopClock()
    async with VirtualWorld(name=f"bench-sync-{index}") as world:
        world.link.set_delay(low_ms / 1000, high_ms / 1000, seed=args.seed + 1000 + index)
        config = VirtualBandConfig(name="SyncBand", serial="BENCH-S", clock=clock)
        virtual = await world.add_band(config)
        async with Band.connect(virtual.address, backend=world.backend, clock=clock) as band:
            await clock.sleep(_REFINE_WAIT_S)  # the background refinement ends meanwhile
            record_sync(band, config.clock_offset_us, results, trial=False)


async def measure(args: argparse.Namespace) -> Results:
    began = time.perf_counter()
    results = Results()
    for trial in range(args.trials):
        await run_trial(args, trial, results)
    for index in range(args.syncs):
        await run_sync(args, index, results)
    # The bands people own fire no cue of their own: the same plan and jitter, timed by
    # this host (benchmarks/host_timed.py), so the table says what a band-timed band buys.
    from host_timed import measure_host_timed, row

    for kind in (BandKind.INFINITIME, BandKind.BANGLE):
        watch = await measure_host_timed(
            kind,
            bench_plan(args.quick),
            jitter_ms=(args.jitter_ms[0], args.jitter_ms[1]),
            trials=args.trials,
            seed=args.seed,
        )
        results.host_timed.append(row(watch))
    results.seconds = time.perf_counter() - began
    return results


async def timer_floor(seconds: float, results: Results) -> None:
    """How late a bare asyncio timer wakes on this machine, in real time."""
    clock = LoopClock()
    at = clock.now()
    end = at + seconds
    while at < end:
        at += _PROBE_PERIOD_S / 5
        await clock.sleep_until(at)
        results.timer_late_ms.append((clock.now() - at) * 1000)


def run(args: argparse.Namespace) -> Results:
    """The trials in virtual time (or real time with ``--real-time``), the floor in real time."""
    if args.virtual:
        loop = looptime.new_event_loop()
        try:
            results = loop.run_until_complete(measure(args))
        finally:
            loop.close()
        asyncio.run(timer_floor(1.0 if args.quick else 3.0, results))
        return results
    return asyncio.run(measure(args))


# -- reporting -----------------------------------------------------------------------------


def _row(label: str, values: list[float], expected: int | None, note: str) -> str:
    p50, p99, worst = summary(values)
    count = f"{len(values)}" if expected is None else f"{len(values)}/{expected}"
    return f"{label:<22}{count:>8}{p50:>9.3f}{p99:>9.3f}{worst:>9.3f}  {note}"


def report(args: argparse.Namespace, results: Results) -> dict[str, Any]:
    low_ms, high_ms = args.jitter_ms
    band_p50, band_p99, band_max = summary(results.band_reported_ms)
    true_p50, true_p99, true_max = summary(results.band_true_ms)
    naive_p50, naive_p99, naive_max = summary(results.naive_ms)
    est_p99 = summary(results.naive_est_ms)[1]
    sync_p50, sync_p99, sync_max = summary(results.sync_err_ms)
    print(
        f"cue error |fired - planned| in host clock, ms; link latency {low_ms:g}-{high_ms:g} ms "
        f"per packet and direction; {args.trials} trial(s) of a "
        f"{bench_plan(args.quick).total_s:g} s plan, each on its own link seed and connection"
    )
    print(f"{'':<22}{'n':>8}{'p50':>9}{'p99':>9}{'max':>9}")
    print(
        _row(
            "ours (band-timed)",
            results.band_reported_ms,
            results.band_cues_expected,
            "CueFired.error_ms: band report via sync estimate vs host mirror",
        )
    )
    print(
        _row(
            "ours, true",
            results.band_true_ms,
            results.band_cues_expected,
            "motor record via exact clock vs host mirror",
        )
    )
    print(
        _row(
            "naive (host-timed)",
            results.naive_ms,
            results.naive_cues_expected,
            "Immediate Alert write received by the band vs boundary",
        )
    )
    print(
        _row(
            "naive, via estimate",
            results.naive_est_ms,
            results.naive_cues_expected,
            "the same received times through the host's sync estimate",
        )
    )
    print(
        _row(
            "asyncio timer floor",
            results.timer_late_ms,
            None,
            "how late a bare asyncio sleep wakes here (probes between cues)",
        )
    )
    print(
        _row(
            "time sync error",
            results.sync_err_ms,
            None,
            "|estimate - true offset| of each independent sync (8 + 56 exchanges)",
        )
    )
    for watch in results.host_timed:
        print(
            f"{watch['kind'] + ', host-timed':<22}{watch['cues']:>8}"
            f"{watch['delivered_p50_ms']:>9.3f}{watch['delivered_p99_ms']:>9.3f}{'':>9}  "
            f"motor start vs boundary (confirmed by the write: p99 "
            f"{watch['confirmed_p99_ms']:.3f}); {watch['missed']} missed"
        )
    trial_errors = ", ".join(f"{e:+.2f}" for e in results.trial_sync_err_ms)
    uncertainty = statistics.median(results.sync_uncertainty_ms)
    pairs = list(zip(results.sync_err_ms, results.sync_uncertainty_ms, strict=True))
    coverage = sum(abs(e) <= u for e, u in pairs) / len(pairs)
    median_err = statistics.median(abs(e) for e in results.sync_err_ms)
    bound_ratio = uncertainty / median_err if median_err > 0 else math.inf
    # A host that knew each leg takes at least LOW ms could shrink the bound by LOW each side.
    floor_pairs = [(e, u - low_ms) for e, u in pairs]
    coverage_floor = sum(abs(e) <= u for e, u in floor_pairs) / len(pairs)
    ratio_floor = statistics.median(u for _e, u in floor_pairs) / median_err if median_err else 0
    # In virtual time the band's report through the same estimate is exact: no ratio.
    ratio = naive_p99 / band_p99 if band_p99 > 0.001 else math.inf
    ratio_true = naive_p99 / true_p99 if true_p99 > 0 else math.inf
    print(f"sync error per trial (ms): {trial_errors}")
    print(
        f"{len(pairs)} independent syncs: median stated uncertainty {uncertainty:.2f} ms, "
        f"median |error| {median_err:.3f} ms (ratio {bound_ratio:.1f}); the true offset inside "
        f"the bound in {coverage:.1%}. Knowing the link's {low_ms:g} ms floor each way: ratio "
        f"{ratio_floor:.1f}, inside in {coverage_floor:.1%}"
    )
    mode = "virtual time" if args.virtual else "real time"
    print(
        f"trials in {mode}; asyncio timer floor p99 {summary(results.timer_late_ms)[1]:.3f} ms "
        f"(real time, this machine); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"p99 ratio naive/ours: {ratio:.1f} (reported), {ratio_true:.1f} (true)")
    print(
        f"band report vs motor record cross-check: max {results.crosscheck_max_us} us apart; "
        f"{results.seconds:.1f} s"
    )
    return {
        "bench": "cues",
        "jitter_ms": [low_ms, high_ms],
        "band_p50_ms": round(band_p50, 4),
        "band_p99_ms": round(band_p99, 4),
        "band_max_ms": round(band_max, 4),
        "naive_p50_ms": round(naive_p50, 4),
        "naive_p99_ms": round(naive_p99, 4),
        "naive_max_ms": round(naive_max, 4),
        "p99_ratio": round(ratio, 2) if math.isfinite(ratio) else None,
        "band_true_p50_ms": round(true_p50, 4),
        "band_true_p99_ms": round(true_p99, 4),
        "band_true_max_ms": round(true_max, 4),
        "p99_ratio_true": round(ratio_true, 2) if math.isfinite(ratio_true) else None,
        "naive_est_p99_ms": round(est_p99, 4),
        "timer_floor_p99_ms": round(summary(results.timer_late_ms)[1], 4),
        "sync_err_p50_ms": round(sync_p50, 4),
        "sync_err_p99_ms": round(sync_p99, 4),
        "sync_err_max_ms": round(sync_max, 4),
        "syncs": len(results.sync_err_ms),
        "syncs_n": len(results.sync_err_ms),
        "cues_n": len(results.band_true_ms),
        "sync_bound_coverage": round(coverage, 4),
        "sync_bound_ratio": round(bound_ratio, 2),
        "sync_bound_coverage_known_floor": round(coverage_floor, 4),
        "sync_bound_ratio_known_floor": round(ratio_floor, 2),
        "sync_uncertainty_p50_ms": round(uncertainty, 4),
        "virtual_time": args.virtual,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "n_band": len(results.band_reported_ms),
        "n_naive": len(results.naive_ms),
        "n_expected": results.band_cues_expected,
        "trials": args.trials,
        "seconds": round(results.seconds, 1),
        **{f"{w['kind']}_p99_ms": w["delivered_p99_ms"] for w in results.host_timed},
        **{f"{w['kind']}_p50_ms": w["delivered_p50_ms"] for w in results.host_timed},
        **{f"{w['kind']}_confirmed_p99_ms": w["confirmed_p99_ms"] for w in results.host_timed},
        **{f"{w['kind']}_missed": w["missed"] for w in results.host_timed},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short trial (under 10 s)")
    parser.add_argument(
        "--jitter-ms",
        nargs=2,
        type=float,
        default=[10.0, 40.0],
        metavar=("LOW", "HIGH"),
        help="per-packet link latency, uniform between LOW and HIGH ms (default 10 40)",
    )
    parser.add_argument("--trials", type=int, help="sessions to run (default 34, quick 1)")
    parser.add_argument(
        "--syncs", type=int, help="extra independent syncs, each its own link (default 0, quick 2)"
    )
    parser.add_argument("--seed", type=int, default=0x5EED, help="first link latency seed")
    parser.add_argument(
        "--real-time",
        action="store_true",
        help="run the trials in real time (the timer floor then adds to every figure)",
    )
    parser.add_argument(
        "--core",
        choices=[core.value for core in BandCore],
        default=BandCore.REFERENCE.value,
        help="band protocol implementation of 'ours' (the firmware on a watch or board)",
    )
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = 1 if args.quick else 34  # 9 cues each: 306
    if args.syncs is None:
        args.syncs = 2 if args.quick else 0  # each trial is one independent sync too
    args.virtual = not args.real_time
    low, high = args.jitter_ms
    if not 0 <= low <= high:
        parser.error("--jitter-ms needs 0 <= LOW <= HIGH")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    print(json.dumps(report(args, results)))


if __name__ == "__main__":
    main()
