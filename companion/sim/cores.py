"""Which implementation of the band protocol a virtual band runs.

The reference (:class:`firmware_protocol.BandProtocol`) is the default. The others are
the firmware that runs on real watches, put behind the same interface so the virtual
band, and every session test, can run them:

- ``MICROPYTHON``: ``firmware/micropython`` (``companion_band.BandCore``), the very files
  flashed to a board, imported into this (CPython) process;
- ``BANGLEJS``: the Bangle.js app ``firmware/banglejs`` running under node with a small
  shim of the Espruino APIs it uses (``espruino_shim.js``): the app's own timers fire
  its cues, on the virtual band's clock.

Both need a checkout of the repository (the firmware is not part of the wheel).
"""

from __future__ import annotations

import enum
import importlib
import json
import shutil
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any, Protocol

import firmware_protocol as fp

from ..errors import CompanionError

__all__ = ["FIRMWARE_DIR", "BandCore", "BandEngine", "FirmwareMissingError", "make_engine"]

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
_SHIM = Path(__file__).resolve().with_name("espruino_shim.js")


class BandCore(enum.Enum):
    """The band protocol implementation a virtual band runs."""

    REFERENCE = "reference"  # firmware_protocol.BandProtocol
    MICROPYTHON = "micropython"  # firmware/micropython, in this process
    BANGLEJS = "banglejs"  # firmware/banglejs under node, behind an Espruino shim


class FirmwareMissingError(CompanionError):
    """The firmware sources (or node) a virtual band was asked to run are not here."""


class BandEngine(Protocol):
    """What a virtual band needs of a band protocol implementation."""

    errors: int

    @property
    def state(self) -> fp.SessionStateCode: ...

    def connection_made(self, mtu: int, now_us: int) -> None: ...
    def connection_lost(self) -> None: ...
    def set_mtu(self, mtu: int) -> None: ...
    def reboot(self) -> None: ...
    def receive_data(self, data: bytes, now_us: int) -> None: ...
    def tick(self, now_us: int) -> None: ...
    def press_button(self, button: fp.Button, now_us: int) -> None: ...
    def record_heart_rate(
        self, bpm: int, rr_1024: tuple[int, ...], contact: bool, now_us: int
    ) -> None: ...
    def data_to_send(self) -> list[bytes]: ...
    def motor_actions(self) -> list[fp.MotorAction]: ...
    def next_deadline_us(self) -> int | None: ...


def make_engine(
    core: BandCore, info: fp.BandInfo, *, retransmit_us: int, boot_id: int, now_us: int
) -> BandEngine:
    """A fresh band protocol engine of the kind ``core``."""
    if core is BandCore.MICROPYTHON:
        return MicroPythonEngine(info, retransmit_us=retransmit_us, boot_id=boot_id)
    if core is BandCore.BANGLEJS:
        return BangleEngine(now_us)
    return fp.BandProtocol(info, retransmit_us=retransmit_us, boot_id=boot_id)


def _action(cue_id: int, kind: int, intensity: int, pulses: Any, at_us: int) -> fp.MotorAction:
    cue = fp.CueKind(kind)
    pattern = fp.Pattern(cue, intensity, tuple(fp.Pulse(on, off) for on, off in pulses))
    return fp.MotorAction(cue_id, cue, pattern, at_us)


def _micropython_modules() -> tuple[Any, Any]:
    folder = FIRMWARE_DIR / "micropython"
    if not (folder / "companion_band.py").exists():
        raise FirmwareMissingError(f"the MicroPython firmware is not at {folder}")
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    return importlib.import_module("companion_band"), importlib.import_module("companion_proto")


class MicroPythonEngine:
    """``firmware/micropython``'s ``BandCore`` behind the reference band's interface."""

    def __init__(self, info: fp.BandInfo, *, retransmit_us: int, boot_id: int) -> None:
        band, self._proto = _micropython_modules()
        self._core = band.BandCore(
            band.BandInfo(
                info.firmware_version,
                info.max_plan_bytes,
                info.max_steps,
                info.max_name_length,
                int(info.motor),
            ),
            retransmit_us=retransmit_us,
            boot_id=boot_id,
        )

    @property
    def errors(self) -> int:
        return int(self._core.errors)

    @errors.setter
    def errors(self, value: int) -> None:
        self._core.errors = value

    @property
    def state(self) -> fp.SessionStateCode:
        return fp.SessionStateCode(self._core.state)

    @property
    def plan(self) -> Any:
        return self._core.plan

    def connection_made(self, mtu: int, now_us: int) -> None:
        self._core.connection_made(mtu, now_us)

    def connection_lost(self) -> None:
        self._core.connection_lost()

    def set_mtu(self, mtu: int) -> None:
        self._core.set_mtu(mtu)

    def reboot(self) -> None:
        self._core.reboot()

    def receive_data(self, data: bytes, now_us: int) -> None:
        self._core.receive_data(bytes(data), now_us)

    def tick(self, now_us: int) -> None:
        self._core.tick(now_us)

    def press_button(self, button: fp.Button, now_us: int) -> None:
        self._core.press_button(int(button), now_us)

    def record_heart_rate(
        self, bpm: int, rr_1024: tuple[int, ...], contact: bool, now_us: int
    ) -> None:
        self._core.record_heart_rate(bpm, list(rr_1024), contact, now_us)

    def data_to_send(self) -> list[bytes]:
        return [bytes(f) for f in self._core.data_to_send()]

    def motor_actions(self) -> list[fp.MotorAction]:
        return [
            _action(cue_id, kind, pattern.intensity, pattern.pulses, at_us)
            for cue_id, kind, pattern, at_us in self._core.motor_actions()
        ]

    def next_deadline_us(self) -> int | None:
        deadline = self._core.next_deadline_us()
        return None if deadline is None else int(deadline)


