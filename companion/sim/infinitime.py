"""An InfiniTime watch (PineTime), exact to the firmware's BLE services (1.16).

Read from InfiniTime's ``src/components/ble`` and the screens that react to it:

- Immediate Alert 0x2A06 is declared write-without-response only; every write
  pushes a notification ("Alert : None/Mild/High") whose preview buzzes once
  for 35 ms, whatever the level (even 0): the motor has no intensity.
- New Alert 0x2A46 (write): ``category, count, ignored`` then ``title \\0 body``.
  Three bytes or fewer are ignored; the text is cut to 99 bytes plus the
  terminator. Category 0x03 is an incoming call: a 50 ms pulse now and one
  every second until the wearer taps (answer / reject / mute come back on the
  Notification Event characteristic) or the 7 s preview times out.
- Heart Rate 0x2A37 (read, notify): always ``00 bpm`` (no RR, no contact), and
  notified only when the value changes; 0 means "no reading".
- Current Time 0x2A2B is refused (ATT 0x0D) with fewer than 10 bytes.
- One connection at a time; the advertisement holds Heart Rate and DFU, the
  name only the scan response.
- The Music service declares its total-length characteristic twice.
- Music and Navigation (``MusicService.cpp``, ``NavigationService.cpp``) take
  writes only: a read returns nothing. A Music write longer than 40 bytes is
  kept as its first 37 and "..." (cut where the bytes fall); texts end at the
  first NUL; position, length and playback speed (hundredths) are the first
  four bytes big-endian. While the status is playing the watch counts the
  position on by itself; writing "not playing" adds the seconds since the last
  position or status write, whatever the status was. Navigation keeps flag,
  narrative and distance whole and the first byte of progress.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bumble import att
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from firmware_protocol import gatt

from ..clock import Clock
from ..kinds import gatt as kind_gatt
from .controller import SimLink
from .peripheral import MotorPulse, MotorSource, Peripheral

__all__ = ["CallResponse", "InfiniTime", "InfiniTimeConfig", "WatchNotification"]

logger = logging.getLogger(__name__)

_HEADER_BYTES: Final = 3
_MESSAGE_BYTES: Final = 100  # NotificationManager::MessageSize, terminator included
_KEPT_NOTIFICATIONS: Final = 5
_CALL_CATEGORY: Final = 0x03
_BUZZ_MS: Final = 35
_RING_MS: Final = 50
_RING_PERIOD_S: Final = 1.0
_PREVIEW_TIMEOUT_S: Final = 7.0
_CURRENT_TIME_BYTES: Final = 10
_HR_PERIOD_S: Final = 1.0
_MUSIC_TEXT_BYTES: Final = 40  # MusicService.cpp MaxStringSize
_MUSIC_TEXTS: Final = frozenset({"artist", "track", "album"})
_ALERT_TEXT = {0: "Alert : None", 1: "Alert : Mild", 2: "Alert : High"}


class CallResponse(enum.IntEnum):
    """What the wearer's tap on an incoming call sends back (Notification Event)."""

    REJECT = 0
    ANSWER = 1
    MUTE = 2


@dataclass(frozen=True, slots=True)
class WatchNotification:
    """A notification as the watch stores it (what the wearer reads)."""

    t: float
    category: int
    title: str
    body: str


