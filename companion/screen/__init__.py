"""companion.screen: the class screen, a live page of a group class for the studio's TV.

:class:`ClassScreen` serves it from one local web server (uvicorn); the page
and its script ship in this package, so it works with no internet.
:func:`snapshot_to_json` is the one mapping from a
:class:`~companion.group_state.ClassSnapshot` to what the page reads.

uvicorn comes with the optional ``screen`` extra (``pip install
'companion[screen]'``); without it, importing this package raises a
:class:`~companion.extras.MissingExtraError` that names the extra.
"""

from __future__ import annotations

from ..extras import MissingExtraError

try:
    import uvicorn  # noqa: F401  (checked first: the server below needs it)
except ImportError as exc:
    raise MissingExtraError("the class screen", "screen", missing=exc.name) from exc

from ..group_json import COME_CLOSER_AFTER_S, LOW_BATTERY_PERCENT, snapshot_to_json
from .app import ClassSource, ScreenApp
from .server import ClassScreen

__all__ = [
    "COME_CLOSER_AFTER_S",
    "LOW_BATTERY_PERCENT",
    "ClassScreen",
    "ClassSource",
    "ScreenApp",
    "snapshot_to_json",
]
