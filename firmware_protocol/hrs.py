"""The standard Heart Rate Measurement characteristic (0x2A37), both directions.

Any heart-rate strap or watch that broadcasts HR speaks this, so the host
can read heart rate from bands that know nothing of the companion protocol.
Sensor contact has three states, because "the sensor can tell" and "the
sensor is touching skin" are different bits that tools often confuse.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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
        if not flags & _CONTACT_SUPPORTED:
            contact = ContactStatus.NOT_SUPPORTED
        elif flags & _CONTACT_DETECTED:
            contact = ContactStatus.DETECTED
        else:
            contact = ContactStatus.NOT_DETECTED
        return cls(bpm, contact, energy, rr, wide=bool(flags & _WIDE))

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
