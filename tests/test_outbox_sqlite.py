"""What only the SQLite outbox promises: the file, its schema, and its failures.

Everything here runs against real SQLite files in tmp_path. The shared contract is in
test_outbox_contract.py; killing a writer mid-flight is in test_outbox_crash.py.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.outbox import (
    SCHEMA_VERSION,
    EventState,
    GroupCommitPolicy,
    OutboxClosed,
    OutboxError,
    OutboxEvent,
    OutboxLimits,
    OutboxSchemaError,
    OutboxStorageError,
    SqliteOutbox,
)
from edge_agent.outbox.migrations import STEPS, migrate
from edge_agent.outbox.sqlite_file import connect


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to look at (or tamper with) a store behind the outbox's back."""
    return sqlite3.connect(str(path), isolation_level=None)


def test_committed_events_survive_a_reopen(tmp_path: Path) -> None:
    """Everything committed is there after close and reopen, and seqs continue."""
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as outbox:
        events = [outbox.append("kiosk-1", "loan", f'{{"n": {i}}}') for i in range(5)]
        outbox.mark_sent("kiosk-1", [1, 2])
        outbox.mark_confirmed("kiosk-1", [1])
        outbox.dead_letter("kiosk-1", 3, "refused")
    with SqliteOutbox(path) as outbox:
        stored = [outbox.get("kiosk-1", e.seq) for e in events]
        assert [e.payload for e in stored if e] == [e.payload for e in events]
        assert [e.state for e in stored if e] == [
            EventState.CONFIRMED,
            EventState.SENT,
            EventState.DEAD,
            EventState.PENDING,
            EventState.PENDING,
        ]
        assert outbox.append("kiosk-1", "loan", "{}").seq == 6


