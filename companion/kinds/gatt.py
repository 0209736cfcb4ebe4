"""GATT identifiers of the bands people own, as their firmware declares them.

Read from the firmware sources (InfiniTime ``src/components/ble/*``, Espruino's
Nordic UART, BangleApps ``apps/android``). The host kinds and the emulators in
:mod:`companion.sim` both use these, so the two cannot disagree.
"""

from __future__ import annotations

from typing import Final

from firmware_protocol.gatt import sig_uuid

__all__ = [
    "ALERT_NOTIFICATION_SERVICE_UUID",
    "CURRENT_TIME_SERVICE_UUID",
    "CURRENT_TIME_UUID",
    "INFINITIME_DFU_SERVICE_UUID",
    "INFINITIME_MOTION_SERVICE_UUID",
    "INFINITIME_MUSIC_SERVICE_UUID",
    "INFINITIME_NAVIGATION_SERVICE_UUID",
    "LOCAL_TIME_UUID",
    "MUSIC_ALBUM_UUID",
    "MUSIC_ARTIST_UUID",
    "MUSIC_LENGTH_UUID",
    "MUSIC_PLAYBACK_SPEED_UUID",
    "MUSIC_POSITION_UUID",
    "MUSIC_STATUS_UUID",
    "MUSIC_TRACK_UUID",
    "NAVIGATION_DISTANCE_UUID",
    "NAVIGATION_FLAG_UUID",
    "NAVIGATION_NARRATIVE_UUID",
    "NAVIGATION_PROGRESS_UUID",
    "NEW_ALERT_UUID",
    "NOTIFICATION_EVENT_UUID",
    "SOFTWARE_REVISION_UUID",
    "UART_RX_UUID",
    "UART_SERVICE_UUID",
    "UART_TX_UUID",
    "infinitime_uuid",
]


def infinitime_uuid(service: int, characteristic: int = 0) -> str:
    """InfiniTime's custom UUIDs: ``SSSSCCCC-78fc-48fe-8e23-433b3a1942d0``."""
    return f"{service:04x}{characteristic:04x}-78fc-48fe-8e23-433b3a1942d0"


ALERT_NOTIFICATION_SERVICE_UUID: Final = sig_uuid(0x1811)
NEW_ALERT_UUID: Final = sig_uuid(0x2A46)
NOTIFICATION_EVENT_UUID: Final = infinitime_uuid(0x0002, 0x0001)
CURRENT_TIME_SERVICE_UUID: Final = sig_uuid(0x1805)
CURRENT_TIME_UUID: Final = sig_uuid(0x2A2B)
LOCAL_TIME_UUID: Final = sig_uuid(0x2A0F)
SOFTWARE_REVISION_UUID: Final = sig_uuid(0x2A28)
INFINITIME_MUSIC_SERVICE_UUID: Final = infinitime_uuid(0x0000)
INFINITIME_NAVIGATION_SERVICE_UUID: Final = infinitime_uuid(0x0001)
INFINITIME_MOTION_SERVICE_UUID: Final = infinitime_uuid(0x0003)
# MusicService.cpp: texts are UTF-8, numbers u32 big-endian (the speed in hundredths).
MUSIC_STATUS_UUID: Final = infinitime_uuid(0x0000, 0x0002)
MUSIC_ARTIST_UUID: Final = infinitime_uuid(0x0000, 0x0003)
MUSIC_TRACK_UUID: Final = infinitime_uuid(0x0000, 0x0004)
MUSIC_ALBUM_UUID: Final = infinitime_uuid(0x0000, 0x0005)
MUSIC_POSITION_UUID: Final = infinitime_uuid(0x0000, 0x0006)
MUSIC_LENGTH_UUID: Final = infinitime_uuid(0x0000, 0x0007)  # declared twice: by handle only
MUSIC_PLAYBACK_SPEED_UUID: Final = infinitime_uuid(0x0000, 0x000A)
# NavigationService.cpp: flag (an icon name), narrative and distance are text, progress a u8.
NAVIGATION_FLAG_UUID: Final = infinitime_uuid(0x0001, 0x0001)
NAVIGATION_NARRATIVE_UUID: Final = infinitime_uuid(0x0001, 0x0002)
NAVIGATION_DISTANCE_UUID: Final = infinitime_uuid(0x0001, 0x0003)
NAVIGATION_PROGRESS_UUID: Final = infinitime_uuid(0x0001, 0x0004)
# Nordic's legacy DFU service: InfiniTime advertises it beside Heart Rate.
INFINITIME_DFU_SERVICE_UUID: Final = "00001530-1212-efde-1523-785feabcd123"

# Nordic UART (Espruino's console, and Gadgetbridge's channel to a Bangle.js).
UART_SERVICE_UUID: Final = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
UART_RX_UUID: Final = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # host -> watch, write
UART_TX_UUID: Final = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # watch -> host, notify
