"""Any heart-rate strap (or watch) with only the standard Heart Rate service.

Heart rate with RR intervals and skin contact when the strap sends them,
battery when it has the service. It has no motor: the cues are on the host
(the terminal's bell and the view), so a workout still runs with its cues
when the only device is a chest strap.
"""

from __future__ import annotations

from typing import Final

from firmware_protocol import gatt

from ..ble.link import GattLink
from ..errors import IncompatibleBandError
from ..events import Battery
from ..heart_rate import heart_rate_from_hrs
from .base import BandKind, Capabilities, CueTiming, HostCue, KindBand, TimeSync

__all__ = ["CAPABILITIES", "StrapBand"]

CAPABILITIES: Final = Capabilities(
    kind=BandKind.HR_STRAP,
    cue_timing=CueTiming.HOST,
    motor=False,
    cue_patterns=frozenset(),
    text=False,
    heart_rate=True,
    rr_intervals=True,
    contact=True,
    buttons=frozenset(),
    battery=True,
    time_sync=TimeSync.NONE,
    notes=("a chest strap reads only while it touches the skin: wet the electrodes",),
)


class StrapBand(KindBand):
    """A standard heart-rate sensor; cues are the host's own (nothing is written)."""

    capabilities = CAPABILITIES

    async def on_link(self, link: GattLink, first: bool) -> None:
        if not link.has_characteristic(gatt.HEART_RATE_MEASUREMENT_UUID):
            raise IncompatibleBandError(
                f"{link.address} has no Heart Rate Service (0x180D): it cannot report heart rate"
            )
        await link.subscribe(gatt.HEART_RATE_MEASUREMENT_UUID, self._on_heart_rate)
        if link.has_characteristic(gatt.BATTERY_LEVEL_UUID):
            self._on_battery(await link.read(gatt.BATTERY_LEVEL_UUID))

    def _on_heart_rate(self, data: bytes) -> None:
        sample = heart_rate_from_hrs(data, self.clock.now())
        if sample is not None:
            self.emit(sample)

    def _on_battery(self, data: bytes) -> None:
        if data:
            self.emit(Battery(data[0]))

    async def play(self, cue: HostCue) -> None:
        """Nothing reaches the wrist: the cue is the host's (its event rings the bell)."""
        del cue