def test_connections_use_wal_and_synchronous_full(tmp_path: Path) -> None:
    """connect() puts the file in WAL mode and the connection in synchronous=FULL."""
    path = tmp_path / "outbox.sqlite"
    conn = connect(path, busy_timeout_s=1)
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert conn.isolation_level is None
    finally:
        conn.close()
    SqliteOutbox(path).close()
    check = raw(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        check.close()


def test_device_seq_and_event_id_are_unique_keys(tmp_path: Path) -> None:
    """The file itself refuses a second (device_id, seq) and a second event_id."""
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as outbox:
        event = outbox.append("kiosk-1", "loan", "{}")
    conn = raw(path)
    insert = (
        "INSERT INTO outbox_events(device_id, seq, event_id, kind, payload, event_time,"
        " clock_trusted, state, created_at) VALUES (?, ?, ?, 'loan', '{}', 0, 1, 'pending', 0)"
    )
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(insert, ("kiosk-1", 1, "another-id"))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(insert, ("kiosk-1", 2, event.event_id))
    finally:
        conn.close()


def test_stats_report_the_size_on_disk(tmp_path: Path) -> None:
    """storage_bytes is the database plus its WAL, as the file system sees them."""
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as outbox:
        outbox.append("k", "loan", '"' + "x" * 5000 + '"')
        on_disk = sum(p.stat().st_size for p in tmp_path.iterdir() if not p.name.endswith("-shm"))
        assert outbox.stats().storage_bytes == on_disk


# ----------------------------------------------------------------------------- migrations


def test_version_1_file_is_migrated_with_its_events(tmp_path: Path) -> None:
    """Opening a version-1 store adds the counters, filled in from the events it holds."""
    path = tmp_path / "old.sqlite"
    conn = raw(path)
    migrate(conn, STEPS[:1])
    rows = [("k", 1, "pending", '"é"'), ("k", 2, "sent", "{}"), ("g", 7, "dead", "[1]")]
    for device, seq, state, payload in rows:
        conn.execute(
            "INSERT INTO outbox_events(device_id, seq, event_id, kind, payload, event_time,"
            " clock_trusted, state, created_at) VALUES (?, ?, ?, 'loan', ?, 0, 1, ?, 0)",
            (device, seq, f"id-{device}-{seq}", payload, state),
        )
    conn.execute("INSERT INTO outbox_devices VALUES ('k', 0), ('g', 5)")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with SqliteOutbox(path) as outbox:
        stats = outbox.stats()
        assert stats.counts[EventState.PENDING] == 1
        assert stats.counts[EventState.SENT] == 1
        assert stats.counts[EventState.DEAD] == 1
        assert stats.payload_bytes[EventState.PENDING] == 4
        assert dict(stats.last_seq) == {"k": 2, "g": 7}
        assert outbox.append("g", "loan", "{}").seq == 8
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_version_2_file_keeps_its_counts_under_the_watermark(tmp_path: Path) -> None:
    """Version 3 starts its watermark at the highest id the version-2 trigger counted."""
    path = tmp_path / "v2.sqlite"
    conn = raw(path)
    migrate(conn, STEPS[:2])
    for seq, state in [(1, "confirmed"), (2, "sent"), (3, "pending")]:
        conn.execute(
            "INSERT INTO outbox_events(device_id, seq, event_id, kind, payload, event_time,"
            " clock_trusted, state, created_at) VALUES ('k', ?, ?, 'loan', '[1]', 0, 1, ?, 0)",
            (seq, f"id-{seq}", state),
        )
    conn.close()
    with SqliteOutbox(path) as outbox:
        outbox.append("k", "loan", "{}")
        outbox.mark_confirmed("k", [2])
        stats = outbox.stats()
        assert stats.counts[EventState.PENDING] == 2
        assert stats.payload_bytes[EventState.PENDING] == 5
        assert stats.counts[EventState.SENT] == 0
        assert stats.counts[EventState.CONFIRMED] == 2
    conn = raw(path)
    assert conn.execute("SELECT through FROM outbox_counted").fetchone()[0] == 4
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_an_append_commit_leaves_the_totals_alone(tmp_path: Path) -> None:
    """Appends are counted from the watermark, so their commits write no counter row."""
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as outbox:
        outbox.append("k", "loan", "{}")
        outbox.mark_confirmed("k", [1])  # folds: the totals now include event 1
        look = raw(path)
        before = look.execute("SELECT * FROM outbox_state_totals ORDER BY state").fetchall()
        for _ in range(3):
            outbox.append("k", "loan", '"ab"')
        after = look.execute("SELECT * FROM outbox_state_totals ORDER BY state").fetchall()
        assert after == before
        assert look.execute("SELECT through FROM outbox_counted").fetchone()[0] == 1
        look.close()
        stats = outbox.stats()
        assert stats.counts[EventState.PENDING] == 3
        assert stats.payload_bytes[EventState.PENDING] == 12


def test_counts_stay_exact_when_pruned_ids_come_round_again(tmp_path: Path) -> None:
    """SQLite reuses the ids of deleted newest rows; the watermark follows them down."""
    now = [1000.0]
    with SqliteOutbox(tmp_path / "outbox.sqlite", clock=lambda: now[0]) as outbox:
        for _ in range(3):
            outbox.append("k", "loan", "{}")
        outbox.mark_confirmed("k", [1, 2, 3])
        now[0] += 10
        assert outbox.prune_confirmed(5) == 3
        for _ in range(2):
            outbox.append("k", "loan", '"abc"')  # ids 1 and 2 again
        outbox.dead_letter("k", 4, "refused")
        stats = outbox.stats()
        assert stats.counts[EventState.PENDING] == 1
        assert stats.counts[EventState.DEAD] == 1
        assert stats.counts[EventState.CONFIRMED] == 0
        assert stats.payload_bytes[EventState.PENDING] == 5
        assert stats.payload_bytes[EventState.DEAD] == 5


def test_newer_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A store from a newer libedge raises OutboxSchemaError and is not changed."""
    path = tmp_path / "new.sqlite"
    with SqliteOutbox(path) as outbox:
        outbox.append("k", "loan", "{}")
    conn = raw(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(OutboxSchemaError, match="schema version 99"):
        SqliteOutbox(path)
    assert path.read_bytes() == before


def test_file_of_garbage_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A file that is not a database raises OutboxSchemaError naming it; it is kept."""
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(OutboxSchemaError, match="not a SQLite database"):
        SqliteOutbox(path)
    assert path.read_bytes() == before


def test_short_garbage_is_not_taken_for_an_empty_store(tmp_path: Path) -> None:
    """A file shorter than a page is refused too (SQLite alone would write over it)."""
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"\x00")
    with pytest.raises(OutboxSchemaError, match="not a SQLite database"):
        SqliteOutbox(path)
    assert path.read_bytes() == b"\x00"


def test_a_corrupt_database_is_refused_untouched(tmp_path: Path) -> None:
    """A SQLite file whose pages are garbage gives an OutboxError and stays as it was."""
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as outbox:
        outbox.append("k", "loan", "{}")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck page 1 after the header
    path.write_bytes(bytes(data))
    with pytest.raises(OutboxError):
        SqliteOutbox(path).close()
    assert path.read_bytes() == bytes(data)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(min_size=1, max_size=3000))