class BangleEngine:
    """The Bangle.js app under node (``espruino_shim.js``), driven on the band's clock.

    Each call is one line to the node process and one answer back (synchronous: the
    virtual band's event loop waits well under a millisecond). The app's setTimeout
    timers are virtual; :meth:`next_deadline_us` is the earliest of them, so the virtual
    band ticks exactly when the app's own timer is due.
    """

    def __init__(self, now_us: int) -> None:
        self.errors = 0
        self.screen: list[str] = []  # the texts the app drew last
        self.buzzes: list[tuple[int, int, float]] = []  # (band µs, ms, strength) per buzz
        self._now_us = now_us
        self._outgoing: list[bytes] = []
        self._motor: list[fp.MotorAction] = []
        self._next: int | None = None
        self._state = fp.SessionStateCode.IDLE
        self._process = self._spawn(now_us)

    @staticmethod
    def _spawn(now_us: int) -> subprocess.Popen[str]:
        node = shutil.which("node")
        app = FIRMWARE_DIR / "banglejs"
        if node is None:
            raise FirmwareMissingError("node is needed to run the Bangle.js app: install node 20")
        if not (app / "companion.app.js").exists():
            raise FirmwareMissingError(f"the Bangle.js app is not at {app}")
        process = subprocess.Popen(
            [node, str(_SHIM), str(app), str(now_us)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        weakref.finalize(process, process.kill)
        assert process.stdout is not None
        json.loads(process.stdout.readline())  # {"ready": true}
        return process

    def close(self) -> None:
        """End the node process."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def _call(self, command: dict[str, Any]) -> None:
        command.setdefault("now", self._now_us)
        self._now_us = max(self._now_us, command["now"])
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise FirmwareMissingError("the Bangle.js app under node has exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Bangle.js app failed: {answer['error']}")
        self._outgoing.extend(bytes.fromhex(f) for f in answer["notify"])
        self._motor.extend(
            _action(c["cue_id"], c["kind"], c["intensity"], c["pulses"], c["at_us"])
            for c in answer["cues"]
        )
        self.buzzes.extend((at, ms, strength) for at, ms, strength in answer["buzz"])
        if answer["screen"]:
            self.screen = answer["screen"]
        self._next = answer["next"]
        self._state = fp.SessionStateCode(answer["state"])

    @property
    def state(self) -> fp.SessionStateCode:
        return self._state

    def connection_made(self, mtu: int, now_us: int) -> None:
        self._call({"t": "connect", "now": now_us})

    def connection_lost(self) -> None:
        self._call({"t": "disconnect"})

    def set_mtu(self, mtu: int) -> None:
        """The app fragments at MTU 23 whatever the link's MTU (Espruino does not say it)."""

    def reboot(self) -> None:
        self.close()
        self._outgoing, self._motor, self._next = [], [], None
        self._state = fp.SessionStateCode.IDLE
        self._process = self._spawn(self._now_us)

    def receive_data(self, data: bytes, now_us: int) -> None:
        self._call({"t": "write", "now": now_us, "data": bytes(data).hex()})

    def tick(self, now_us: int) -> None:
        self._call({"t": "time", "now": now_us})

    def press_button(self, button: fp.Button, now_us: int) -> None:
        if button is fp.Button.STOP:
            self._call({"t": "press", "now": now_us})
        elif button is fp.Button.PAIN:
            self._call({"t": "touch", "now": now_us, "x": 88, "y": 160})  # the PAIN box
        else:
            raise ValueError(f"the Bangle.js app has no {button.name} gesture")

    def record_heart_rate(
        self, bpm: int, rr_1024: tuple[int, ...], contact: bool, now_us: int
    ) -> None:
        self._call({"t": "hrm", "now": now_us, "bpm": bpm})

    def data_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def motor_actions(self) -> list[fp.MotorAction]:
        out, self._motor = self._motor, []
        return out

    def next_deadline_us(self) -> int | None:
        return self._next
