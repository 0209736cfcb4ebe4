"""The optional extras: what a missing one raises.

The core (a real band, the history, the CLI) installs with ``pip install
companion``; the virtual band, the MQTT relay and the report's chart each need
a library of their own, in an extra (``sim``, ``mqtt``, ``report``; ``all`` for
every one). The package behind an extra raises :class:`MissingExtraError` on
import when that library is absent, so the message says what to install
instead of naming a module the user never asked for.
"""

from __future__ import annotations

from .errors import CompanionError

__all__ = ["MissingExtraError"]


class MissingExtraError(ImportError, CompanionError):
    """An optional extra is not installed; the message names it and the ``pip`` line.

    An :class:`ImportError`, because that is what a missing dependency is to a
    Python caller, and a :class:`CompanionError`, so the CLI shows it as one line.
    """

    def __init__(self, feature: str, extra: str, *, missing: str | None = None) -> None:
        super().__init__(
            f"{feature} needs the {extra} extra: pip install 'companion[{extra}]'", name=missing
        )
        self.extra = extra