def test_any_garbage_file_is_refused_cleanly(tmp_path: Path, garbage: bytes) -> None:
    """Random bytes where the store should be give an OutboxError, never a crash or a rewrite."""
    path = tmp_path / "garbage.sqlite"
    for leftover in tmp_path.glob("garbage.sqlite*"):
        leftover.unlink()
    path.write_bytes(garbage)
    with pytest.raises(OutboxError):
        SqliteOutbox(path).close()
    assert path.read_bytes() == garbage


def test_outbox_tables_without_a_version_are_refused(tmp_path: Path) -> None:
    """A file with outbox tables but user_version 0 was tampered with; it is refused."""
    path = tmp_path / "outbox.sqlite"
    SqliteOutbox(path).close()
    conn = raw(path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    with pytest.raises(OutboxSchemaError, match="user_version 0"):
        SqliteOutbox(path)


def test_other_tables_in_the_file_are_left_alone(tmp_path: Path) -> None:
    """The outbox can share a file with another component's tables and keeps its hands off."""
    path = tmp_path / "agent.sqlite"
    conn = raw(path)
    conn.execute("CREATE TABLE cache_items(barcode TEXT PRIMARY KEY, title TEXT)")
    conn.execute("INSERT INTO cache_items VALUES ('3900', 'Dune')")
    conn.close()
    with SqliteOutbox(path) as outbox:
        outbox.append("k", "loan", "{}")
    conn = raw(path)
    assert conn.execute("SELECT title FROM cache_items").fetchall() == [("Dune",)]
    conn.close()


def test_a_failing_migration_step_changes_nothing(tmp_path: Path) -> None:
    """A step that fails is rolled back with its version bump; earlier steps stay."""

    def broken(db: object) -> None:
        conn.execute("CREATE TABLE half_done(x)")
        raise RuntimeError("step 3 cannot cope")

    path = tmp_path / "outbox.sqlite"
    conn = raw(path)
    with pytest.raises(OutboxStorageError, match="step 3 cannot cope"):
        migrate(conn, [*STEPS, broken])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(STEPS)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in names
    assert "outbox_events" in names
    conn.close()


# ----------------------------------------------------------------------------- failures


def test_disk_full_is_named_and_clears_when_space_returns(tmp_path: Path) -> None:
    """At SQLITE_FULL appends fail saying so; nothing committed is lost; pruning frees room."""
    path = tmp_path / "outbox.sqlite"
    payload = '"' + "x" * 1500 + '"'
    with SqliteOutbox(path, max_db_bytes=48 * 4096) as outbox:
        stored: list[OutboxEvent] = []
        failure: OutboxStorageError | None = None
        for _ in range(1000):
            try:
                stored.append(outbox.append("k", "loan", payload))
            except OutboxStorageError as exc:
                failure = exc
                break
        assert failure is not None, "the capped file never filled up"
        assert "database or disk is full (SQLITE_FULL)" in str(failure)
        assert "nothing was written" in str(failure)
        assert len(stored) > 5
        assert [e.seq for e in outbox.due("k", 1000, resend_after=0)] == [e.seq for e in stored]
        with pytest.raises(OutboxStorageError, match="full"):
            outbox.append("k", "loan", payload)
        assert outbox.mark_confirmed("k", [e.seq for e in stored[:-2]]) == len(stored) - 2
        assert outbox.prune_confirmed(0) == len(stored) - 2
        again = outbox.append("k", "loan", payload)
        assert again.seq == len(stored) + 1
    with SqliteOutbox(path) as outbox:
        assert [e.seq for e in outbox.due("k", 10, resend_after=0)] == [
            stored[-2].seq,
            stored[-1].seq,
            again.seq,
        ]


def test_a_write_sqlite_refuses_fails_alone(tmp_path: Path) -> None:
    """When SQLite refuses one event, only its caller gets the error; the others commit."""
    path = tmp_path / "outbox.sqlite"
    SqliteOutbox(path).close()
    conn = raw(path)
    conn.execute(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON outbox_events WHEN NEW.kind = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'boom refused by a trigger'); END"
    )
    conn.close()
    threads = 8
    start = threading.Barrier(threads)
    outcomes: list[object] = [None] * threads
    with SqliteOutbox(path) as outbox:

        def work(index: int) -> None:
            start.wait()
            for round_ in range(10):
                kind = "boom" if (index, round_) == (3, 5) else "loan"
                try:
                    outbox.append("k", kind, "{}")
                except OutboxStorageError as exc:
                    outcomes[index] = exc

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        failed = [o for o in outcomes if o is not None]
        assert len(failed) == 1
        assert "boom refused by a trigger" in str(failed[0])
        assert outbox.stats().last_seq == {"k": threads * 10 - 1}
        assert len(outbox.due("k", 1000, resend_after=0)) == threads * 10 - 1


