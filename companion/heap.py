"""Python's full garbage collections, kept from stalling a host of many bands.

A host of a few hundred bands holds a large graph of objects that live as long
as the process: each link's Bluetooth stack, bleak's view of its services,
every session's plan and events. CPython collects its oldest generation
whenever that has grown by a quarter, and each of those collections walks all
of it with the event loop stopped: measured at 300 bands, one pass took 175 ms,
and the heart-rate samples that arrived meanwhile waited 200 ms for it.

:func:`keep_long_lived` moves what has survived so far out of the collector's
walks (``gc.freeze``), and does it again every few seconds, so what sessions
add joins it. Each time it first collects the young generations, so short-lived
cycles are still freed. The price: an object frozen while alive and later
garbage *in a reference cycle* stays until the process ends (objects freed by
their reference count, most of them, are freed as before). A host that runs
for a class loses little; call it from an application, not from a library
that shares the process with others.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Final, NoReturn

__all__ = ["freeze_long_lived", "keep_long_lived"]

FREEZE_EVERY_S: Final = 10.0


def freeze_long_lived() -> None:
    """Collect the young generations, then keep every object left out of full collections."""
    gc.collect(1)
    gc.freeze()


async def keep_long_lived(every_s: float = FREEZE_EVERY_S) -> NoReturn:
    """:func:`freeze_long_lived` now and every ``every_s`` seconds, until cancelled."""
    while True:
        freeze_long_lived()
        await asyncio.sleep(every_s)
