"""`companion sim` asks its terminal, the bands' wearer, to confirm every pairing code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator

import pytest

from companion.band import Band
from companion.errors import PairingRequiredError
from companion.sim.remote import remote_backend

_TIMEOUT_S = 20.0


@contextlib.asynccontextmanager
async def _companion_sim() -> AsyncIterator[tuple[str, asyncio.StreamReader, int]]:
    """`companion sim` with a terminal on stdin: its URL, its output and the terminal's keys."""
    keys, terminal = os.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "sim", "--port", "0",
        stdin=terminal, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(terminal)
    assert process.stdout is not None
    try:
        ready = (await asyncio.wait_for(process.stdout.readline(), _TIMEOUT_S)).decode()
        url = re.search(r"sim://127\.0\.0\.1:\d+", ready)
        assert url is not None, ready
        yield url.group(0), process.stdout, keys
    finally:
        process.terminate()
        _out, err = await process.communicate()
        os.close(keys)
    assert "Traceback" not in err.decode(), err.decode()


async def _prompt(output: asyncio.StreamReader) -> str:
    """The code the band shows in its pairing prompt."""
    while True:
        line = (await asyncio.wait_for(output.readline(), _TIMEOUT_S)).decode()
        assert line, "companion sim ended without asking"
        asked = re.search(r"asks to pair; the band shows (\d{6})", line)
        if asked:
            return asked.group(1)


async def test_the_wearer_confirms_the_code_the_host_shows_and_the_host_pairs() -> None:
    shown: list[str] = []
    host_showed = asyncio.Event()

    def show(code: int) -> None:
        shown.append(f"{code:06d}")
        host_showed.set()

    async with _companion_sim() as (url, output, keys):
        backend = remote_backend(url, show_code=show)
        connecting = asyncio.create_task(Band.connect("Companion", backend=backend).__aenter__())
        code = await _prompt(output)
        # The host's side computes its code a moment after the band's.
        await asyncio.wait_for(host_showed.wait(), _TIMEOUT_S)
        assert shown == [code]  # numeric comparison: both sides show the same six digits
        os.write(keys, b"y\n")
        band = await asyncio.wait_for(connecting, _TIMEOUT_S)
        try:
            assert band.info.serial == "SIM0001"
        finally:
            await band.__aexit__(None, None, None)
        said = (await asyncio.wait_for(output.read(4096), _TIMEOUT_S)).decode()
        assert f"confirmed {code}" in said


async def test_the_wearer_refuses_and_the_host_is_told_how_pairing_works() -> None:
    async with _companion_sim() as (url, output, keys):
        connecting = asyncio.create_task(
            Band.connect("Companion", backend=remote_backend(url)).__aenter__()
        )
        await _prompt(output)
        os.write(keys, b"n\n")
        with pytest.raises(PairingRequiredError) as refused:
            await asyncio.wait_for(connecting, _TIMEOUT_S)
        said = str(refused.value)
        assert "the six-digit codes on this computer and on the band did not match" in said
        assert "the band did not confirm the six-digit code" in said  # the band's reason, in words
        assert "companion pair" in said  # what to do next
        assert "ProtocolError" not in said
        assert "CONFIRM_VALUE_FAILED [" not in said