def default_heart_rate(t: float) -> int:
    """A workout's heart rate, held for seconds at a time as the PPG algorithm reports it."""
    if t < 3:
        return 0  # the sensor needs a few seconds before its first reading
    return 70 + round(50 * (1 - math.exp(-t / 60))) + (round(t) // 7) % 3


@dataclass(frozen=True, slots=True)
class InfiniTimeConfig:
    """How an emulated InfiniTime looks and behaves."""

    name: str = "InfiniTime"
    seed: str = "PINETIME1"  # the address is derived from it (the firmware's serial is "0")
    firmware: str = "1.16.0"
    battery_percent: int = 76
    # bpm the PPG reports ``t`` seconds after power-on; 0 is "no reading".
    heart_rate: Callable[[float], int] = default_heart_rate
    notifications_on: bool = True  # False: do not disturb, every buzz is silenced
    rssi: int = -60
    mtu: int = 247
    clock: Clock | None = None


class InfiniTime(Peripheral):
    """An emulated PineTime running InfiniTime; build it with ``VirtualWorld.add_infinitime``."""

    def __init__(self, link: SimLink, config: InfiniTimeConfig) -> None:
        super().__init__(
            link,
            name=config.name,
            seed=config.seed,
            clock=config.clock,
            rssi=config.rssi,
            mtu=config.mtu,
        )
        self.config = config
        self.notifications: list[WatchNotification] = []
        self.current_time: dt.datetime | None = None
        self.local_time: tuple[int, int] | None = None  # (timezone, dst) in 15-minute units
        self.refused_time_writes = 0
        self.heart_rate = 0  # the controller's value: what a read returns
        self.heart_rate_notifications = 0
        self.music: dict[str, bytes] = {}  # as the watch keeps each write
        self.navigation: dict[str, bytes] = {}
        self.music_playing = False
        self._music_progress = 0  # MusicService::trackProgress, whole seconds
        self._music_updated = 0.0  # trackProgressUpdateTime, real seconds
        self._music_speed = 1.0
        self._ringing: Any = None
        self._started_at = 0.0
        self._rng = random.Random(config.seed)

    # -- GATT -------------------------------------------------------------------------------

    def services(self) -> list[Service]:
        write = Characteristic.Properties.WRITE
        read = Characteristic.Properties.READ
        notify = Characteristic.Properties.NOTIFY
        readable, writeable = (
            Characteristic.Permissions.READABLE,
            Characteristic.Permissions.WRITEABLE,
        )
        self.alert_level: Characteristic[bytes] = Characteristic(
            gatt.ALERT_LEVEL_UUID,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            writeable,
            CharacteristicValue(write=self._on_alert_level),
        )
        self.notification_event: Characteristic[bytes] = Characteristic(
            kind_gatt.NOTIFICATION_EVENT_UUID, notify, readable, b""
        )
        self.hr: Characteristic[bytes] = Characteristic(
            gatt.HEART_RATE_MEASUREMENT_UUID,
            read | notify,
            readable,
            CharacteristicValue(read=lambda _c: bytes([0, self.heart_rate])),
        )

        def text(uuid: str, value: str) -> Characteristic[bytes]:
            return Characteristic(uuid, read, readable, value.encode())

        def stored(table: dict[str, bytes], key: str, uuid: str) -> Characteristic[bytes]:
            def on_write(_c: Any, value: bytes) -> None:
                if table is self.music:
                    self._on_music(key, bytes(value))
                else:
                    self._on_navigation(key, bytes(value))

            # Declared readable, but the access callbacks answer writes only.
            return Characteristic(
                uuid,
                read | write,
                readable | writeable,
                CharacteristicValue(read=lambda _c: b"", write=on_write),
            )

        music = kind_gatt.infinitime_uuid
        music_chars = [
            Characteristic(music(0, 1), notify, readable, b""),
            *(
                stored(self.music, key, music(0, n))
                for key, n in (("status", 2), ("track", 4), ("artist", 3), ("album", 5))
            ),
            stored(self.music, "position", music(0, 6)),
            # Declared twice in the firmware's table: two handles, one UUID.
            stored(self.music, "length", music(0, 7)),
            stored(self.music, "length", music(0, 7)),
            *(stored(self.music, f"m{n:02x}", music(0, n)) for n in range(8, 0x0D)),
        ]
        return [
            Service(gatt.IMMEDIATE_ALERT_SERVICE_UUID, [self.alert_level]),
            Service(
                kind_gatt.ALERT_NOTIFICATION_SERVICE_UUID,
                [
                    Characteristic(
                        kind_gatt.NEW_ALERT_UUID,
                        write,
                        writeable,
                        CharacteristicValue(write=self._on_new_alert),
                    ),
                    self.notification_event,
                ],
            ),
            Service(gatt.HEART_RATE_SERVICE_UUID, [self.hr]),
            Service(
                kind_gatt.CURRENT_TIME_SERVICE_UUID,
                [
                    Characteristic(
                        kind_gatt.LOCAL_TIME_UUID,
                        read | write,
                        readable | writeable,
                        CharacteristicValue(read=self._read_local_time, write=self._on_local_time),
                    ),
                    Characteristic(
                        kind_gatt.CURRENT_TIME_UUID,
                        read | write,
                        readable | writeable,
                        CharacteristicValue(
                            read=self._read_current_time, write=self._on_current_time
                        ),
                    ),
                ],
            ),
            Service(kind_gatt.INFINITIME_MUSIC_SERVICE_UUID, music_chars),
            Service(
                kind_gatt.INFINITIME_NAVIGATION_SERVICE_UUID,
                [
                    stored(self.navigation, key, kind_gatt.infinitime_uuid(1, n))
                    for key, n in (("flag", 1), ("narrative", 2), ("distance", 3), ("progress", 4))
                ],
            ),
            Service(
                kind_gatt.INFINITIME_MOTION_SERVICE_UUID,
                [
                    Characteristic(
                        kind_gatt.infinitime_uuid(3, 1), read | notify, readable, bytes(4)
                    ),
                    Characteristic(
                        kind_gatt.infinitime_uuid(3, 2), read | notify, readable, bytes(6)
                    ),
                ],
            ),
            Service(
                gatt.BATTERY_SERVICE_UUID,
                [
                    Characteristic(
                        gatt.BATTERY_LEVEL_UUID,
                        read | notify,
                        readable,
                        CharacteristicValue(read=lambda _c: bytes([self.config.battery_percent])),
                    )
                ],
            ),
            Service(
                gatt.DEVICE_INFORMATION_SERVICE_UUID,
                [
                    text(gatt.MANUFACTURER_NAME_UUID, "PINE64"),
                    text(gatt.MODEL_NUMBER_UUID, "PineTime"),
                    text(gatt.SERIAL_NUMBER_UUID, "0"),
                    text(gatt.FIRMWARE_REVISION_UUID, self.config.firmware),
                    text(kind_gatt.SOFTWARE_REVISION_UUID, "InfiniTime"),
                ],
            ),
        ]

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID.from_16_bits(0x180D)),
                    ),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID(kind_gatt.INFINITIME_DFU_SERVICE_UUID)),
                    ),
                    (AdvertisingData.TX_POWER_LEVEL, bytes([0])),
                ]
            )
        )

    def scan_response_data(self) -> bytes:
        return bytes(AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode())]))

    def background(self) -> list[Any]:
        self._started_at = self.clock.now()
        return [self._measure_heart_rate()]

    def on_connected(self, connection: Connection) -> None:
        logger.debug("InfiniTime %s: connected", self.address)

    # -- writes -------------------------------------------------------------------------------

    def _on_music(self, key: str, value: bytes) -> None:
        if len(value) > _MUSIC_TEXT_BYTES:
            value = value[: _MUSIC_TEXT_BYTES - 3] + b"..."
        if key in _MUSIC_TEXTS:
            self.music[key] = value.split(b"\0")[0]
            return
        self.music[key] = value
        number = int.from_bytes(value[:4].ljust(4, b"\0"), "big")
        now = self._music_now()
        if key == "status":
            self.music_playing = bool(value[:1] and value[0])
            if self.music_playing:
                self._music_updated = now
            else:  # the firmware's arithmetic: "not playing" twice counts the time twice
                self._music_progress += int((now - self._music_updated) * self._music_speed)
        elif key == "position":
            self._music_progress, self._music_updated = number, now
        elif key == "m0a":
            self._music_speed = number / 100

    def _music_now(self) -> float:
        """The watch's tick count in seconds: real time, whatever the host's --speed."""
        return self.clock.now() / self.clock.rate

    @property
    def music_position(self) -> int:
        """The seconds the Music app shows now (MusicService::getProgress)."""
        if self.music_playing:
            gone = self._music_now() - self._music_updated
            return self._music_progress + int(gone * self._music_speed)
        return self._music_progress

    def _on_navigation(self, key: str, value: bytes) -> None:
        self.navigation[key] = value[:1] if key == "progress" else value.split(b"\0")[0]

    def _on_alert_level(self, _connection: Any, value: bytes) -> None:
        level = value[0] if value else 0
        self._push(0x00, _ALERT_TEXT.get(level, ""), "")

    def _on_new_alert(self, _connection: Any, value: bytes) -> None:
        if len(value) <= _HEADER_BYTES:
            return  # "Ignore notifications with empty message"
        text = bytes(value[_HEADER_BYTES:])[: _MESSAGE_BYTES - 1]
        title, _, body = text.partition(b"\0")
        self._push(
            value[0],
            title.decode("utf-8", "replace"),
            body.split(b"\0")[0].decode("utf-8", "replace"),
        )

    def _push(self, category: int, title: str, body: str) -> None:
        now = self.clock.now()
        self.notifications = [
            *self.notifications[-(_KEPT_NOTIFICATIONS - 1) :],
            WatchNotification(now, category, title, body),
        ]
        self._stop_ringing()  # a new notification replaces the preview on screen
        if not self.config.notifications_on:
            return
        if category == _CALL_CATEGORY:
            self._ringing = self.spawn(self._ring(now))
        else:
            self.motor.append(MotorPulse(now, _BUZZ_MS, MotorSource.NOTIFICATION))

    async def _ring(self, started: float) -> None:
        pulses = math.ceil(_PREVIEW_TIMEOUT_S / _RING_PERIOD_S)
        for n in range(pulses):
            at = started + n * _RING_PERIOD_S
            await self.clock.sleep_until(at)
            self.motor.append(MotorPulse(self.clock.now(), _RING_MS, MotorSource.CALL))
        await self.clock.sleep_until(started + _PREVIEW_TIMEOUT_S)
        self._ringing = None

    def _stop_ringing(self) -> None:
        if self._ringing is not None:
            self._ringing.cancel()
            self._ringing = None

    @property
    def ringing(self) -> bool:
        """Whether an incoming-call alert is ringing right now."""
        return self._ringing is not None

    def _on_current_time(self, _connection: Any, value: bytes) -> None:
        if len(value) < _CURRENT_TIME_BYTES:
            self.refused_time_writes += 1
            raise att.ATT_Error(att.ATT_INVALID_ATTRIBUTE_LENGTH_ERROR)
        year = value[0] | value[1] << 8
        try:
            self.current_time = dt.datetime(year, value[2], value[3], value[4], value[5], value[6])
        except ValueError:
            logger.info("InfiniTime: nonsense date %s written", bytes(value).hex())

    def _read_current_time(self, _connection: Any) -> bytes:
        now = self.current_time or dt.datetime(2020, 11, 1)
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
                0,
                0,
            ]
        )

    def _on_local_time(self, _connection: Any, value: bytes) -> None:
        if len(value) < 2:
            raise att.ATT_Error(att.ATT_INVALID_ATTRIBUTE_LENGTH_ERROR)
        self.local_time = (
            int.from_bytes(value[0:1], signed=True),
            int.from_bytes(value[1:2], signed=True),
        )

    def _read_local_time(self, _connection: Any) -> bytes:
        tz, dst = self.local_time or (0, 0)
        return tz.to_bytes(1, signed=True) + dst.to_bytes(1, signed=True)

    # -- the heart-rate sensor ---------------------------------------------------------------

    async def _measure_heart_rate(self) -> None:
        next_at = self._started_at
        while True:
            next_at += _HR_PERIOD_S
            await self.clock.sleep_until(next_at)
            bpm = max(0, min(255, self.config.heart_rate(next_at - self._started_at)))
            if bpm == self.heart_rate:
                continue  # HeartRateController::Update notifies on change only
            self.heart_rate = bpm
            self.heart_rate_notifications += 1
            await self.notify(self.hr, bytes([0, bpm]))

    # -- what the wearer does -------------------------------------------------------------------

    def tap(self, response: CallResponse = CallResponse.ANSWER) -> None:
        """The wearer taps a button of the call preview: ringing stops, the host is told."""
        self._stop_ringing()
        self.spawn(self.notify(self.notification_event, bytes([response])))
