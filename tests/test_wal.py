"""The history's write-ahead log is checkpointed by a thread, never inside a commit."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from companion.events import HeartRate, SessionEvent
from companion.plan import builtin_plan
from companion.store import Store
from companion.wal import CHECKPOINT_BYTES, WalCheckpoints

_AT = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


def _wal_size(path: Path) -> int:
    try:
        return os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        return 0


def _record_samples(store: Store, first: int, count: int) -> None:
    for number in range(first, first + count):
        sample = HeartRate(bpm=60 + number % 100, t=float(number), rr_ms=(812.5,), contact=True)
        store.record(SessionEvent("band-1", "s1", number, _AT, sample))


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "companion-wal-checkpoint"]


def _wait_for_checkpoints(within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while _checkpoint_threads():
        assert time.monotonic() < deadline, "a checkpoint thread did not finish"
        time.sleep(0.01)


def test_no_commit_checkpoints_inline_so_the_wal_grows_until_the_thread_runs(
    tmp_path: Path,
) -> None:
    # SQLite's own checkpoint would run inside the commit that passes 1000 pages (4 MB),
    # so the WAL would never pass ~4 MB. With the checkpoint thread held off, it does.
    path = tmp_path / "history.sqlite3"
    with Store(path) as store:
        store.begin_session("s1", "band-1", builtin_plan("back-5"), _AT)
        held = WalCheckpoints.of(path)._running
        with held:
            _record_samples(store, 1, 800)  # each commit adds a few 4 kB pages to the WAL
            assert _wal_size(path) > 6 * CHECKPOINT_BYTES
            assert not _checkpoint_threads()
        _record_samples(store, 801, 1)  # the first write with nothing holding it back
        _wait_for_checkpoints()
        _record_samples(store, 802, 1)  # the write after a checkpoint truncates the WAL
        assert _wal_size(path) < CHECKPOINT_BYTES
        assert len(store.heart_rate("s1")) == 802


def test_a_checkpoint_of_a_file_removed_meanwhile_creates_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone.sqlite3"
    with caplog.at_level(logging.WARNING, logger="companion.wal"):
        WalCheckpoints.of(path).run()
    assert not path.exists()
    assert "checkpoint of" in caplog.text
    assert "stay in the WAL" in caplog.text


def test_a_checkpointed_wal_is_not_due_again_before_a_write(tmp_path: Path) -> None:
    # The writers of one file check together: one checkpoint must not make every one of
    # them checkpoint the same, already copied WAL again, second after second.
    path = tmp_path / "history.sqlite3"
    with Store(path) as store, Store(path) as other:
        store.begin_session("s1", "band-1", builtin_plan("back-5"), _AT)
        checkpoints = WalCheckpoints.of(path)
        assert WalCheckpoints.of(str(path)) is checkpoints
        with checkpoints._running:
            _record_samples(store, 1, 200)
        assert _wal_size(path) > CHECKPOINT_BYTES
        assert checkpoints.due()
        checkpoints.run()
        assert not checkpoints.due()
        _record_samples(other, 201, 1)
        assert not checkpoints.due()  # that write truncated the WAL
