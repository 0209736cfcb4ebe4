"""Link speed: our bleak backend against Bumble's own GATT client on the same virtual link.

Run from the repository root::

    python benchmarks/link.py              # about 20 s
    python benchmarks/link.py --quick      # under 10 s
    python benchmarks/link.py --no-remote  # skip the cross-process row

Two virtual bands share one in-process link (``VirtualWorld``) and the host's
one central, and stay connected to it the whole run:

- **ours**: plain ``BleakClient`` code over :mod:`companion.sim`'s bleak
  backend (``world.backend.client``) talks to band A;
- **bumble**: Bumble's own GATT client (``bumble.device.Peer``: ``subscribe``,
  ``write_value``) on the same central talks to band B.

Both bands run without the pairing requirement, so neither client pays for
encryption setup and the figures are the GATT paths alone.

**Round trip**: the host writes a TIME_SYNC_REQUEST frame (pre-encoded) to the
control characteristic with response, as ``Band`` does, and waits for the
band's TIME_SYNC_RESPONSE notification on the events characteristic (matched by
sequence number, so the band's own heart-rate events never end a round trip).
It includes the band's side (its protocol driver and its notification), which
is the same code for both clients. The two clients take turns in batches, so
the machine's noise lands on both alike. The bands' heart-rate events are left
unacknowledged, so their retransmissions are background traffic both see.

**Notifications per second**: band A, then band B, notifies 244-byte values
(MTU 247) on the heart-rate characteristic as fast as its host stack takes
them; the rate is counted where the client's callback sees them, from the
first to the last. The bands take turns here too.

**remote** (extra keys): the same round trip through ``remote_backend`` to a
band that a ``python -m companion.sim`` subprocess serves over 127.0.0.1
(pairing on, as the server's bands require it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bleak import BleakClient
from bumble.core import UUID
from bumble.device import Peer
from bumble.gatt import Characteristic

import firmware_protocol as fp
from companion.sim import VirtualBand, VirtualBandConfig, VirtualWorld
from companion.sim.remote import remote_backend
from firmware_protocol import gatt

_MTU: Final = 247
_BURST_PAYLOAD: Final = bytes(range(244))  # one full notification at MTU 247
_FIRST_SEQ: Final = 1
_READY_TIMEOUT_S: Final = 10.0
_REPLY_TIMEOUT_S: Final = 5.0


# -- a round-trip driver that both clients share --------------------------------------------


class _Replies:
    """Event-characteristic notifications: completes the round trip whose reply arrives."""

    def __init__(self) -> None:
        self._reassembler = fp.Reassembler()
        self._waiting: tuple[int, asyncio.Future[None]] | None = None
        self.burst: list[int] = []  # perf_counter_ns of each burst notification seen
        self._burst_wanted = 0
        self._burst_done: asyncio.Future[None] | None = None

    def on_event(self, data: bytes | bytearray) -> None:
        frame = self._reassembler.feed(bytes(data))
        if frame is None or self._waiting is None:
            return
        seq, future = self._waiting
        if fp.decode_frame(frame).seq == seq and not future.done():
            future.set_result(None)

    def on_burst(self, data: bytes | bytearray) -> None:
        if len(data) == len(_BURST_PAYLOAD):
            self.burst.append(time.perf_counter_ns())
            done = self._burst_done
            if done is not None and len(self.burst) >= self._burst_wanted and not done.done():
                done.set_result(None)

    def expect_burst(self, count: int) -> asyncio.Future[None]:
        self.burst.clear()
        self._burst_wanted = count
        self._burst_done = asyncio.get_running_loop().create_future()
        return self._burst_done

    def expect(self, seq: int) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._waiting = (seq, future)
        return future


@dataclass
class Side:
    """One client under test: how it writes, what it has seen, what it measured."""

    label: str
    write: Callable[[bytes], Awaitable[None]]
    replies: _Replies
    seq: int = _FIRST_SEQ
    rtt_ms: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def next_frame(self, message: fp.Message) -> tuple[int, bytes]:
        """The next sequence number, and the message as the one fragment a write carries."""
        self.seq = (self.seq + 1) & 0xFFFF or 1
        [piece] = fp.fragment(fp.encode_frame(message, self.seq), _MTU - 3)
        return self.seq, piece


async def hello(side: Side) -> None:
    """Open the conversation as a host does, so the band answers time syncs."""
    seq, frame = side.next_frame(fp.Hello(fp.PROTOCOL_VERSION, 1))
    reply = side.replies.expect(seq)
    await side.write(frame)
    await asyncio.wait_for(reply, _REPLY_TIMEOUT_S)


async def round_trips(side: Side, count: int) -> None:
    """``count`` write → notification round trips, each timed on its own."""
    frames = [side.next_frame(fp.TimeSyncRequest(1_000_000 + i)) for i in range(count)]
    for seq, frame in frames:
        start = time.perf_counter_ns()
        reply = side.replies.expect(seq)
        await side.write(frame)
        await asyncio.wait_for(reply, _REPLY_TIMEOUT_S)
        side.rtt_ms.append((time.perf_counter_ns() - start) / 1e6)


async def burst(side: Side, band: VirtualBand, count: int) -> None:
    """The band notifies ``count`` full-size values; the rate the client's callback sees."""
    connection = next(iter(band.device.connections.values()))
    characteristic = _characteristic(band, gatt.HEART_RATE_MEASUREMENT_UUID)
    arrived = side.replies.expect_burst(count)
    for _ in range(count):
        await band.device.notify_subscriber(connection, characteristic, _BURST_PAYLOAD)
    seen = side.replies.burst
    try:
        await asyncio.wait_for(arrived, _REPLY_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(f"{side.label}: {len(seen)} of {count} notifications arrived") from None
    side.rates.append((len(seen) - 1) / ((seen[-1] - seen[0]) / 1e9))


def _characteristic(band: VirtualBand, uuid: str) -> Characteristic[bytes]:
    wanted = UUID(uuid)
    for attribute in band.device.gatt_server.attributes:
        if isinstance(attribute, Characteristic) and attribute.uuid == wanted:
            return attribute
    raise LookupError(f"band has no characteristic {uuid}")


# -- the two clients ---------------------------------------------------------------------------


async def open_ours(client: BleakClient) -> Side:
    """Plain bleak over our backend: subscribe to events and the burst characteristic."""
    replies = _Replies()

    async def write(frame: bytes) -> None:
        await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, frame, response=True)

    await client.start_notify(gatt.EVENTS_CHAR_UUID, lambda _c, d: replies.on_event(d))
    await client.start_notify(gatt.HEART_RATE_MEASUREMENT_UUID, lambda _c, d: replies.on_burst(d))
    return Side("ours", write, replies)


