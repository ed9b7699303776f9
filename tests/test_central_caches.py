"""Cache updates: content, versions that only increase, retained delivery, rate-limited re-pushes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.contract import (
    CacheUpdate,
    Checkout,
    ItemStates,
    LoanPolicy,
    PatronBlocks,
)
from edge_agent.contract.topics import device_downlink
from simulators.central import CentralSimulator, store
from simulators.central.caches import PushPlanner, build_body, next_version
from simulators.central.seed import Seed, load_seed
from tests.support.broker import MosquittoBroker
from tests.support.mqtt import MqttProbe
from tests.test_central_common import (
    NOW,
    TODAY,
    FakeDevice,
    envelope,
    fixed_clock,
    unique_library,
    write_seed,
)


@pytest.fixture(scope="module")
def broker(module_broker: MosquittoBroker) -> MosquittoBroker:
    """This module's own broker: other modules' retained messages cannot reach central here."""
    return module_broker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_planner_pushes_at_most_once_per_interval_and_never_loses_a_change() -> None:
    """Marks within the interval wait for it to pass; the last mark is always pushed."""
    clock = FakeClock()
    planner = PushPlanner(2.0, clock)
    assert planner.due() == []
    assert not planner.pending()
    planner.mark({"patron_blocks"})
    assert planner.due() == ["patron_blocks"]
    planner.pushed("patron_blocks")
    planner.mark({"patron_blocks", "item_states"})
    assert planner.due() == ["item_states"]
    planner.pushed("item_states")
    clock.now += 1.9
    assert planner.due() == []
    assert planner.pending()
    clock.now += 0.1
    assert planner.due() == ["patron_blocks"]
    planner.pushed("patron_blocks")
    assert not planner.pending()


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Seed]]:
    seed = load_seed(write_seed(tmp_path))
    conn = store.connect(tmp_path / "c.sqlite")
    store.ensure_seeded(conn, seed, "test-library", TODAY, NOW.isoformat())
    yield conn, seed
    conn.close()


def test_cache_bodies_reflect_the_database(seeded: tuple[sqlite3.Connection, Seed]) -> None:
    """Blocks include blocks and fines; item states carry state, offline flag and title."""
    conn, seed = seeded
    blocks = build_body(conn, "patron_blocks", seed.policy)
    assert isinstance(blocks, PatronBlocks)
    assert [b.patron_id for b in blocks.blocked] == ["P-BLOCKED", "P-FINES"]
    items = build_body(conn, "item_states", seed.policy)
    assert isinstance(items, ItemStates)
    states = {i.item_id: i for i in items.items}
    assert states["I-LOAN"].state == "on_loan"
    assert states["I-READY"].state == "on_hold"
    assert states["I-NOOFF"].not_for_offline_issue
    assert states["I-REF"].not_for_offline_issue
    assert not states["I-SHELF"].not_for_offline_issue
    assert states["I-HELD"].title == "Truyện Kiều"
    policy = build_body(conn, "loan_policy", seed.policy)
    assert policy == LoanPolicy(loan_days=21, offline_max_items=2, max_renewals=1)
    with pytest.raises(ValueError, match="unknown cache"):
        build_body(conn, "nonsense", seed.policy)


def test_versions_increase_only_when_content_changes(
    seeded: tuple[sqlite3.Connection, Seed],
) -> None:
    """The same content keeps its version; new content gets the next one."""
    conn, seed = seeded

    def version() -> tuple[int, bool]:
        with store.write_txn(conn):
            body = build_body(conn, "patron_blocks", seed.policy)
            got = next_version(conn, "test-library", "patron_blocks", body, NOW.isoformat())
        return got.version, got.changed

    assert version() == (1, True)
    assert version() == (1, False)
    with store.write_txn(conn):
        conn.execute("UPDATE patrons SET blocked = 1 WHERE patron_id = 'P-FREE'")
    assert version() == (2, True)
    assert version() == (2, False)


@pytest.mark.broker
def test_caches_are_retained_versioned_and_repushed_after_changes(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A seen device gets three retained caches; a block and a loan bring newer versions."""
    lib = unique_library()
    with CentralSimulator(
        broker.url,
        tmp_path / "c.sqlite",
        seed=write_seed(tmp_path, lib),
        clock=fixed_clock,
        cache_interval_s=0.2,
    ) as sim:
        device = FakeDevice(broker.url, lib)
        try:
            device.send_status()
            first = {name: device.cache(name)[0] for name in ("patron_blocks", "item_states")}
            policy, _ = device.cache("loan_policy")
            # A late subscriber gets them as retained messages.
            late = MqttProbe(broker.url)
            late.connect()
            late.subscribe(device_downlink(lib, "kiosk-1"))
            retained: dict[str, CacheUpdate] = {}
            while len(retained) < 3:
                message = late.get()
                assert message.retain
                update = CacheUpdate.model_validate_json(message.payload)
                retained[update.body.cache] = update
            late.close()
            assert retained["patron_blocks"] == first["patron_blocks"]
            assert retained["loan_policy"] == policy

            sim.block_patron("P-HOLDER", "lost card")
            blocks, _ = device.cache("patron_blocks")
            assert blocks.version > first["patron_blocks"].version
            assert isinstance(blocks.body, PatronBlocks)
            assert "P-HOLDER" in {b.patron_id for b in blocks.body.blocked}

            device.send(
                envelope(
                    1,
                    Checkout(patron_id="P-FREE", item_id="I-SHELF", due_date=TODAY),
                    library_id=lib,
                )
            )
            items, _ = device.cache("item_states")
            assert items.version > first["item_states"].version
            assert isinstance(items.body, ItemStates)
            state = {i.item_id: i.state for i in items.body.items}
            assert state["I-SHELF"] == "on_loan"

            sim.unblock_patron("P-HOLDER")
            unblocked, _ = device.cache("patron_blocks")
            assert unblocked.version > blocks.version
            assert isinstance(unblocked.body, PatronBlocks)
            assert "P-HOLDER" not in {b.patron_id for b in unblocked.body.blocked}
        finally:
            device.close()
        assert sim.stats().instance["cache_pushes"] >= 6


