"""Which kind a device is, from what it advertises, and :func:`connect_band` for any kind."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Unpack

from firmware_protocol.gatt import COMPANION_SERVICE_UUID, HEART_RATE_SERVICE_UUID

from ..band import Band
from ..ble.scan import FoundBand, find_advertised
from ..errors import BandNotFoundError
from . import bangle, companion, infinitime, strap
from . import gatt as kind_gatt
from .base import BandKind, Capabilities, KindBand, LinkOptions
from .session_band import HostTimedBand

__all__ = [
    "CAPABILITIES",
    "connect_band",
    "connect_for_session",
    "kind_from_advertisement",
    "kind_of",
]

CAPABILITIES: Final[dict[BandKind, Capabilities]] = {
    BandKind.COMPANION: companion.CAPABILITIES,
    BandKind.INFINITIME: infinitime.CAPABILITIES,
    BandKind.BANGLE: bangle.CAPABILITIES,
    BandKind.HR_STRAP: strap.CAPABILITIES,
}

#: How long :func:`connect_band` scans for ``target`` to learn its kind, unless
#: ``scan_timeout`` says (the same default as a band's own scan).
_SCAN_TIMEOUT_S: Final = 10.0


def kind_from_advertisement(name: str, service_uuids: Iterable[str]) -> BandKind | None:
    """The kind a device advertising ``name`` and ``service_uuids`` is (None: not a band)."""
    uuids = {uuid.lower() for uuid in service_uuids}
    if COMPANION_SERVICE_UUID in uuids:
        return BandKind.COMPANION
    if kind_gatt.UART_SERVICE_UUID in uuids or name.startswith("Bangle.js"):
        return BandKind.BANGLE
    if kind_gatt.INFINITIME_DFU_SERVICE_UUID in uuids or name == "InfiniTime":
        return BandKind.INFINITIME
    if HEART_RATE_SERVICE_UUID in uuids:
        return BandKind.HR_STRAP
    return None


def kind_of(found: FoundBand) -> BandKind | None:
    """The kind of a device a scan found."""
    return kind_from_advertisement(found.name, found.service_uuids)


async def connect_band(
    target: str,
    *,
    kind: BandKind | None = None,
    pair: bool = True,
    **link: Unpack[LinkOptions],
) -> KindBand:
    """A band of the right kind for ``target`` (a name or an address), not yet connected.

    Use it as ``async with await connect_band("InfiniTime") as band``. The kind
    is found from what the device advertises, unless ``kind`` forces one;
    ``link`` (backend, clock, scan_timeout, reconnect_for) is how the band is
    reached and kept, as :class:`~companion.kinds.base.LinkOptions` says.
    """
    if kind is None:
        try:
            _device, found = await find_advertised(
                target,
                timeout=link.get("scan_timeout", _SCAN_TIMEOUT_S),
                backend=link.get("backend"),
            )
        except BandNotFoundError as exc:
            if target.lower() == "infinitime":
                raise BandNotFoundError(infinitime.not_advertising(target)) from exc
            raise
        detected = kind_of(found)
        if detected is None:
            raise BandNotFoundError(
                f"{target!r} ({found.address}) advertises none of the services a band has "
                "(companion, Heart Rate, Nordic UART); force a kind with --kind if you know it"
            )
        kind = detected
    classes: dict[BandKind, type[infinitime.InfiniTimeBand | bangle.BangleBand | strap.StrapBand]]
    classes = {
        BandKind.INFINITIME: infinitime.InfiniTimeBand,
        BandKind.BANGLE: bangle.BangleBand,
        BandKind.HR_STRAP: strap.StrapBand,
    }
    if kind is BandKind.COMPANION:
        return companion.CompanionKindBand(target, pair=pair, **link)
    return classes[kind](target, **link)


async def connect_for_session(
    target: str, *, kind: BandKind | None = None, **link: Unpack[LinkOptions]
) -> Band | HostTimedBand:
    """The band a :class:`~companion.session.Session` drives for ``target``, not yet connected.

    A companion band is the :class:`~companion.band.Band` itself (it times its
    own cues); any other kind is wrapped in a :class:`HostTimedBand`, so this
    host fires the cues. ``kind`` forces a kind instead of finding it out;
    ``link`` is :func:`connect_band`'s.
    """
    band = await connect_band(target, kind=kind, **link)
    if isinstance(band, companion.CompanionKindBand):
        return band.band
    return HostTimedBand(band)
