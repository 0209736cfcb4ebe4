"""Bangle.js with the stock apps: Gadgetbridge's conventions over the Nordic UART.

Everything goes through the Android Integration app that every Bangle.js has:
the host clears the console line (``" \\x03"``), sends ``\\x10``-prefixed
statements (no echo) in 20-byte writes, and reads JSON lines from the watch,
ignoring everything else (REPL echo, prompts, debug prints). Heart rate comes
from ``GB({t:"act",hrm:true,int:1})``: one ``{"t":"act","hrm":bpm}`` a second
(0 until the sensor has a reading, which is not a heart rate). Cues are
host-timed ``Bangle.buzz(ms, strength)`` pulses; a cue with text also shows it
with a ``notify`` (the messages app then buzzes its own pattern unless the
watch is in quiet mode). The time is set on connect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
from typing import Any, Final, Unpack

import firmware_protocol as fp

from ..ble.link import GattLink
from ..errors import CompanionError, IncompatibleBandError
from ..events import Battery, HeartRate
from . import gatt as kind_gatt
from .base import (
    BandKind,
    Capabilities,
    CueText,
    CueTiming,
    HostCue,
    KindBand,
    LinkOptions,
    TimeSync,
)
from .patterns import PulsePlayer

__all__ = ["CAPABILITIES", "BangleBand", "LineSplitter"]

logger = logging.getLogger(__name__)

_CHUNK_BYTES: Final = 20
_CLEAR_LINE: Final = b" \x03"
_ECHO_OFF: Final = "\x10"
_MAX_LINE: Final = 4096  # a console line longer than this is noise, not a message

CAPABILITIES: Final = Capabilities(
    kind=BandKind.BANGLE,
    cue_timing=CueTiming.HOST,
    motor=True,
    cue_patterns=frozenset(fp.CueKind),
    text=True,
    heart_rate=True,
    rr_intervals=False,
    contact=False,
    buttons=frozenset(),
    battery=True,
    time_sync=TimeSync.WALL_CLOCK,
    notes=(
        "needs the Android Integration app (installed with the default apps)",
        "a cue with text also buzzes the messages pattern unless the watch is in quiet mode",
    ),
)


class LineSplitter:
    """Console bytes in, JSON messages out: lines split across notifications are joined,
    and REPL echo, prompts and prints (anything not starting with ``{``) are dropped."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The complete JSON messages ``data`` finished."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > _MAX_LINE:
            self._buffer = b""
        messages = []
        for raw in lines:
            line = raw.strip(b"\r ").decode("utf-8", "replace")
            if not line.startswith("{"):
                continue
            try:
                value = json.loads(line)
            except ValueError:
                logger.debug("Bangle.js: not JSON: %r", line)
                continue
            if isinstance(value, dict):
                messages.append(value)
        return messages


def _js(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class BangleBand(KindBand):
    """A Bangle.js with the stock apps, host-timed."""

    capabilities = CAPABILITIES

    def __init__(
        self, target: str, *, wall_clock: dt.datetime | None = None, **link: Unpack[LinkOptions]
    ) -> None:
        super().__init__(target, **link)
        self._wall_clock = wall_clock
        self._lines = LineSplitter()
        self._player = PulsePlayer(self.clock, self.spawn)
        self._ids = itertools.count(1)
        self._console = asyncio.Lock()
        self.ignored = 0  # console lines that were not messages for us

    async def on_link(self, link: GattLink, first: bool) -> None:
        if not link.has_characteristic(kind_gatt.UART_RX_UUID):
            raise IncompatibleBandError(
                f"{link.address} has no Nordic UART service: it is not a Bangle.js"
            )
        self._lines = LineSplitter()
        await link.subscribe(kind_gatt.UART_TX_UUID, self._on_console)
        await link.write(kind_gatt.UART_RX_UUID, _CLEAR_LINE)
        now = self._wall_clock or dt.datetime.now().astimezone()
        offset = now.utcoffset() or dt.timedelta()
        hours = offset.total_seconds() / 3600
        await self.send(f"setTime({now.timestamp():.3f});E.setTimeZone({hours:g})")
        await self.gb({"t": "act", "hrm": True, "int": 1})

    # -- the console ------------------------------------------------------------------------

    async def send(self, statement: str) -> None:
        """Run ``statement`` on the watch without echo, in 20-byte writes.

        Only the last write asks for a response: ATT keeps the order, so its
        confirmation means the whole line arrived (one round trip, not one per
        chunk). One statement at a time, or two lines would interleave.
        """
        data = (_ECHO_OFF + statement + "\n").encode()
        chunks = [data[i : i + _CHUNK_BYTES] for i in range(0, len(data), _CHUNK_BYTES)]
        async with self._console:
            link = self.require_link()
            for index, chunk in enumerate(chunks):
                await link.write(kind_gatt.UART_RX_UUID, chunk, response=index == len(chunks) - 1)

    async def gb(self, message: dict[str, Any]) -> None:
        """A message for the Android Integration app."""
        await self.send(f"GB({_js(message)})")

    def _on_console(self, data: bytes) -> None:
        for message in self._lines.feed(data):
            self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        now = self.clock.now()
        match message.get("t"):
            case "act":
                bpm = message.get("hrm")
                if isinstance(bpm, int | float) and bpm > 0:
                    self.emit(HeartRate(round(bpm), now))
            case "status":
                battery = message.get("bat")
                if isinstance(battery, int | float):
                    self.emit(Battery(round(battery)))
            case other:
                logger.debug("Bangle.js said %s: ignored", other)

    # -- cues -------------------------------------------------------------------------------

    async def _show(self, text: CueText) -> None:
        message = {
            "t": "notify",
            "id": next(self._ids),
            "src": "companion",
            "title": text.title,
            "body": text.body,
        }
        try:
            await self.gb(message)
        except CompanionError as exc:
            logger.info("text %r not shown: %s", text.title, exc)

    async def play(self, cue: HostCue) -> None:
        strength = round(cue.pattern.intensity / 255, 2)
        text = cue.text

        async def pulse(index: int, on_ms: int) -> None:
            await self.send(f"Bangle.buzz({on_ms},{strength:g})")
            if index == 0 and text is not None:
                # The text follows the buzz: it is not part of the cue's delivery time.
                self.spawn(self._show(text))

        await self._player.play(cue.pattern, pulse)
