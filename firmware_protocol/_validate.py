"""Range checks shared by the message and plan dataclasses (they validate on construction)."""

from __future__ import annotations

from .errors import LocalProtocolError

MAX_STRING_BYTES = 255


def check_uint(owner: object, name: str, value: int, bits: int) -> None:
    """Raise if ``value`` is not an int that fits ``bits`` unsigned bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise LocalProtocolError(
            f"{type(owner).__name__}.{name} must be an integer in 0..{(1 << bits) - 1}, "
            f"got {value!r}"
        )


def check_int(owner: object, name: str, value: int, bits: int) -> None:
    """Raise if ``value`` is not an int that fits ``bits`` signed bits."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(
            f"{type(owner).__name__}.{name} must be an integer in {low}..{high}, got {value!r}"
        )


def check_bytes(owner: object, name: str, value: bytes, length: int) -> None:
    """Raise if ``value`` is not exactly ``length`` bytes."""
    if not isinstance(value, bytes) or len(value) != length:
        raise LocalProtocolError(f"{type(owner).__name__}.{name} must be {length} bytes")


def check_string(owner: object, name: str, value: str) -> None:
    """Raise if ``value`` does not fit a length-prefixed UTF-8 string field."""
    if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_STRING_BYTES:
        raise LocalProtocolError(
            f"{type(owner).__name__}.{name} must be text of at most {MAX_STRING_BYTES} UTF-8 bytes"
        )
