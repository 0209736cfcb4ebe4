"""Both protocol ends wired through a seeded, misbehaving link (the h11 helpers idea).

The link drops, duplicates, delays (and so reorders) fragments, and goes down
and up; time is virtual, so hundreds of runs take a second or two.
"""

from __future__ import annotations

import contextlib
import heapq
import random
from dataclasses import dataclass, field

import firmware_protocol as fp


@dataclass(order=True)
class _Packet:
    at: int
    order: int
    to_band: bool = field(compare=False)
    data: bytes = field(compare=False)


def _frames(fragments: list[bytes]) -> list[list[bytes]]:
    """Group fragments by frame (a frame ends with the fragment whose "last" bit is set)."""
    frames: list[list[bytes]] = [[]]
    for piece in fragments:
        frames[-1].append(piece)
        if piece[0] & 0x40:
            frames.append([])
    return [frame for frame in frames if frame]


class LossyLink:
    """Carries fragments between a HostProtocol and a BandProtocol, badly."""

    def __init__(
        self,
        seed: int,
        *,
        drop: float = 0.1,
        duplicate: float = 0.05,
        max_delay_us: int = 40_000,
        mtu: int = 23,
        band: fp.BandProtocol | None = None,
        now: int = 0,
        first_seq: int = 1,
        hold_acks: bool = False,
    ) -> None:
        """``band`` (at the time ``now``, with a host ``first_seq`` of its own): a band
        another host used before this one. ``hold_acks``: the host acknowledges only
        what it has released."""
        self.rng = random.Random(seed)
        self.drop, self.duplicate, self.max_delay_us = drop, duplicate, max_delay_us
        self.host = fp.HostProtocol(
            retransmit_us=100_000, max_attempts=1000, first_seq=first_seq, hold_acks=hold_acks
        )
        self.band = band if band is not None else fp.BandProtocol(retransmit_us=120_000)
        self.now = now
        self.up = True
        self.mtu = mtu
        self._queue: list[_Packet] = []
        self._order = 0
        self.results: list[fp.CommandResult | fp.CommandFailed] = []
        self.events: list[fp.BandEvent] = []
        self.host.connection_made(mtu, now)
        self.band.connection_made(mtu, now)

    def _carry(self) -> None:
        for to_band, fragments in (
            (True, self.host.data_to_send()),
            (False, self.band.data_to_send()),
        ):
            for frame in _frames(fragments):
                # Frames are delayed independently (so they reorder), and duplicated whole;
                # single fragments are dropped (so the reassembler must recover).
                copies = 2 if self.rng.random() < self.duplicate else 1
                for _ in range(copies):
                    at = self.now + self.rng.randint(1, self.max_delay_us)
                    for piece in frame:
                        if not self.up or self.rng.random() < self.drop:
                            continue
                        self._order += 1
                        heapq.heappush(self._queue, _Packet(at, self._order, to_band, piece))

    def _collect(self) -> None:
        while (item := self.host.next_event()) is not None:
            if isinstance(item, fp.CommandResult | fp.CommandFailed):
                self.results.append(item)
            else:
                self.events.append(item)

    def set_up(self, up: bool) -> None:
        """Drop or restore the link on both ends (in-flight packets are lost)."""
        if up == self.up:
            return
        self.up = up
        if up:
            self.host.connection_made(self.mtu, self.now)
            self.band.connection_made(self.mtu, self.now)
        else:
            self._queue.clear()
            self.host.connection_lost()
            self.band.connection_lost()
        self._carry()

    def run_until(self, until_us: int) -> None:
        """Advance virtual time, delivering packets and ticking both ends."""
        while True:
            self._carry()
            candidates = [until_us]
            if self._queue:
                candidates.append(self._queue[0].at)
            for deadline in (self.host.next_deadline_us(), self.band.next_deadline_us()):
                if deadline is not None:
                    candidates.append(max(deadline, self.now))
            step = min(candidates)
            if step > until_us or (step == until_us and not self._due(until_us)):
                self.now = until_us
                self.host.tick(self.now)
                self.band.tick(self.now)
                self._carry()
                self._collect()
                return
            self.now = step
            while self._queue and self._queue[0].at <= self.now:
                packet = heapq.heappop(self._queue)
                if packet.to_band:
                    self.band.receive_data(packet.data, self.now)
                else:
                    # A lost fragment spoils its frame, which the band sends again.
                    with contextlib.suppress(fp.RemoteProtocolError):
                        self.host.receive_data(packet.data, self.now)
            self.host.tick(self.now)
            self.band.tick(self.now)
            self._collect()

    def _due(self, at: int) -> bool:
        return bool(self._queue and self._queue[0].at <= at)
