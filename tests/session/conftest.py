"""Helpers to put a host Band and a virtual band on one in-process link.

Tests here run under a virtual-time event loop (``@pytest.mark.looptime``):
the loop's clock jumps over idle waits, so a 25-minute workout takes a
fraction of a second while every cue is still fired by the band's own timer.
The world is built inside the test (not in a fixture) so that it lives
entirely on the virtual clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from companion.band import Band
from companion.sim import BandCore, VirtualBand, VirtualBandConfig, VirtualWorld
from companion.store import Store


@contextlib.asynccontextmanager
async def connected(
    config: VirtualBandConfig | None = None, **band_options: object
) -> AsyncIterator[tuple[VirtualBand, Band]]:
    """A virtual band and a host :class:`Band` connected to it.

    The band runs the protocol implementation the ``band_core`` fixture picked (the
    reference one unless a test module asks for ``band_core``).
    """
    config = config or VirtualBandConfig()
    if config.core is BandCore.REFERENCE:
        config = dataclasses.replace(config, core=_core[0])
    async with VirtualWorld() as world:
        virtual = await world.add_band(config)
        async with Band.connect(virtual.address, backend=world.backend, **band_options) as band:  # type: ignore[arg-type]
            yield virtual, band


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "sessions.sqlite3")


_core = [BandCore.REFERENCE]


@pytest.fixture(params=list(BandCore), ids=lambda c: c.value)
def band_core(request: pytest.FixtureRequest) -> Iterator[BandCore]:
    """Run the test once per band implementation: the reference, the MicroPython firmware
    and the Bangle.js app (under node, behind the Espruino shim).

    A module opts in with ``pytestmark = pytest.mark.usefixtures("band_core")``.
    """
    _core[0] = request.param
    try:
        yield request.param
    finally:
        _core[0] = BandCore.REFERENCE
