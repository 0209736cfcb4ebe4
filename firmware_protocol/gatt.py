"""GATT identifiers of a companion band: the custom service and the standard ones it also serves."""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERT_LEVEL_UUID",
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "BODY_SENSOR_LOCATION_UUID",
    "COMPANION_SERVICE_UUID",
    "CONTROL_CHAR_UUID",
    "DEVICE_INFORMATION_SERVICE_UUID",
    "EVENTS_CHAR_UUID",
    "FIRMWARE_REVISION_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "IMMEDIATE_ALERT_SERVICE_UUID",
    "MANUFACTURER_NAME_UUID",
    "MODEL_NUMBER_UUID",
    "SERIAL_NUMBER_UUID",
    "sig_uuid",
]


def sig_uuid(short: int) -> str:
    """The full 128-bit form of a Bluetooth SIG 16-bit UUID, lower case (as bleak reports it)."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


COMPANION_SERVICE_UUID: Final = "6d2c0001-6f6e-4f9c-8a3b-636f6d70616e"
CONTROL_CHAR_UUID: Final = "6d2c0002-6f6e-4f9c-8a3b-636f6d70616e"  # host -> band, write
EVENTS_CHAR_UUID: Final = "6d2c0003-6f6e-4f9c-8a3b-636f6d70616e"  # band -> host, notify

HEART_RATE_SERVICE_UUID: Final = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT_UUID: Final = sig_uuid(0x2A37)
BODY_SENSOR_LOCATION_UUID: Final = sig_uuid(0x2A38)
BATTERY_SERVICE_UUID: Final = sig_uuid(0x180F)
BATTERY_LEVEL_UUID: Final = sig_uuid(0x2A19)
DEVICE_INFORMATION_SERVICE_UUID: Final = sig_uuid(0x180A)
MANUFACTURER_NAME_UUID: Final = sig_uuid(0x2A29)
MODEL_NUMBER_UUID: Final = sig_uuid(0x2A24)
SERIAL_NUMBER_UUID: Final = sig_uuid(0x2A25)
FIRMWARE_REVISION_UUID: Final = sig_uuid(0x2A26)
# Immediate Alert: how standard bands (PineTime/InfiniTime) buzz on a host write.
IMMEDIATE_ALERT_SERVICE_UUID: Final = sig_uuid(0x1802)
ALERT_LEVEL_UUID: Final = sig_uuid(0x2A06)
