"""InfiniTime (PineTime): host-timed cues on Immediate Alert and New Alert, heart rate.

What the firmware does (see :mod:`companion.sim.infinitime`, its emulator):
each Immediate Alert write is one ~35 ms buzz whatever the level, a New Alert
shows text and buzzes once, heart rate is ``00 bpm`` sent only when it
changes, and the watch takes one connection at a time. No pairing is needed.

Cues: every pulse of a pattern is one write; the last pulse of a cue that has
text is a New Alert, so the exercise stays on the screen. Heart rate: a steady
value is held (re-reported each second) up to ``hold_s``, then nothing; bpm 0
is "no reading" and never reported as a heart rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Final, Unpack

import firmware_protocol as fp
from firmware_protocol import gatt

from ..ble.link import GattLink
from ..errors import IncompatibleBandError
from ..events import Battery, HeartRate
from . import gatt as kind_gatt
from .base import BandKind, Capabilities, CueTiming, HostCue, KindBand, LinkOptions, TimeSync
from .patterns import PulsePlayer

__all__ = ["CAPABILITIES", "InfiniTimeBand", "current_time_bytes", "not_advertising"]

logger = logging.getLogger(__name__)

_ALERT_HIGH: Final = b"\x02"
_SIMPLE_ALERT: Final = 0x00
_TEXT_BYTES: Final = 99  # the watch keeps 100 bytes, terminator included
_HOLD_S: Final = 60.0
_HOLD_PERIOD_S: Final = 1.0

CAPABILITIES: Final = Capabilities(
    kind=BandKind.INFINITIME,
    cue_timing=CueTiming.HOST,
    motor=True,
    cue_patterns=frozenset(fp.CueKind),  # as counts of equal pulses: no intensity, no length
    text=True,
    heart_rate=True,
    rr_intervals=False,
    contact=False,
    buttons=frozenset(),
    battery=True,
    time_sync=TimeSync.WALL_CLOCK,
    notes=(
        "no pairing needed",
        "one connection at a time: disconnect the phone's app first",
        "do not disturb (sleep mode or notifications off) silences every cue",
        "heart rate only while the heart-rate app is open or background measuring is on",
    ),
)


def not_advertising(target: str) -> str:
    """Why an InfiniTime is not found, and what to do: it holds one connection at a time."""
    return (
        f"InfiniTime {target!r} is not advertising. It holds one connection at a time: if a "
        "phone (Gadgetbridge, InfiniTimeCompanion, Amazfish, itd) is connected, disconnect it "
        "or switch its Bluetooth off, then try again; otherwise wake the watch and bring it closer."
    )


def current_time_bytes(now: dt.datetime) -> bytes:
    """Current Time (0x2A2B) as InfiniTime reads it: 10 bytes, year little-endian."""
    return bytes(
        [
            now.year & 0xFF,
            now.year >> 8,
            now.month,
            now.day,
            now.hour,
            now.minute,
            now.second,
            now.isoweekday(),
            round(now.microsecond / 1_000_000 * 256) & 0xFF,
            0x01,  # adjust reason: manual time update
        ]
    )


def _local_time_bytes(now: dt.datetime) -> bytes:
    offset = now.utcoffset() or dt.timedelta()
    quarters = round(offset.total_seconds() / 900)
    return quarters.to_bytes(1, signed=True) + b"\x00"


class InfiniTimeBand(KindBand):
    """A PineTime running InfiniTime, host-timed."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        target: str,
        *,
        hold_s: float = _HOLD_S,
        wall_clock: dt.datetime | None = None,
        **link: Unpack[LinkOptions],
    ) -> None:
        super().__init__(target, **link)
        self._hold_s = hold_s
        self._wall_clock = wall_clock
        self._player = PulsePlayer(self.clock)
        self._last: tuple[int, float] | None = None  # (bpm, when the watch last said it)
        self._emitted_at = -float("inf")

    def not_found_hint(self) -> str:
        """It holds one connection at a time: a connected phone hides it."""
        return not_advertising(self.target)

    async def on_link(self, link: GattLink, first: bool) -> None:
        needed = {
            "Immediate Alert": gatt.ALERT_LEVEL_UUID,
            "New Alert": kind_gatt.NEW_ALERT_UUID,
            "Current Time": kind_gatt.CURRENT_TIME_UUID,
            "Heart Rate": gatt.HEART_RATE_MEASUREMENT_UUID,
        }
        missing = [name for name, uuid in needed.items() if not link.has_characteristic(uuid)]
        if missing:
            raise IncompatibleBandError(
                f"{link.address} has no {', '.join(missing)}: it is not an InfiniTime watch "
                "(`companion scan` shows what it is; leave --kind out to find out)"
            )
        await self._write_time(link)
        await link.subscribe(gatt.HEART_RATE_MEASUREMENT_UUID, self._on_heart_rate)
        # Nothing is notified until the value changes: read where it stands now.
        self._on_heart_rate(await link.read(gatt.HEART_RATE_MEASUREMENT_UUID))
        if link.has_characteristic(gatt.BATTERY_LEVEL_UUID):
            await link.subscribe(gatt.BATTERY_LEVEL_UUID, self._on_battery)
            self._on_battery(await link.read(gatt.BATTERY_LEVEL_UUID))
        if first:
            firmware = (await link.read(gatt.FIRMWARE_REVISION_UUID)).decode("utf-8", "replace")
            self.info = dataclasses.replace(
                self.info, manufacturer="PINE64", model="PineTime", firmware=firmware
            )
            self.spawn(self._hold_heart_rate())

    async def _write_time(self, link: GattLink) -> None:
        now = self._wall_clock or dt.datetime.now().astimezone()
        await link.write(kind_gatt.CURRENT_TIME_UUID, current_time_bytes(now))
        await link.write(kind_gatt.LOCAL_TIME_UUID, _local_time_bytes(now))

    # -- cues -------------------------------------------------------------------------------

    async def play(self, cue: HostCue) -> None:
        link = self.require_link()
        last = len(cue.pattern.pulses) - 1
        text = cue.text

        async def pulse(index: int, _on_ms: int) -> None:
            if index == last and text is not None:
                payload = f"{text.title}\0{text.body}".encode()[:_TEXT_BYTES]
                await link.write(kind_gatt.NEW_ALERT_UUID, bytes([_SIMPLE_ALERT, 1, 0]) + payload)
            else:
                await link.write(gatt.ALERT_LEVEL_UUID, _ALERT_HIGH, response=False)

        await self._player.play(cue.pattern, pulse)

    # -- heart rate --------------------------------------------------------------------------

    def _on_heart_rate(self, data: bytes) -> None:
        if len(data) < 2:
            return
        bpm = data[1]
        now = self.clock.now()
        if bpm == 0:
            self._last = None  # "no reading": say nothing rather than a zero
            return
        self._last = (bpm, now)
        self._emitted_at = now
        self.emit(HeartRate(bpm, now))

    async def _hold_heart_rate(self) -> None:
        """The watch is silent while the value is steady: report it each second, for a while."""
        while True:
            last, now = self._last, self.clock.now()
            if last is None or not self.link_up:
                await self.clock.sleep(_HOLD_PERIOD_S)
                continue
            due = self._emitted_at + _HOLD_PERIOD_S
            if now < due:
                await self.clock.sleep_until(due)
                continue
            bpm, since = last
            if now - since > self._hold_s:
                self._last = None  # stale: publish none rather than an old value
                continue
            self._emitted_at = now
            self.emit(HeartRate(bpm, now))

    def _on_battery(self, data: bytes) -> None:
        if data:
            self.emit(Battery(data[0]))
