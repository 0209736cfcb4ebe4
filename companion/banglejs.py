"""Installing the Bangle.js companion app on a watch, over its Nordic UART, the way the
Bangle.js App Loader does: each file is written to the watch's Storage with
``require("Storage").write(name, atob(...), offset, size)`` lines, echo off (``\\x10``).

The app's files live in the repository (``firmware/banglejs``), not in the wheel.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Final

from .ble.backend import BleakBackend
from .ble.link import GattLink
from .ble.scan import find_band
from .errors import CompanionError

__all__ = [
    "APP_DIR",
    "AppInstallError",
    "app_files",
    "install_app",
    "storage_commands",
]

APP_DIR: Final = Path(__file__).resolve().parents[1] / "firmware" / "banglejs"
NUS_RX: Final = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # host -> watch
_CHUNK_BYTES: Final = 768  # file bytes per Storage.write line (1024 base64 characters)
_WRITE_BYTES: Final = 20  # one ATT write at the default MTU, as Gadgetbridge sends


class AppInstallError(CompanionError):
    """The app cannot be installed: its files are not here, or the watch has no UART."""


def app_files(folder: Path = APP_DIR) -> list[tuple[str, Path]]:
    """``(Storage name, file)`` for every file the app puts on the watch (metadata.json)."""
    metadata = folder / "metadata.json"
    if not metadata.exists():
        raise AppInstallError(
            f"the Bangle.js app is not at {folder}: it ships in the companion repository "
            "(firmware/banglejs), not in the Python package"
        )
    entries = json.loads(metadata.read_text(encoding="utf-8"))["storage"]
    return [(entry["name"], folder / entry["url"]) for entry in entries]


def storage_commands(files: list[tuple[str, bytes]], *, start: str | None = None) -> list[bytes]:
    """The lines to send to the watch's console: Ctrl-C, the Storage writes, and a load."""
    lines = [b"\x03"]
    for name, data in files:
        for offset in range(0, max(len(data), 1), _CHUNK_BYTES):
            chunk = base64.b64encode(data[offset : offset + _CHUNK_BYTES]).decode("ascii")
            size = f", {len(data)}" if offset == 0 else ""
            line = f'require("Storage").write({json.dumps(name)}, atob("{chunk}"), {offset}{size});'
            lines.append(b"\x10" + line.encode("ascii") + b"\n")
    if start is not None:
        lines.append(b"\x10" + f"load({json.dumps(start)});".encode("ascii") + b"\n")
    return lines


async def install_app(
    target: str, *, backend: BleakBackend | None = None, timeout: float = 10.0
) -> list[str]:
    """Write the app's files to the watch at ``target`` and start the app; their names."""
    files = [(name, path.read_bytes()) for name, path in app_files()]
    device = await find_band(target, timeout=timeout, backend=backend)
    link = await GattLink.open(device, backend=backend, on_disconnect=lambda: None)
    try:
        if not link.has_characteristic(NUS_RX):
            raise AppInstallError(
                f"{target} has no Nordic UART service: is it a Bangle.js, and is the "
                "Espruino console enabled on Bluetooth (Settings > Utils > BLE console)?"
            )
        app = next(name for name, _ in files if name.endswith(".app.js"))
        for line in storage_commands(files, start=app):
            for i in range(0, len(line), _WRITE_BYTES):
                await link.write(NUS_RX, line[i : i + _WRITE_BYTES], response=True)
    finally:
        await link.close()
    return [name for name, _ in files]
