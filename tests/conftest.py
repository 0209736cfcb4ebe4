"""Suite-wide pytest hooks."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Give each synchronous test an event loop that is closed when it ends.

    looptime asks the policy for "the" event loop around every test, sync ones
    included; with none set, the policy creates one that nobody closes (a test
    that calls ``asyncio.run`` replaces it), and the garbage collector later
    reports it as a ResourceWarning inside an unrelated test.
    """
    function = getattr(item, "obj", None)
    if function is None or inspect.iscoroutinefunction(function):
        return (yield)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return (yield)
    finally:
        loop.close()
        asyncio.set_event_loop(None)
