"""The exceptions of the companion library.

Every error the library raises derives from :class:`CompanionError`, and each
message says what to do next, because the person reading it is usually
standing next to a band, not reading our source.
"""

from __future__ import annotations

__all__ = [
    "BandNotFoundError",
    "BluetoothUnavailableError",
    "BrokerError",
    "CommandError",
    "CompanionError",
    "FitFileError",
    "IncompatibleBandError",
    "LinkLostError",
    "PairingRequiredError",
    "PlanError",
    "PlanTooLargeError",
    "ReportError",
    "StoreError",
]


class CompanionError(Exception):
    """Root of every error raised by :mod:`companion`, so callers can catch one type."""


class BluetoothUnavailableError(CompanionError):
    """This machine has no usable Bluetooth adapter (or its Bluetooth service is not running)."""


class BandNotFoundError(CompanionError):
    """No band answered the scan: it is off, out of range, or connected elsewhere."""


class PairingRequiredError(CompanionError):
    """The band refused an unencrypted write: the host must pair (bond) with it first."""


class IncompatibleBandError(CompanionError):
    """The band speaks a protocol version this host does not, so nothing is sent to it."""


class LinkLostError(CompanionError):
    """The BLE link dropped and could not be brought back within the retry budget."""


class CommandError(CompanionError):
    """The band refused a command (NACK); ``code`` is the band's reason."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class PlanError(CompanionError):
    """A workout plan (file or code) is invalid; the message names the field and the fix."""


class PlanTooLargeError(PlanError):
    """The plan is valid but does not fit this band's buffers, so it is never sent."""


class BrokerError(CompanionError):
    """The MQTT broker could not be reached, refused the login, or failed to start."""


class ReportError(CompanionError):
    """A report or export cannot be written: unsupported file type, or the path is not writable."""


class FitFileError(CompanionError):
    """A FIT file cannot be used: not FIT, damaged (truncated, bad CRC), or the wrong file type."""


class StoreError(CompanionError):
    """The session history database could not be opened or read."""
