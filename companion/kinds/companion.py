"""The companion kind: today's :class:`~companion.band.Band` behind the kinds' interface.

A companion band runs the timeline itself (band-timed cues, acknowledged with
its own timestamps), so this kind only adapts: capabilities, identity, link
state and events come from the wrapped band, which a session drives directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Unpack

import firmware_protocol as fp

from ..band import Band
from ..ble.link import GattLink
from ..events import Event
from .base import BandKind, Capabilities, CueTiming, KindBand, LinkOptions, TimeSync

__all__ = ["CAPABILITIES", "CompanionKindBand"]

CAPABILITIES: Final = Capabilities(
    kind=BandKind.COMPANION,
    cue_timing=CueTiming.BAND,
    motor=True,
    cue_patterns=frozenset(fp.CueKind),
    text=False,  # the protocol carries step names, not a screen
    heart_rate=True,
    rr_intervals=True,
    contact=True,
    buttons=frozenset({fp.Button.STOP, fp.Button.PAIN, fp.Button.SKIP}),
    battery=True,
    time_sync=TimeSync.PROTOCOL,
    notes=("cues fire on the band's own clock, even while the link is down",),
)


class CompanionKindBand(KindBand):
    """A band speaking the companion protocol; :attr:`band` is the full client."""

    capabilities = CAPABILITIES

    def __init__(self, target: str, *, pair: bool = True, **link: Unpack[LinkOptions]) -> None:
        super().__init__(target, **link)
        self.band = Band(
            target,
            backend=self._backend,
            clock=self.clock,
            pair=pair,
            scan_timeout=self._scan_timeout,
            reconnect_for=self._reconnect_for,
        )

    async def __aenter__(self) -> CompanionKindBand:
        await self.band.__aenter__()
        self.info = self.band.info
        return self

    async def aclose(self) -> None:
        await self.band.aclose()

    async def on_link(self, link: GattLink, first: bool) -> None:
        raise AssertionError("the wrapped Band keeps its own link")

    @property
    def link_up(self) -> bool:
        return self.band.link_up

    async def events(self) -> AsyncIterator[Event]:
        async for event in self.band.events():
            yield event
