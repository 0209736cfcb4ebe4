"""companion: the host library for BLE fitness bands that run band-timed workout cues."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
