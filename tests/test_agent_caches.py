"""The offline caches in SQLite: versions only go up, full replaces, a delta merges."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.caches import CacheError, CacheStore
from edge_agent.contract import CacheUpdate, ItemStates, LoanPolicy, PatronBlocks
from edge_agent.outbox import EventState, SqliteOutbox

NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def update(version: int, body: object, full: bool = True) -> CacheUpdate:
    return CacheUpdate(library_id="lib", version=version, full=full, time=NOW, body=body)  # type: ignore[arg-type]


def blocks(*ids: str) -> PatronBlocks:
    return PatronBlocks(blocked=[{"patron_id": i} for i in ids])  # type: ignore[misc]


def test_versions_only_go_up_and_full_replaces_while_a_delta_merges(tmp_path: Path) -> None:
    """An older or equal version is ignored; full=True replaces the cache, full=False merges."""
    with CacheStore(tmp_path / "agent.sqlite") as store:
        assert store.versions() == {}
        assert store.apply(update(3, blocks("P1", "P2")))
        assert not store.apply(update(3, blocks("P9")))  # same version: a re-delivery
        assert not store.apply(update(2, blocks()))  # older
        assert [b.patron_id for b in store.patron_blocks()] == ["P1", "P2"]
        assert store.apply(update(4, blocks("P3"), full=False))
        assert [b.patron_id for b in store.patron_blocks()] == ["P1", "P2", "P3"]
        assert store.apply(update(5, blocks("P2")))
        assert [b.patron_id for b in store.patron_blocks()] == ["P2"]
        assert store.patron_block("P2") is not None
        assert store.patron_block("P1") is None
        assert store.versions() == {"patron_blocks": 5}
        info = store.info()["patron_blocks"]
        assert (info["version"], info["full"], info["entries"]) == (5, True, 1)


def test_item_states_and_loan_policy_are_kept_with_titles(tmp_path: Path) -> None:
    """Item states keep the title a gate shows; the loan policy is one value, replaced."""
    with CacheStore(tmp_path / "agent.sqlite") as store:
        items = [
            {"item_id": "I1", "state": "on_loan", "title": "Truyện Kiều"},
            {"item_id": "I2", "state": "on_shelf", "not_for_offline_issue": True},
        ]
        store.apply(update(1, ItemStates(items=items)))  # type: ignore[arg-type]
        state = store.item_state("I1")
        assert state is not None
        assert state.title == "Truyện Kiều"
        assert store.item_state("I2").not_for_offline_issue is True  # type: ignore[union-attr]
        assert store.item_state("I3") is None
        assert store.loan_policy() is None
        store.apply(update(1, LoanPolicy(loan_days=7)))
        store.apply(update(2, LoanPolicy(loan_days=21, offline_max_items=1)))
        assert store.loan_policy() == LoanPolicy(loan_days=21, offline_max_items=1)
        assert store.item_states(limit=1, offset=1)[0].item_id == "I2"


def test_the_cache_tables_live_beside_the_outbox_in_one_file(tmp_path: Path) -> None:
    """The outbox and the caches share agent.sqlite; each reopens the file intact."""
    path = tmp_path / "agent.sqlite"
    outbox = SqliteOutbox(path)
    outbox.append("k1", "checkin", json.dumps({"type": "checkin", "item_id": "X"}))
    with CacheStore(path) as store:
        store.apply(update(1, blocks("P1")))
    outbox.close()
    reopened = SqliteOutbox(path)
    assert reopened.stats().counts[EventState.PENDING] == 1
    reopened.close()
    with CacheStore(path) as store:
        assert store.versions() == {"patron_blocks": 1}


def test_cache_tables_of_a_newer_libedge_are_refused_not_rewritten(tmp_path: Path) -> None:
    """A file whose cache layout is newer than this code knows raises CacheError, untouched."""
    path = tmp_path / "agent.sqlite"
    with CacheStore(path) as store:
        store.apply(update(1, blocks("P1")))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO cache_schema(version) VALUES (99)")
    conn.close()
    with pytest.raises(CacheError, match="layout 99, newer"):
        CacheStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM cache_patron_blocks").fetchone() == (1,)
    conn.close()


def test_a_file_that_is_not_a_database_is_a_clear_cache_error(tmp_path: Path) -> None:
    """Garbage where the database should be is reported by name, not a stack of SQLite errors."""
    path = tmp_path / "agent.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CacheError, match=str(path)):
        CacheStore(path)


def test_reads_and_updates_from_several_threads_stay_consistent(tmp_path: Path) -> None:
    """While updates land, readers on other threads always see a whole version."""
    with CacheStore(tmp_path / "agent.sqlite") as store:
        errors: list[str] = []
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                ids = [b.patron_id for b in store.patron_blocks()]
                if ids and len(ids) != int(ids[0].split("-")[0]):
                    errors.append(f"a torn read: {ids[:3]}...")

        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in readers:
            thread.start()
        for version in range(1, 60):
            store.apply(update(version, blocks(*(f"{version}-{i}" for i in range(version)))))
        done.set()
        for thread in readers:
            thread.join()
        assert errors == []
        assert store.versions() == {"patron_blocks": 59}


ops = st.lists(
    st.tuples(
        st.integers(1, 12),  # version
        st.booleans(),  # full
        st.dictionaries(
            st.sampled_from(["A", "B", "C", "D"]),
            st.sampled_from(["on_shelf", "on_loan", "on_hold", "missing"]),
            max_size=4,
        ),
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(sequence=ops)
def test_item_states_agree_with_a_simple_model(tmp_path_factory, sequence) -> None:  # type: ignore[no-untyped-def]
    """Any sequence of updates leaves the cache equal to a dict-and-version model."""
    path = tmp_path_factory.mktemp("model") / "agent.sqlite"
    model: dict[str, str] = {}
    version = 0
    with CacheStore(path) as store:
        for number, full, entries in sequence:
            body = ItemStates(items=[{"item_id": k, "state": v} for k, v in entries.items()])  # type: ignore[misc]
            applied = store.apply(update(number, body, full=full))
            assert applied == (number > version)
            if applied:
                version = number
                model = dict(entries) if full else {**model, **entries}
        assert {i.item_id: i.state for i in store.item_states()} == model
        assert store.versions().get("item_states", 0) == version
