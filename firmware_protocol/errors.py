"""Errors of the wire protocol: one root, and who is to blame.

As in h11, ``LocalProtocolError`` means *you* asked for something illegal and
``RemoteProtocolError`` means the *peer* sent something we cannot accept.
Decoding arbitrary bytes raises only these, never an ``IndexError``.
"""

from __future__ import annotations

__all__ = [
    "FrameError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "UnsupportedVersionError",
]


class ProtocolError(Exception):
    """Root of every error of :mod:`firmware_protocol`."""


class LocalProtocolError(ProtocolError):
    """The caller built an invalid message or used a state machine out of order."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes or a message that break the protocol."""


class FrameError(RemoteProtocolError):
    """A frame or fragment is malformed (CRC, length, truncation, bad field).

    ``path`` names the field where decoding failed, when known
    (e.g. ``"CueFired -> planned_us"``), so a firmware author sees which byte is off.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{message} (at {path})" if path else message)
        self.path = path


class UnsupportedVersionError(RemoteProtocolError):
    """A frame carries a protocol version this implementation does not speak."""
