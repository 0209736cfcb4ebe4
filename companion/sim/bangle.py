"""A Bangle.js (Espruino) with the stock Android Integration app, over the Nordic UART.

What it does is what the firmware and BangleApps' ``apps/android`` do:

- Bytes written to the UART's RX characteristic go to the REPL, which echoes
  them back on TX unless the line starts with ``\\x10``; Ctrl-C (``\\x03``)
  clears the line. A line runs at ``\\n``.
- The statements the stock integration receives are understood:
  ``GB({...})`` (a message for the Android Integration app),
  ``Bangle.buzz(ms, strength)`` (the motor), ``setTime(unix_s)`` and
  ``E.setTimeZone(h)``. Anything else is logged and ignored, as is a ``GB``
  message of an unknown type (the app prints ``GB Unknown``).
- The watch answers with ``Bluetooth.println(JSON.stringify(msg))`` after an
  empty line, in notifications of at most 20 bytes, so a line can be split
  across notifications and interleaved with REPL output.
- ``{t:"act", hrm:true, int:1}`` powers the heart-rate monitor and sends
  ``{"t":"act","stp":…,"hrm":bpm,"rt":1}`` every ``int`` seconds (``hrm`` is the
  last bpm, 0 before the first reading); ``{t:"notify",…}`` shows a message and
  buzzes the messages app's pattern (".." by default: two short weak buzzes);
  two seconds after a host connects the app sends the battery status.
- The name (``Bangle.js xxxx``) is in the advertisement; the UART service UUID
  is in the scan response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from ..clock import Clock
from ..kinds import gatt as kind_gatt
from .controller import SimLink
from .peripheral import MotorPulse, MotorSource, Peripheral

__all__ = ["BangleConfig", "BangleJS", "BangleMessage"]

logger = logging.getLogger(__name__)

_ECHO_OFF: Final = "\x10"
_CTRL_C: Final = "\x03"
_TX_CHUNK: Final = 20
_MAX_BUZZ_MS: Final = 5000
_DEFAULT_BUZZ_MS: Final = 200
_STATUS_AFTER_CONNECT_S: Final = 2.0
_PATTERN_SHORT_MS: Final = 100
_PATTERN_LONG_MS: Final = 500
_PATTERN_GAP_S: Final = 0.1
_PATTERN_WEAK: Final = 0.25
_CALL = re.compile(r"^\s*([A-Za-z_$][\w$.]*)\s*\((.*)\)\s*$", re.DOTALL)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_$][\w$]*)\s*:")


def default_heart_rate(t: float) -> int:
    """The HRM's reading ``t`` seconds after it was powered (0 until it has one)."""
    if t < 4:
        return 0
    return 75 + round(45 * (1 - math.exp(-t / 50)))


@dataclass(frozen=True, slots=True)
class BangleConfig:
    """How an emulated Bangle.js looks and behaves."""

    seed: str = "BANGLE1"  # the address (and so the name's last four digits) derive from it
    battery_percent: int = 64
    heart_rate: Callable[[float], int] = default_heart_rate
    vibrate: str = ".."  # the messages app's buzz pattern for a new message
    quiet: bool = False  # quiet mode: messages do not buzz (Bangle.buzz still does)
    rssi: int = -58
    mtu: int = 247
    clock: Clock | None = None


@dataclass(frozen=True, slots=True)
class BangleMessage:
    """A message the Android Integration app received (``GB({...})``)."""

    t: float
    data: dict[str, Any]

    @property
    def type(self) -> str:
        """The message's ``t`` field."""
        return str(self.data.get("t", ""))


