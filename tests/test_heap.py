"""A host's long-lived objects leave Python's full collections; young garbage is still freed."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from companion.heap import freeze_long_lived, keep_long_lived


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as it was


def test_what_lives_now_leaves_the_full_collections_and_young_cycles_are_freed() -> None:
    kept = _Node()
    garbage = _Node()
    garbage.other = _Node()
    garbage.other.other = garbage  # a cycle only the collector frees
    gone = weakref.ref(garbage)
    del garbage
    frozen_before = gc.get_freeze_count()
    freeze_long_lived()
    assert gone() is None
    assert gc.get_freeze_count() > frozen_before
    assert not any(obj is kept for obj in gc.get_objects())  # no collection walks it now


async def test_what_sessions_add_later_is_frozen_on_the_next_round() -> None:
    keeper = asyncio.create_task(keep_long_lived(every_s=0.01))
    await asyncio.sleep(0)
    later = [_Node() for _ in range(1000)]
    assert any(obj is later[0] for obj in gc.get_objects())
    await asyncio.sleep(0.05)
    keeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await keeper
    walked = {id(obj) for obj in gc.get_objects()}
    assert not any(id(node) in walked for node in later)