@pytest.mark.broker
def test_seed_devices_get_caches_before_they_are_seen(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A device listed in the seed finds its caches retained on first connect."""
    lib = unique_library()
    with CentralSimulator(
        broker.url, tmp_path / "c.sqlite", seed=write_seed(tmp_path, lib), clock=fixed_clock
    ) as sim:
        # Subscribing only after the pushes, so that what arrives must have been retained.
        sim.wait_for(lambda: sim.stats().instance.get("cache_pushes", 0) >= 3, what="pushes")
        device = FakeDevice(broker.url, lib, device_id="seed-kiosk")
        try:
            names = set()
            for name in ("patron_blocks", "item_states", "loan_policy"):
                update, retained = device.cache(name)
                names.add(update.body.cache)
                assert retained
                assert update.library_id == lib
        finally:
            device.close()
        assert names == {"patron_blocks", "item_states", "loan_policy"}
        assert [d.device_id for d in sim.devices() if not d.seen] == ["seed-kiosk"]


def blocks_until(device: FakeDevice, wanted: bool) -> CacheUpdate:
    """Read patron_blocks updates until one does (or does not) list P-FREE."""
    while True:
        update, _ = device.cache("patron_blocks")
        assert isinstance(update.body, PatronBlocks)
        if ("P-FREE" in {b.patron_id for b in update.body.blocked}) == wanted:
            return update


@pytest.mark.broker
def test_versions_keep_increasing_across_restarts(broker: MosquittoBroker, tmp_path: Path) -> None:
    """After a restart on the same database a changed cache gets the next version, not 1."""
    lib = unique_library()
    seed = write_seed(tmp_path, lib)
    db = tmp_path / "c.sqlite"
    with CentralSimulator(
        broker.url, db, seed=seed, clock=fixed_clock, cache_interval_s=0.1
    ) as sim:
        device = FakeDevice(broker.url, lib, device_id="seed-kiosk")
        try:
            sim.block_patron("P-FREE")
            blocked = blocks_until(device, wanted=True)
        finally:
            device.close()
    with CentralSimulator(
        broker.url, db, seed=seed, clock=fixed_clock, cache_interval_s=0.1
    ) as sim:
        device = FakeDevice(broker.url, lib, device_id="seed-kiosk")
        try:
            sim.unblock_patron("P-FREE")
            unblocked = blocks_until(device, wanted=False)
        finally:
            device.close()
    assert blocked.version >= 2
    assert unblocked.version == blocked.version + 1