def _js_object(text: str) -> dict[str, Any] | None:
    """A JSON object, or a JS object literal with bare keys as Gadgetbridge's docs write it."""
    for candidate in (text, _BARE_KEY.sub(r'\1"\2":', text)):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def _statements(line: str) -> list[str]:
    """Split a line at top-level ``;`` (not inside brackets or strings)."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, c in enumerate(line):
        if quote:
            if c == quote and line[i - 1] != "\\":
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth == 0:
            parts.append(line[start:i])
            start = i + 1
    parts.append(line[start:])
    return [p.strip() for p in parts if p.strip()]


class BangleJS(Peripheral):
    """An emulated Bangle.js 2 with stock apps; build it with ``VirtualWorld.add_bangle``."""

    def __init__(self, link: SimLink, config: BangleConfig) -> None:
        super().__init__(
            link,
            name="Bangle.js",
            seed=config.seed,
            clock=config.clock,
            rssi=config.rssi,
            mtu=config.mtu,
        )
        self.name = f"Bangle.js {self.address.replace(':', '')[-4:].lower()}"
        self.config = config
        self.messages: list[BangleMessage] = []
        self.ignored: list[str] = []  # statements and messages the watch did not understand
        self.time_set: float | None = None
        self.timezone: float | None = None
        self.hrm_on = False
        self.bpm = 0
        self.echoed = 0  # characters the REPL echoed back
        self._line = ""
        self._echo = True
        self._act: asyncio.Task[None] | None = None
        self._hrm: asyncio.Task[None] | None = None
        self._tx_lock = asyncio.Lock()

    # -- GATT -------------------------------------------------------------------------------

    def services(self) -> list[Service]:
        self.tx: Characteristic[bytes] = Characteristic(
            kind_gatt.UART_TX_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            b"",
        )
        rx: Characteristic[bytes] = Characteristic(
            kind_gatt.UART_RX_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(write=self._on_rx),
        )
        return [Service(kind_gatt.UART_SERVICE_UUID, [rx, self.tx])]

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                ]
            )
        )

    def scan_response_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID(kind_gatt.UART_SERVICE_UUID)),
                    )
                ]
            )
        )

    def on_connected(self, connection: Connection) -> None:
        self.spawn(self._send_status_soon())

    def on_disconnected(self) -> None:
        self._line, self._echo = "", True

    async def _send_status_soon(self) -> None:
        await self.clock.sleep(_STATUS_AFTER_CONNECT_S)
        await self.gb_send({"t": "status", "bat": self.config.battery_percent, "chg": 0})

    # -- the console ------------------------------------------------------------------------

    def _on_rx(self, _connection: Any, value: bytes) -> None:
        echo = ""
        for c in bytes(value).decode("latin-1"):
            if c == _CTRL_C:
                self._line, self._echo = "", True
            elif c == _ECHO_OFF and not self._line:
                self._echo = False
            elif c in "\r\n":
                line, echoed = self._line, self._echo
                self._line, self._echo = "", True
                if echoed:
                    echo += "\r\n"
                self._run(line)
                if echoed:
                    echo += "=undefined\r\n>"
            else:
                self._line += c
                if self._echo:
                    echo += c
        if echo:
            self.echoed += len(echo)
            self.spawn(self._write(echo))

    def _run(self, line: str) -> None:
        for statement in _statements(line):
            call = _CALL.match(statement)
            name, args = (call.group(1), call.group(2)) if call else ("", "")
            if name == "GB" and (message := _js_object(args)) is not None:
                self._on_gb(message)
            elif name == "Bangle.buzz":
                self._buzz(args)
            elif name == "setTime" and _number(args) is not None:
                self.time_set = _number(args)
            elif name == "E.setTimeZone" and _number(args) is not None:
                self.timezone = _number(args)
            else:
                logger.info("Bangle.js ignored %r", statement)
                self.ignored.append(statement)

    def _buzz(self, args: str) -> None:
        values = [_number(a) for a in args.split(",")] if args.strip() else []
        ms = values[0] if values and values[0] is not None else _DEFAULT_BUZZ_MS
        strength = values[1] if len(values) > 1 and values[1] is not None else 1.0
        if not 0 <= ms <= _MAX_BUZZ_MS:
            self.ignored.append(f"Bangle.buzz({args})")
            return
        self.motor.append(
            MotorPulse(self.clock.now(), round(ms), MotorSource.BUZZ, max(0.0, min(1.0, strength)))
        )

    # -- the Android Integration app --------------------------------------------------------

    def _on_gb(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        self.messages.append(BangleMessage(self.clock.now(), message))
        if kind == "notify":
            if not self.config.quiet:
                self.spawn(self._pattern(self.config.vibrate))
        elif kind == "act":
            self._on_act(message)
        elif kind == "find":
            pass  # buzzes every second until {t:"find", n:false}: not used by the host
        elif kind in ("notify-", "notify~", "musicstate", "musicinfo", "call", "alarm"):
            pass
        else:
            logger.info("Bangle.js: GB Unknown %s", message)
            self.ignored.append(json.dumps(message))

    def _on_act(self, message: dict[str, Any]) -> None:
        for task in (self._act, self._hrm):
            if task is not None:
                task.cancel()
        self._act = self._hrm = None
        self.hrm_on = bool(message.get("hrm"))
        if self.hrm_on:
            self._hrm = self.spawn(self._measure())
        else:
            self.bpm = 0
        if not (message.get("hrm") or message.get("stp")):
            return
        interval = message.get("int")
        period = float(interval) if isinstance(interval, int | float) and interval > 0 else 1.0
        self._act = self.spawn(self._report_activity(period))

    async def _measure(self) -> None:
        powered = self.clock.now()
        while True:
            await self.clock.sleep(1.0)
            bpm = self.config.heart_rate(self.clock.now() - powered)
            if bpm:
                self.bpm = bpm  # the app keeps the last HRM event's bpm

    async def _report_activity(self, period: float) -> None:
        next_at = self.clock.now()
        while True:
            next_at += period
            await self.clock.sleep_until(next_at)
            await self.gb_send({"t": "act", "stp": 0, "hrm": self.bpm, "rt": 1})

    async def _pattern(self, pattern: str) -> None:
        for c in pattern:
            if c in ".:-=":
                ms = _PATTERN_SHORT_MS if c in ".:" else _PATTERN_LONG_MS
                strength = _PATTERN_WEAK if c in ".-" else 1.0
                self.motor.append(
                    MotorPulse(self.clock.now(), ms, MotorSource.NOTIFICATION, strength)
                )
                await self.clock.sleep(ms / 1000)
            await self.clock.sleep(_PATTERN_GAP_S)

    async def gb_send(self, message: dict[str, Any]) -> None:
        """``Bluetooth.println(""); Bluetooth.println(JSON.stringify(message))``."""
        await self._write("\r\n" + json.dumps(message, separators=(",", ":")) + "\r\n")

    async def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        async with self._tx_lock:  # one console: output goes out in the order it was printed
            for offset in range(0, len(data), _TX_CHUNK):
                await self.notify(self.tx, data[offset : offset + _TX_CHUNK])

    # -- what a test does ---------------------------------------------------------------------

    def print(self, text: str) -> None:
        """Print ``text`` on the console (an app's debug output, say)."""
        self.spawn(self._write(text))


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None