def test_events_appended_by_another_process_are_not_overwritten(tmp_path: Path) -> None:
    """If another writer took the next seq behind the outbox's back, append skips past it."""
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as outbox:
        assert outbox.append("k", "loan", "{}").seq == 1  # the writer now remembers seq 1
        other = raw(path)
        other.execute(
            "INSERT INTO outbox_events(device_id, seq, event_id, kind, payload, event_time,"
            " clock_trusted, state, created_at) VALUES ('k', 2, 'x', 'loan', '{}', 0, 1,"
            " 'pending', 0)"
        )
        other.close()
        assert outbox.append("k", "loan", '{"mine": true}').seq == 3
        stored = outbox.get("k", 2)
        assert stored is not None
        assert stored.event_id == "x"


def test_a_stalled_writer_times_out_without_hanging_callers(tmp_path: Path) -> None:
    """With the file locked elsewhere, callers get a timeout that says what was written."""
    path = tmp_path / "outbox.sqlite"
    policy = GroupCommitPolicy(commit_timeout_s=1.0)
    with SqliteOutbox(path, group_commit=policy, busy_timeout_s=30) as outbox:
        blocker = raw(path)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer waits for it
        try:
            with pytest.raises(OutboxStorageError, match="may or may not be stored"):
                outbox.append("k", "loan", '{"n": "first"}')
            with pytest.raises(OutboxStorageError, match="cancelled, nothing was written"):
                outbox.append("k", "loan", '{"n": "second"}')
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        third = outbox.append("k", "loan", '{"n": "third"}')
        first = outbox.get("k", 1)
        assert first is not None
        assert first.payload == '{"n": "first"}'
        assert third.seq == 2
        assert outbox.get("k", 3) is None


def test_close_finishes_what_was_submitted(tmp_path: Path) -> None:
    """Appends racing close() either commit (and are there after reopen) or say closed."""
    path = tmp_path / "outbox.sqlite"
    outbox = SqliteOutbox(path)
    committed: list[list[OutboxEvent]] = [[] for _ in range(6)]
    refused = [0] * 6
    started = threading.Barrier(7)

    def work(index: int) -> None:
        started.wait()
        while True:
            try:
                committed[index].append(outbox.append(f"d{index}", "loan", "{}"))
            except OutboxClosed:
                refused[index] += 1
                return

    workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    started.wait()
    outbox.append("main", "loan", "{}")
    outbox.close()
    for worker in workers:
        worker.join()
    assert refused == [1] * 6
    with SqliteOutbox(path) as again:
        for index, events in enumerate(committed):
            assert again.stats().last_seq.get(f"d{index}", 0) == len(events)
            for event in events:
                assert again.get(event.device_id, event.seq) == event


class WriterKiller(BaseException):
    """Stands for an exception that ends a thread (SystemExit from a callback, …)."""


def test_a_dying_writer_answers_every_caller(tmp_path: Path) -> None:
    """If the writer thread dies, its callers and later ones get errors, never a hang."""
    path = tmp_path / "outbox.sqlite"
    calls = 0

    def on_commit(jobs: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise WriterKiller

    outbox = SqliteOutbox(path, on_commit=on_commit)
    try:
        outbox.append("k", "loan", '{"n": 1}')
        with pytest.raises(OutboxStorageError, match="may or may not be stored"):
            outbox.append("k", "loan", '{"n": 2}')
        with pytest.raises(OutboxStorageError, match="writer stopped"):
            outbox.append("k", "loan", '{"n": 3}')
        assert len(outbox.due("k", 10, resend_after=0)) == 2  # the second did commit
    finally:
        outbox.close()


def test_group_commit_shares_commits_between_threads(tmp_path: Path) -> None:
    """Appends from several threads share commits; every event is in exactly one."""
    commits: list[int] = []
    threads, each = 8, 60
    with SqliteOutbox(
        tmp_path / "outbox.sqlite",
        on_commit=commits.append,
        limits=OutboxLimits(max_rows=None, max_bytes=None),
    ) as outbox:
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for _ in range(each):
                outbox.append("k", "loan", "{}")

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sum(commits) == threads * each
        assert max(commits) >= 2
        assert len(commits) < threads * each
