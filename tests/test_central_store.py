"""The ingest pass on a real SQLite file: stored once, gaps, conflicts, circulation, exceptions."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.contract import (
    Checkin,
    Checkout,
    DeviceKind,
    DeviceStatus,
    Envelope,
    Renewal,
    SecurityWriteFailure,
    VisitorCount,
)
from edge_agent.contract.topics import event_topic, status_topic
from simulators.central import queries, store
from simulators.central.pipeline import Inbound, Ingestor, MarkCaches, SeenDevice
from simulators.central.seed import Seed, load_seed
from tests.test_central_common import NOW, TODAY, envelope, fixed_clock, write_seed

LIB = "test-library"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def seed(tmp_path: Path) -> Seed:
    return load_seed(write_seed(tmp_path))


@pytest.fixture
def conn(tmp_path: Path, seed: Seed) -> Iterator[sqlite3.Connection]:
    connection = store.connect(tmp_path / "central.sqlite")
    store.ensure_seeded(connection, seed, LIB, TODAY, NOW.isoformat())
    yield connection
    connection.close()


def ingestor(conn: sqlite3.Connection, seed: Seed, instance: str = "t1") -> Ingestor:
    return Ingestor(
        conn, instance=instance, library_id=LIB, policy=seed.policy, clock=fixed_clock, tz=TZ
    )


def msg(env: Envelope, device_id: str | None = None) -> Inbound:
    topic = event_topic(LIB, device_id or env.device_id, env.kind)
    return Inbound(topic, env.model_dump_json().encode())


def test_duplicates_are_dropped_counted_and_confirmed_again(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """The same envelope twice (in one pass and in a later one) is stored once, confirmed each time."""
    env = envelope(1)
    first = ingestor(conn, seed).run([msg(env), msg(env)])
    second = ingestor(conn, seed).run([msg(env)])
    assert first.receipts[(LIB, "kiosk-1")].confirmed == {1}
    assert second.receipts[(LIB, "kiosk-1")].confirmed == {1}
    assert (first.stored, second.stored) == (1, 0)
    stats = queries.stats(conn, {})
    assert stats.events == 1
    assert stats.duplicates == {"kiosk-1": 2}


def test_seq_reused_by_another_event_is_rejected_and_shown_to_staff(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """A second event under a stored seq (a reset device) is rejected, not confirmed, and listed."""
    ingestor(conn, seed).run([msg(envelope(1))])
    result = ingestor(conn, seed).run([msg(envelope(1))])
    draft = result.receipts[(LIB, "kiosk-1")]
    assert draft.confirmed == set()
    assert "already holds event" in draft.rejected[1]
    assert [e.reason for e in queries.exceptions(conn)] == ["seq_conflict"]
    assert queries.stats(conn, {}).rejected == {"conflict": 1}


def test_gaps_open_split_and_close_as_late_events_arrive(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """Seq 1 then 6 opens gap 2..5; 3 splits it; 2, 4 and 5 close it; the fills are counted."""
    run = ingestor(conn, seed).run
    run([msg(envelope(1)), msg(envelope(6))])
    assert [(g.first, g.last) for g in queries.gaps(conn)] == [(2, 5)]
    run([msg(envelope(3))])
    assert [(g.first, g.last) for g in queries.gaps(conn)] == [(2, 2), (4, 5)]
    run([msg(envelope(5)), msg(envelope(2)), msg(envelope(4))])
    assert queries.gaps(conn) == []
    stats = queries.stats(conn, {})
    assert (stats.events, stats.gaps_filled, stats.open_gaps, stats.missing) == (6, 4, 0, 0)


def test_gaps_are_per_device(conn: sqlite3.Connection, seed: Seed) -> None:
    """One device's numbers do not fill or open another's gaps."""
    ingestor(conn, seed).run(
        [msg(envelope(1)), msg(envelope(3)), msg(envelope(2, device_id="kiosk-2"))]
    )
    gaps = queries.gaps(conn)
    assert [(g.device_id, g.first, g.last) for g in gaps] == [
        ("kiosk-1", 2, 2),
        ("kiosk-2", 1, 1),
    ]


def test_rejected_event_is_accounted_for_and_not_a_gap(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """An invalid event with a readable seq is rejected in the receipt and leaves no gap."""
    forged = envelope(2, device_id="kiosk-2")
    result = ingestor(conn, seed).run(
        [msg(envelope(1)), msg(forged, device_id="kiosk-1"), msg(envelope(3))]
    )
    draft = result.receipts[(LIB, "kiosk-1")]
    assert draft.confirmed == {1, 3}
    assert set(draft.rejected) == {2}
    assert "differs from the topic" in draft.rejected[2]
    assert queries.gaps(conn) == []
    assert queries.stats(conn, {}).rejected == {"mismatch": 1}
    assert [e.device_id for e in queries.events(conn)] == ["kiosk-1", "kiosk-1"]


def test_garbage_and_foreign_messages_are_counted_with_reasons_not_payloads(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """Garbage is counted by category, its reason kept, its bytes nowhere in the database."""
    marker = b"PAYLOAD-MARKER-4711"
    result = ingestor(conn, seed).run(
        [
            Inbound(event_topic(LIB, "kiosk-1", "checkout"), b"\x00" + marker),
            Inbound("libedge/v1/other/kiosk-1/up/status", marker),
            Inbound(f"libedge/v1/{LIB}/kiosk-1/up/nonsense", marker),
        ]
    )
    assert result.receipts == {}
    assert queries.stats(conn, {}).rejected == {"malformed": 1, "foreign": 2}
    reasons = [r.reason for r in queries.rejected(conn)]
    assert any("Invalid JSON" in r for r in reasons)
    assert any("not served" in r for r in reasons)
    assert all(marker.decode() not in r for r in reasons)


def test_status_registers_the_device_and_asks_for_its_caches(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """A first status makes a device known (new) and stores its state; a second is not new."""
    status = DeviceStatus(
        library_id=LIB,
        device_id="gate-7",
        device_kind=DeviceKind.GATE,
        online=True,
        time=NOW,
        software_version="1.0",
    )
    message = Inbound(status_topic(LIB, "gate-7"), status.model_dump_json().encode())
    first = ingestor(conn, seed).run([message])
    again = ingestor(conn, seed).run([message])
    assert first.new_devices == [(LIB, "gate-7")]
    assert again.new_devices == []
    device = next(d for d in queries.devices(conn) if d.device_id == "gate-7")
    assert device.online is True
    assert device.kind == "gate"
    assert device.status == status


def test_staff_marks_and_seen_devices_pass_through(conn: sqlite3.Connection, seed: Seed) -> None:
    """Cache marks and devices seen elsewhere are handled inside the pass."""
    result = ingestor(conn, seed).run([MarkCaches(("patron_blocks",)), SeenDevice(LIB, "k-9")])
    assert result.changed == {"patron_blocks"}
    assert result.new_devices == [(LIB, "k-9")]


def checkout(seq: int, patron: str, item: str, offline: bool = False, **kw: object) -> Envelope:
    payload = Checkout(patron_id=patron, item_id=item, due_date=TODAY, offline=offline)
    return envelope(seq, payload, **kw)  # type: ignore[arg-type]


def test_checkout_and_checkin_move_the_item(conn: sqlite3.Connection, seed: Seed) -> None:
    """A checkout lends the item to the patron; the checkin returns it to the shelf."""
    result = ingestor(conn, seed).run([msg(checkout(1, "P-FREE", "I-SHELF"))])
    assert result.changed == {"item_states"}
    item = queries.item(conn, "I-SHELF")
    assert item is not None
    assert (item.state, item.patron_id, item.due_date) == (
        "on_loan",
        "P-FREE",
        TODAY,
    )
    ingestor(conn, seed).run([msg(envelope(2, Checkin(item_id="I-SHELF")))])
    item = queries.item(conn, "I-SHELF")
    assert item is not None
    assert (item.state, item.patron_id) == ("on_shelf", None)
    assert [e.outcome for e in queries.events(conn)] == ["applied", "applied"]
    assert queries.exceptions(conn) == []


def test_offline_loan_of_an_item_on_hold_is_an_exception_for_staff(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """An item lent offline while on hold for another is applied (it left) and listed for staff."""
    ingestor(conn, seed).run([msg(checkout(1, "P-FREE", "I-HELD", offline=True))])
    [problem] = queries.exceptions(conn)
    assert (problem.reason, problem.item_id, problem.patron_id) == (
        "item_on_hold",
        "I-HELD",
        "P-FREE",
    )
    assert problem.offline
    assert problem.applied
    assert "P-HOLDER" in problem.detail
    item = queries.item(conn, "I-HELD")
    assert item is not None
    assert item.state == "on_loan"
    assert item.holds == ("P-HOLDER",)
    assert queries.events(conn)[0].outcome == "exception"


@pytest.mark.parametrize(
    ("patron", "item", "offline", "reasons"),
    [
        ("P-BLOCKED", "I-SHELF", True, ["patron_blocked"]),
        ("P-FINES", "I-SHELF", True, ["patron_blocked"]),
        ("P-GHOST", "I-SHELF", True, ["patron_unknown"]),
        ("P-FULL", "I-SHELF", True, ["limit_reached"]),
        ("P-FREE", "I-REF", False, ["item_not_for_loan"]),
        ("P-FREE", "I-NOOFF", True, ["not_for_offline"]),
        ("P-HOLDER", "I-LOAN", False, ["item_already_on_loan"]),
    ],
)
def test_conflicting_checkouts_are_applied_and_listed(
    conn: sqlite3.Connection, seed: Seed, patron: str, item: str, offline: bool, reasons: list[str]
) -> None:
    """Each conflict with the model becomes exactly its exception; the item is on loan anyway."""
    ingestor(conn, seed).run([msg(checkout(1, patron, item, offline=offline))])
    assert [e.reason for e in queries.exceptions(conn)] == reasons
    record = queries.item(conn, item)
    assert record is not None
    assert (record.state, record.patron_id) == ("on_loan", patron)


def test_not_for_offline_applies_only_to_offline_loans(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """The same item lent online raises no exception."""
    ingestor(conn, seed).run([msg(checkout(1, "P-FREE", "I-NOOFF", offline=False))])
    assert queries.exceptions(conn) == []


def test_unknown_item_is_listed_and_not_applied(conn: sqlite3.Connection, seed: Seed) -> None:
    """A loan of an item not in the catalogue is stored, listed, and changes no item."""
    ingestor(conn, seed).run([msg(checkout(1, "P-FREE", "I-NOWHERE"))])
    [problem] = queries.exceptions(conn)
    assert problem.reason == "item_unknown"
    assert not problem.applied
    assert queries.item(conn, "I-NOWHERE") is None
    assert len(queries.events(conn)) == 1


def test_hold_patron_borrowing_fulfils_the_hold(conn: sqlite3.Connection, seed: Seed) -> None:
    """The patron a ready hold waits for borrows it: no exception, the hold is gone."""
    ingestor(conn, seed).run([msg(checkout(1, "P-FREE", "I-READY"))])
    assert queries.exceptions(conn) == []
    item = queries.item(conn, "I-READY")
    assert item is not None
    assert item.holds == ()
    assert item.state == "on_loan"


def test_checkin_of_held_item_goes_to_the_hold_shelf(conn: sqlite3.Connection, seed: Seed) -> None:
    """A returned item with a hold is on hold; without the kiosk's hold alert staff are told."""
    run = ingestor(conn, seed).run
    run([msg(envelope(1, Checkin(item_id="I-OVERDUE", hold_alert=True)))])
    assert queries.exceptions(conn) == []
    item = queries.item(conn, "I-OVERDUE")
    assert item is not None
    assert item.state == "on_hold"
    row = conn.execute("SELECT ready, pickup_by FROM holds WHERE item_id = 'I-OVERDUE'").fetchone()
    assert (row["ready"], row["pickup_by"]) == (1, (TODAY + dt.timedelta(days=4)).isoformat())
    run([msg(checkout(2, "P-HOLDER", "I-OVERDUE")), msg(checkout(3, "P-FREE", "I-SHELF"))])
    run([msg(envelope(4, Checkin(item_id="I-HELD", hold_alert=False, security_verified=False)))])
    assert sorted(e.reason for e in queries.exceptions(conn)) == [
        "hold_not_flagged",
        "security_failure",
    ]


