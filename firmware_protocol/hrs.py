"""The standard Heart Rate Measurement characteristic (0x2A37), both directions.

Any heart-rate strap or watch that broadcasts HR speaks this, so the host
can read heart rate from bands that know nothing of the companion protocol.
Sensor contact has three states, because "the sensor can tell" and "the
sensor is touching skin" are different bits that tools often confuse.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from . import _validate as v
from .errors import LocalProtocolError
from .frames import decode_hrs_fields, encode_hrs_fields

__all__ = ["ContactStatus", "HeartRateMeasurement"]

_WIDE = 0x01
_CONTACT_DETECTED = 0x02
_CONTACT_SUPPORTED = 0x04
_ENERGY = 0x08
_RR = 0x10


class ContactStatus(enum.IntEnum):
    """Whether the sensor can detect skin contact, and whether it does."""

    NOT_SUPPORTED = 0
    NOT_DETECTED = 1
    DETECTED = 2


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One 0x2A37 notification. ``rr_1024`` are RR intervals in 1/1024 s.

    ``wide`` keeps the 16-bit value format even for values below 256, so a
    decoded measurement re-encodes to the same bytes.
    """

    bpm: int
    contact: ContactStatus = ContactStatus.NOT_SUPPORTED
    energy_kj: int | None = None
    rr_1024: tuple[int, ...] = ()
    wide: bool = False

    def __post_init__(self) -> None:
        v.check_uint(self, "bpm", self.bpm, 16 if self.wide else 8)
        if self.energy_kj is not None:
            v.check_uint(self, "energy_kj", self.energy_kj, 16)
        for rr in self.rr_1024:
            v.check_uint(self, "rr_1024", rr, 16)
        if not isinstance(self.contact, ContactStatus):
            raise LocalProtocolError("HeartRateMeasurement.contact must be a ContactStatus")

    @classmethod
    def from_bytes(cls, data: bytes) -> HeartRateMeasurement:
        """Decode a notification; raises only :class:`~firmware_protocol.ProtocolError`."""
        flags, bpm, energy, rr = decode_hrs_fields(data)
        # Every decoded field is in range by construction (read off the bytes as uint8 or
        # uint16), so this skips __init__'s checks, which cost more than the decoding itself:
        # a strap notifies once a second per band, on every host.
        measurement = _new_object(cls)
        _set_field(measurement, "bpm", bpm)
        _set_field(measurement, "contact", _CONTACT_BY_BITS[(flags & _CONTACT_BITS) >> 1])
        _set_field(measurement, "energy_kj", energy)
        _set_field(measurement, "rr_1024", rr)
        _set_field(measurement, "wide", bool(flags & _WIDE))
        return measurement

    def __bytes__(self) -> bytes:
        flags = _WIDE if self.wide else 0
        if self.contact is not ContactStatus.NOT_SUPPORTED:
            flags |= _CONTACT_SUPPORTED
        if self.contact is ContactStatus.DETECTED:
            flags |= _CONTACT_DETECTED
        if self.energy_kj is not None:
            flags |= _ENERGY
        if self.rr_1024:
            flags |= _RR
        return encode_hrs_fields(flags, self.bpm, self.energy_kj, self.rr_1024)

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """RR intervals in milliseconds."""
        return tuple(rr * 1000 / 1024 for rr in self.rr_1024)


_new_object: Final = object.__new__
_set_field: Final = object.__setattr__  # a frozen dataclass's own __init__ sets fields so
_CONTACT_BITS: Final = _CONTACT_DETECTED | _CONTACT_SUPPORTED
# Indexed by (supported, detected) as two bits: "detected" without "supported" means nothing.
_CONTACT_BY_BITS: Final = (
    ContactStatus.NOT_SUPPORTED,
    ContactStatus.NOT_SUPPORTED,
    ContactStatus.NOT_DETECTED,
    ContactStatus.DETECTED,
)