async def open_bumble(world: VirtualWorld, band: VirtualBand) -> tuple[Side, Any]:
    """Bumble's own GATT client on the same central: Peer.subscribe and Peer.write_value."""
    central = await world.central()
    connection = await central.connect(band.device.random_address, timeout=5.0)
    peer = Peer(connection)
    await peer.request_mtu(_MTU)
    await peer.discover_services()
    await peer.discover_characteristics()
    [control] = peer.get_characteristics_by_uuid(UUID(gatt.CONTROL_CHAR_UUID))
    [events] = peer.get_characteristics_by_uuid(UUID(gatt.EVENTS_CHAR_UUID))
    [heart] = peer.get_characteristics_by_uuid(UUID(gatt.HEART_RATE_MEASUREMENT_UUID))
    replies = _Replies()

    async def write(frame: bytes) -> None:
        await peer.write_value(control, frame, with_response=True)

    await peer.subscribe(events, replies.on_event)
    await peer.subscribe(heart, replies.on_burst)
    return Side("bumble", write, replies), connection


# -- the cross-process row --------------------------------------------------------------------


async def measure_remote(batches: int, batch: int) -> list[float]:
    """Round trips through remote_backend to a band another process serves."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion.sim", "--port", "0", "--auto-confirm",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), _READY_TIMEOUT_S)).decode()
        ready = re.search(r"(sim://\S+) \(\S+ ([0-9A-F:]{17})\)", line)
        if ready is None:
            raise RuntimeError(f"unexpected ready line from the band server: {line!r}")
        backend = remote_backend(ready[1])
        async with BleakClient(ready[2], backend=backend.client) as client:
            await client.pair()
            side = await open_ours(client)
            await hello(side)
            await round_trips(side, batch)  # warm-up
            side.rtt_ms.clear()
            for _ in range(batches):
                await round_trips(side, batch)
        return side.rtt_ms
    finally:
        server.terminate()
        await server.wait()


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Results:
    ours: Side
    bumble: Side
    remote_rtt_ms: list[float] | None


async def measure(args: argparse.Namespace) -> Results:
    async with VirtualWorld() as world:
        band_a = await world.add_band(
            VirtualBandConfig(name="Ours", serial="BENCH-A", require_pairing=False)
        )
        band_b = await world.add_band(
            VirtualBandConfig(name="Bumble", serial="BENCH-B", require_pairing=False)
        )
        async with BleakClient(band_a.address, backend=world.backend.client) as client:
            ours = await open_ours(client)
            bumble, connection = await open_bumble(world, band_b)
            try:
                for side in (ours, bumble):
                    await hello(side)
                    await round_trips(side, args.batch)  # warm-up, not counted
                    side.rtt_ms.clear()
                for _ in range(args.batches):
                    await round_trips(ours, args.batch)
                    await round_trips(bumble, args.batch)
                for _ in range(args.bursts):
                    await burst(ours, band_a, args.burst)
                    await burst(bumble, band_b, args.burst)
            finally:
                await connection.disconnect()
    remote = None if args.no_remote else await measure_remote(args.batches, args.batch)
    return Results(ours, bumble, remote)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def report(results: Results) -> dict[str, Any]:
    ours, bumble = results.ours, results.bumble
    print("link: control write (with response) -> event notification, virtual link, real time")
    print(f"{'client':<34}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'notify/s':>11}")
    rows: list[tuple[str, list[float], float | None]] = [
        ("ours (BleakClient + sim backend)", ours.rtt_ms, statistics.median(ours.rates)),
        ("bumble (Peer, same link)", bumble.rtt_ms, statistics.median(bumble.rates)),
    ]
    if results.remote_rtt_ms is not None:
        rows.append(("ours, band in another process", results.remote_rtt_ms, None))
    for label, rtts, rate in rows:
        rate_text = f"{rate:>11,.0f}" if rate is not None else f"{'-':>11}"
        print(
            f"{label:<34}{len(rtts):>7}{percentile(rtts, 50):>9.3f}{percentile(rtts, 99):>9.3f}"
            f"{max(rtts):>9.3f}{rate_text}"
        )
    ratio = percentile(ours.rtt_ms, 50) / percentile(bumble.rtt_ms, 50)
    print(f"overhead ratio (p50 ours / p50 bumble): {ratio:.3f}")
    print(
        f"notification rate: median of {len(ours.rates)} bursts each of "
        f"{len(_BURST_PAYLOAD)}-byte values; ours {[round(r) for r in ours.rates]}, "
        f"bumble {[round(r) for r in bumble.rates]}"
    )
    result: dict[str, Any] = {
        "bench": "link",
        "rtt_p50_ms": round(percentile(ours.rtt_ms, 50), 4),
        "rtt_p99_ms": round(percentile(ours.rtt_ms, 99), 4),
        "notify_per_s": round(statistics.median(ours.rates)),
        "bumble_rtt_p50_ms": round(percentile(bumble.rtt_ms, 50), 4),
        "bumble_rtt_p99_ms": round(percentile(bumble.rtt_ms, 99), 4),
        "bumble_notify_per_s": round(statistics.median(bumble.rates)),
        "overhead_ratio": round(ratio, 3),
        "round_trips": len(ours.rtt_ms),
    }
    if results.remote_rtt_ms is not None:
        result["remote_rtt_p50_ms"] = round(percentile(results.remote_rtt_ms, 50), 4)
        result["remote_rtt_p99_ms"] = round(percentile(results.remote_rtt_ms, 99), 4)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="link speed against Bumble's own GATT client")
    parser.add_argument("--quick", action="store_true", help="fewer round trips (under 10 s)")
    parser.add_argument("--no-remote", action="store_true", help="skip the cross-process row")
    args = parser.parse_args(argv)
    args.batches = 4 if args.quick else 20
    args.batch = 250
    args.bursts = 3 if args.quick else 7
    args.burst = 2_000 if args.quick else 5_000
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, end with the JSON line."""
    args = parse_args(argv)
    started = time.perf_counter()
    results = asyncio.run(measure(args))
    result = report(results)
    print(f"took {time.perf_counter() - started:.1f} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
