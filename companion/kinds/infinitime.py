"""InfiniTime (PineTime): host-timed cues on Immediate Alert and New Alert, heart rate.

What the firmware does (see :mod:`companion.sim.infinitime`, its emulator):
each Immediate Alert write is one ~35 ms buzz whatever the level, a New Alert
shows text and buzzes once, heart rate is ``00 bpm`` sent only when it
changes, and the watch takes one connection at a time. No pairing is needed.

Cues: every pulse of a pattern is one write; the last pulse of a cue that has
text is a New Alert, so the exercise stays on the screen. "Now / next /
progress" goes to the Music app (track = the exercise, artist = what comes
next, album = the round, position in seconds; status playing, so the watch
counts the seconds itself) and the Navigation app (the exercise, the time left,
the workout's percent), best effort: both show only while the wearer has them
open, and a failed write is logged, never raised. Heart rate: a steady
value is held (re-reported each second) up to ``hold_s``, then nothing; bpm 0
is "no reading" and never reported as a heart rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from typing import Final, Unpack

import firmware_protocol as fp
from firmware_protocol import gatt

from ..ble.link import GattLink
from ..clock import reached
from ..errors import CompanionError, IncompatibleBandError
from ..events import Battery, HeartRate
from . import gatt as kind_gatt
from .base import (
    BandKind,
    Capabilities,
    CueTiming,
    HostCue,
    KindBand,
    LinkOptions,
    StepView,
    TimeSync,
)
from .patterns import PulsePlayer

__all__ = ["CAPABILITIES", "InfiniTimeBand", "current_time_bytes", "cut_utf8", "not_advertising"]

logger = logging.getLogger(__name__)

_ALERT_HIGH: Final = b"\x02"
_SIMPLE_ALERT: Final = 0x00
_TEXT_BYTES: Final = 99  # the watch keeps 100 bytes, terminator included
_MUSIC_TEXT_BYTES: Final = 40  # MusicService::MaxStringSize; longer ends in "..." mid-character
_ATT_WRITE_OVERHEAD: Final = 3
# Icon names the Navigation screen knows (screens/Navigation.cpp iconMap; others show "flag").
_FLAG_FIRST: Final = "depart"
_FLAG_LAST: Final = "arrive"
_FLAG_OF_KIND: Final = {fp.StepKind.EXERCISE: "continue"}
_FLAG_OTHER: Final = "flag"
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


def cut_utf8(text: str, limit: int, *, ellipsis: str = "") -> bytes:
    """``text`` as at most ``limit`` bytes of UTF-8, cut between characters, never inside one.

    The watch cuts bytes where they fall (a multi-byte character cut in two shows as
    garbage), so the host cuts first; ``ellipsis`` ends a text that was cut.
    """
    data = text.encode()
    if len(data) <= limit:
        return data
    tail = ellipsis.encode()
    kept = data[: max(limit - len(tail), 0)].decode("utf-8", "ignore").encode()
    return kept + tail if len(kept) + len(tail) <= limit else kept


def _u32(value: float) -> bytes:
    return max(0, min(int(value), 0xFFFF_FFFF)).to_bytes(4, "big")


def _clock_text(seconds: float) -> str:
    whole = math.ceil(seconds - 1e-6) if seconds > 0 else 0
    return f"{whole // 60}:{whole % 60:02d}"


def _flag(step: StepView) -> str:
    if step.next_name is None:
        return _FLAG_LAST
    if step.first:
        return _FLAG_FIRST
    return _FLAG_OF_KIND.get(step.kind, _FLAG_OTHER)


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
        self._player = PulsePlayer(self.clock, self.spawn)
        self._last: tuple[int, float] | None = None  # (bpm, when the watch last said it)
        self._emitted_at = -float("inf")
        self._step: tuple[StepView, float] | None = None  # the step shown, and when
        self._written: dict[str, bytes] = {}  # what the watch holds, to skip repeats

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
        self._written = {}  # a reconnect may follow a reboot: write it all again
        if first:
            firmware = (await link.read(gatt.FIRMWARE_REVISION_UUID)).decode("utf-8", "replace")
            self.info = dataclasses.replace(
                self.info, manufacturer="PINE64", model="PineTime", firmware=firmware
            )
            self.spawn(self._hold_heart_rate())
        elif self._step is not None:
            self.spawn(self._show_again())

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
                payload = cut_utf8(f"{text.title}\0{text.body}", _TEXT_BYTES)
                await link.write(kind_gatt.NEW_ALERT_UUID, bytes([_SIMPLE_ALERT, 1, 0]) + payload)
            else:
                await link.write(gatt.ALERT_LEVEL_UUID, _ALERT_HIGH, response=False)

        await self._player.play(cue.pattern, pulse)

    # -- now / next / progress ---------------------------------------------------------------

    async def show_step(self, step: StepView) -> None:
        """Put the step on the Music and Navigation apps; a failed write is only logged."""
        self._step = (step, self.clock.now())
        await self._write_step(step)

    async def _show_again(self) -> None:
        if self._step is None:
            return
        step, at = self._step
        if step.playing:
            gone = self.clock.now() - at
            step = dataclasses.replace(
                step,
                elapsed_s=min(step.elapsed_s + gone, step.duration_s),
                workout_elapsed_s=min(step.workout_elapsed_s + gone, step.workout_total_s),
            )
        await self.show_step(step)

    async def _write_step(self, step: StepView) -> None:
        link = self._link
        if link is None or not self.link_up:
            return
        following = f"next: {step.next_name}" if step.next_name is not None else "last step"
        nav_bytes = max(link.mtu - _ATT_WRITE_OVERHEAD, _MUSIC_TEXT_BYTES)
        progress = round(step.progress * 100)

        def music(text: str) -> bytes:
            return cut_utf8(text, _MUSIC_TEXT_BYTES, ellipsis="...")

        writes = [
            (kind_gatt.MUSIC_TRACK_UUID, music(step.name)),
            (kind_gatt.MUSIC_ARTIST_UUID, music(following)),
            (kind_gatt.MUSIC_ALBUM_UUID, music(f"round {step.round}/{step.rounds}")),
            # The watch counts the position on at this speed (hundredths) while playing.
            (kind_gatt.MUSIC_PLAYBACK_SPEED_UUID, _u32(round(step.rate * 100))),
            # Before the position: a position past the length reads as the track's end.
            (kind_gatt.MUSIC_LENGTH_UUID, _u32(step.duration_s)),
            (kind_gatt.MUSIC_POSITION_UUID, _u32(step.elapsed_s)),
            (kind_gatt.MUSIC_STATUS_UUID, b"\x01" if step.playing else b"\x00"),
            (kind_gatt.NAVIGATION_FLAG_UUID, _flag(step).encode()),
            (kind_gatt.NAVIGATION_NARRATIVE_UUID, cut_utf8(step.name, nav_bytes, ellipsis="...")),
            (kind_gatt.NAVIGATION_DISTANCE_UUID, _clock_text(step.remaining_s).encode()),
            (kind_gatt.NAVIGATION_PROGRESS_UUID, bytes([min(max(progress, 0), 100)])),
        ]
        for uuid, data in writes:
            # The position restarts the watch's count: always write it, even if unchanged.
            if uuid != kind_gatt.MUSIC_POSITION_UUID and self._written.get(uuid) == data:
                continue
            try:
                if uuid == kind_gatt.MUSIC_LENGTH_UUID:
                    await link.write_every(uuid, data)  # declared twice: written by handle
                else:
                    await link.write(uuid, data)
            except CompanionError as exc:
                self._written.pop(uuid, None)
                logger.debug("InfiniTime %s: %s not shown: %s", self.target, uuid, exc)
                if not self.link_up:
                    return
                continue
            self._written[uuid] = data

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
            if not reached(now, due):
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
