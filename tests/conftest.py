"""Suite-wide pytest hooks."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Close the event loop a plugin left behind after a synchronous test.

    looptime asks the policy for "the" event loop around every test, sync ones
    included, which makes the policy create a loop nobody closes; the garbage
    collector later reports it as a ResourceWarning inside an unrelated test.
    """
    result = yield
    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = policy.get_event_loop()
        except RuntimeError:
            return result
    if not loop.is_running() and not loop.is_closed():
        loop.close()
        policy.set_event_loop(None)
    return result
