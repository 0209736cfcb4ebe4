"""Several bands of one `companion sim` server paired at once from one host process.

A host with several bands (a group class) connects them together; each pairing
runs its own numeric comparison on its own link, through one adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator

from companion.band import Band
from companion.sim.remote import remote_backend

_BANDS = 8
_TIMEOUT_S = 15.0


@contextlib.asynccontextmanager
async def _companion_sim(*args: str) -> AsyncIterator[str]:
    """`companion sim ARGS` in another process, stdin not a terminal; its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "sim", "--port", "0", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        ready = (await asyncio.wait_for(process.stdout.readline(), _TIMEOUT_S)).decode()
        url = re.search(r"sim://127\.0\.0\.1:\d+", ready)
        assert url is not None, ready
        yield url.group(0)
    finally:
        process.terminate()
        _out, err = await process.communicate()
    assert "Traceback" not in err.decode(), err.decode()


async def test_eight_bands_of_one_server_pair_at_once_through_one_adapter() -> None:
    async with _companion_sim("--bands", str(_BANDS), "--auto-confirm") as url:
        backend = remote_backend(url)  # one adapter, as one Bluetooth dongle
        async with contextlib.AsyncExitStack() as stack:
            connects = [
                stack.enter_async_context(Band.connect(f"Companion{n + 1}", backend=backend))
                for n in range(_BANDS)
            ]
            async with asyncio.timeout(_TIMEOUT_S):
                bands = await asyncio.gather(*connects)
            assert sorted(band.info.serial for band in bands) == [
                f"SIM{n + 1:04d}" for n in range(_BANDS)
            ]
            # Paired for real: a control command needs the confirmed link, and each band answers.
            async with asyncio.timeout(_TIMEOUT_S):
                await asyncio.gather(*(band.sync_time() for band in bands))
