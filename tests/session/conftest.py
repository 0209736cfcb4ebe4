"""Helpers to put a host Band and a virtual band on one in-process link.

Tests here run under a virtual-time event loop (``@pytest.mark.looptime``):
the loop's clock jumps over idle waits, so a 25-minute workout takes a
fraction of a second while every cue is still fired by the band's own timer.
The world is built inside the test (not in a fixture) so that it lives
entirely on the virtual clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from companion.band import Band
from companion.sim import VirtualBand, VirtualBandConfig, VirtualWorld
from companion.store import Store


@contextlib.asynccontextmanager
async def connected(
    config: VirtualBandConfig | None = None, **band_options: object
) -> AsyncIterator[tuple[VirtualBand, Band]]:
    """A virtual band and a host :class:`Band` connected to it."""
    async with VirtualWorld() as world:
        virtual = await world.add_band(config or VirtualBandConfig())
        async with Band.connect(virtual.address, backend=world.backend, **band_options) as band:  # type: ignore[arg-type]
            yield virtual, band


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "sessions.sqlite3")
