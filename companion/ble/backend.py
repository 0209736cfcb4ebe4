"""How a non-OS bleak backend (a virtual band) is handed to the library."""

from __future__ import annotations

from dataclasses import dataclass

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

__all__ = ["BleakBackend"]


@dataclass(frozen=True, slots=True)
class BleakBackend:
    """Scanner and client backend classes to use instead of the OS Bluetooth stack."""

    scanner: type[BaseBleakScanner]
    client: type[BaseBleakClient]