def test_renewals_move_the_due_date_and_excess_is_listed(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """A renewal moves the due date; beyond the limit, on hold or not on loan it is listed."""
    due = TODAY + dt.timedelta(days=30)
    run = ingestor(conn, seed).run
    run([msg(envelope(1, Renewal(patron_id="P-FREE", item_id="I-LOAN", due_date=due)))])
    item = queries.item(conn, "I-LOAN")
    assert item is not None
    assert (item.due_date, item.renewals) == (due, 1)
    assert queries.exceptions(conn) == []
    run(
        [
            msg(envelope(2, Renewal(patron_id="P-FREE", item_id="I-LIMIT", due_date=due))),
            msg(envelope(3, Renewal(patron_id="P-FREE", item_id="I-OVERDUE", due_date=due))),
            msg(envelope(4, Renewal(patron_id="P-HOLDER", item_id="I-SHELF", due_date=due))),
        ]
    )
    assert [e.reason for e in queries.exceptions(conn)] == [
        "renewal_limit",
        "item_on_hold",
        "not_on_loan",
    ]


def test_security_failures_are_listed_and_other_events_only_recorded(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """A security write failure is for staff; a visitor count is just recorded."""
    failure = SecurityWriteFailure(
        tag_uid="E004010000000001",
        item_id="I-SHELF",
        wanted="unsecured",
        attempts=3,
        error="no tag",
    )
    counts = VisitorCount(
        interval_start=NOW, interval_end=NOW + dt.timedelta(hours=1), entered=4, exited=2
    )
    ingestor(conn, seed).run(
        [msg(envelope(1, failure)), msg(envelope(2, counts, kind=DeviceKind.GATE))]
    )
    assert [e.reason for e in queries.exceptions(conn)] == ["security_failure"]
    assert [e.outcome for e in queries.events(conn)] == ["exception", "recorded"]


def test_late_older_event_does_not_undo_a_newer_one(conn: sqlite3.Connection, seed: Seed) -> None:
    """A checkout arriving after its own device's later checkin is stored but superseded."""
    run = ingestor(conn, seed).run
    run([msg(envelope(2, Checkin(item_id="I-SHELF")))])
    run([msg(checkout(1, "P-FREE", "I-SHELF"))])
    item = queries.item(conn, "I-SHELF")
    assert item is not None
    assert item.state == "on_shelf"
    assert [e.outcome for e in queries.events(conn)] == ["superseded", "applied"]


def test_trusted_clocks_order_events_of_different_devices(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """An older event from another device (both clocks trusted) does not undo a newer one."""
    earlier = NOW - dt.timedelta(hours=1)
    run = ingestor(conn, seed).run
    run([msg(envelope(1, Checkin(item_id="I-LOAN"), device_id="kiosk-2"))])
    run([msg(checkout(1, "P-FREE", "I-LOAN", time=earlier))])
    item = queries.item(conn, "I-LOAN")
    assert item is not None
    assert item.state == "on_shelf"
    run([msg(checkout(2, "P-HOLDER", "I-LOAN", clock_trusted=False, time=earlier))])
    item = queries.item(conn, "I-LOAN")
    assert item is not None
    assert item.patron_id == "P-HOLDER"


def test_two_ingestors_on_one_file_store_each_event_once(tmp_path: Path, seed: Seed) -> None:
    """Two connections ingesting the same events concurrently store each exactly once."""
    path = tmp_path / "shared.sqlite"
    setup = store.connect(path)
    store.ensure_seeded(setup, seed, LIB, TODAY, NOW.isoformat())
    setup.close()
    envelopes = [envelope(seq) for seq in range(1, 201)]
    results: list[int] = []
    start = threading.Barrier(2)

    def work(instance: str, order: list[Envelope]) -> None:
        connection = store.connect(path)
        try:
            start.wait(10)
            worker = ingestor(connection, seed, instance)
            results.extend(worker.run([msg(e)]).stored for e in order)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=("a", envelopes)),
        threading.Thread(target=work, args=("b", envelopes[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    check = store.connect(path)
    try:
        stats = queries.stats(check, {})
        assert sum(results) == 200
        assert stats.events == 200
        assert stats.duplicates_total == 200
        assert queries.gaps(check) == []
        assert {e.seq for e in queries.events(check)} == set(range(1, 201))
    finally:
        check.close()


def test_seeding_happens_once_and_database_survives_reopening(tmp_path: Path, seed: Seed) -> None:
    """A second start keeps the state; another seed is reported, not applied."""
    path = tmp_path / "c.sqlite"
    first = store.connect(path)
    assert store.ensure_seeded(first, seed, LIB, TODAY, NOW.isoformat()) is None
    ingestor(first, seed).run([msg(checkout(1, "P-FREE", "I-SHELF"))])
    first.close()
    other = load_seed(
        write_seed(tmp_path, "other", items=[{"item_id": "Z", "title": "Z"}], loans=[], holds=[])
    )
    again = store.connect(path)
    try:
        assert store.ensure_seeded(again, seed, LIB, TODAY, NOW.isoformat()) is None
        assert store.ensure_seeded(again, other, LIB, TODAY, NOW.isoformat()) == seed.fingerprint()
        item = queries.item(again, "I-SHELF")
        assert item is not None
        assert item.state == "on_loan"
        assert queries.item(again, "Z") is None
        mode = again.execute("PRAGMA journal_mode").fetchone()[0]
        sync = again.execute("PRAGMA synchronous").fetchone()[0]
        assert (mode, sync) == ("wal", 2)
    finally:
        again.close()
