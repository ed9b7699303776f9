"""The intent journal and recovery: every row of recovery's table, and a journal's bad days.

Recovery is checked with the in-memory pad (tags in each state the crash could leave) and
the fake agent over a real SQLite outbox; the SIGKILL tests in test_kiosk_crash.py drive
the same code through a real process dying at chosen points.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.contract import Checkin, Checkout, SecurityWriteFailure
from edge_agent.outbox import SqliteOutbox
from hardware.tags import ItemData, SecurityConfig
from kiosk.fakes import FakeClock, MemoryAgent, MemoryPad, PadTag
from kiosk.journal import Intent, IntentJournal, JournalError
from kiosk.recovery import recover, recovery_event_id
from tests.test_kiosk_support import START, TODAY, library

SECURITY = SecurityConfig()


def intent_for(tag: PadTag, item_id: str, *, wanted: str, event: Checkout | Checkin) -> Intent:
    return Intent(
        intent_id=uuid.uuid4(),
        tag_uid=tag.uid.hex().upper(),
        item_id=item_id,
        wanted=wanted,  # type: ignore[arg-type]
        event_id=uuid.uuid4(),
        event_kind=event.type,
        event_json=event.model_dump_json(),
    )


def checkout_of(item_id: str) -> Checkout:
    return Checkout(patron_id="P0007", item_id=item_id, due_date=TODAY + dt.timedelta(days=14))


# ---------------------------------------------------------------- the journal file


def test_intents_survive_reopening_and_resolve(tmp_path: Path) -> None:
    """Recorded intents are there after the file is reopened; resolved ones are gone."""
    path = tmp_path / "data" / "intents.sqlite"
    tag = PadTag.item(ItemData("1"))
    first = intent_for(tag, "1", wanted="unsecured", event=checkout_of("1"))
    second = intent_for(tag, "1", wanted="unsecured", event=checkout_of("1"))
    journal = IntentJournal(path)
    journal.record([first, second])
    journal.close()
    again = IntentJournal(path)
    assert [i.intent_id for i in again.pending()] == [first.intent_id, second.intent_id]
    assert again.pending()[0].event_json == first.event_json
    again.resolve([first.intent_id, uuid.uuid4()])
    assert [i.intent_id for i in again.pending()] == [second.intent_id]
    assert again.count() == 1
    sync = again._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert sync == 2  # FULL
    again.close()


def test_a_file_that_is_not_a_journal_is_refused_not_replaced(tmp_path: Path) -> None:
    """Garbage, another schema version or a foreign table: JournalError naming the file."""
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(JournalError, match=r"garbage\.sqlite: not an intent journal"):
        IntentJournal(garbage)
    assert garbage.read_bytes().startswith(b"this is not")  # left for the operator
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version=7")
    conn.close()
    with pytest.raises(JournalError, match="schema version 7"):
        IntentJournal(newer)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE intents (x INTEGER)")
    conn.close()
    with pytest.raises(JournalError, match="lacks"):
        IntentJournal(foreign)


def test_a_malformed_row_is_reported_by_name(tmp_path: Path) -> None:
    """A row someone edited by hand is reported with its id, not silently dropped."""
    journal = IntentJournal(tmp_path / "j.sqlite")
    tag = PadTag.item(ItemData("1"))
    intent = intent_for(tag, "1", wanted="unsecured", event=checkout_of("1"))
    journal.record([intent])
    journal._conn.execute("UPDATE intents SET event_id = 'not-a-uuid'")
    with pytest.raises(JournalError, match=str(intent.intent_id)):
        journal.pending()
    journal.close()


# ---------------------------------------------------------------- recovery's table


@dataclass
class World:
    """What recovery works with after a restart."""

    agent: MemoryAgent
    journal: IntentJournal
    pad: MemoryPad
    clock: FakeClock


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fake agent over a real outbox file, a journal file and an in-memory pad."""
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    journal = IntentJournal(tmp_path / "intents.sqlite")
    yield World(library(outbox=outbox), journal, MemoryPad(SECURITY), FakeClock(START))
    journal.close()
    outbox.close()


def test_checkout_interrupted_before_the_switch(world: World) -> None:
    """Tag still secured on the pad: nothing was lent, the intent is simply resolved."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100001"), secured=True)
    pad.place(tag)
    journal.record([intent_for(tag, "3100001", wanted="unsecured", event=checkout_of("3100001"))])
    report = recover(journal, pad, agent, clock)
    assert (report.resolved, report.failures_recorded) == (1, 0)
    assert agent.events() == []
    assert journal.count() == 0


def test_checkout_interrupted_after_the_switch(world: World) -> None:
    """Tag unsecured on the pad: a failure is recorded and the tag secured again."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100002"), secured=False)
    pad.place(tag)
    intent = intent_for(tag, "3100002", wanted="unsecured", event=checkout_of("3100002"))
    journal.record([intent])
    report = recover(journal, pad, agent, clock)
    assert report.failures_recorded == 1
    (failure,) = agent.events()
    assert isinstance(failure, SecurityWriteFailure)
    assert failure.tag_uid == intent.tag_uid
    assert failure.wanted == "unsecured"
    assert failure.afi_seen == SECURITY.unsecured_afi
    assert "secured again" in failure.error
    assert tag.afi == SECURITY.secured_afi
    assert journal.count() == 0


def test_checkout_interrupted_and_the_item_gone(world: World) -> None:
    """Tag no longer on the pad: the failure is recorded with the state unknown."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100003"))
    journal.record([intent_for(tag, "3100003", wanted="unsecured", event=checkout_of("3100003"))])
    recover(journal, pad, agent, clock)
    (failure,) = agent.events()
    assert isinstance(failure, SecurityWriteFailure)
    assert failure.afi_seen is None
    assert "no longer on the pad" in failure.error


def test_return_interrupted_after_arming_commits_the_return(world: World) -> None:
    """Tag secured on the pad for a return: the planned Checkin is committed with its own id."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100004"), secured=True)
    pad.place(tag)
    planned = Checkin(item_id="3100004", tag_uid=tag.uid.hex().upper(), hold_alert=True)
    intent = intent_for(tag, "3100004", wanted="secured", event=planned)
    journal.record([intent])
    report = recover(journal, pad, agent, clock)
    assert report.planned_committed == 1
    assert agent.events() == [planned]
    stored = agent.outbox.get("kiosk-1", 1)
    assert stored is not None
    assert stored.event_id == str(intent.event_id)


def test_return_interrupted_before_arming(world: World) -> None:
    """Tag still unsecured after a return was started: recorded as a failure for staff."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100005"), secured=False)
    pad.place(tag)
    journal.record([intent_for(tag, "3100005", wanted="secured", event=Checkin(item_id="3100005"))])
    recover(journal, pad, agent, clock)
    (failure,) = agent.events()
    assert isinstance(failure, SecurityWriteFailure)
    assert failure.wanted == "secured"
    assert "not re-armed" in failure.error


def test_recovery_waits_for_the_agent_and_the_reader(world: World) -> None:
    """Without the agent or the pad nothing is resolved; the next pass does it, once."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100006"), secured=False)
    pad.place(tag)
    intent = intent_for(tag, "3100006", wanted="unsecured", event=checkout_of("3100006"))
    journal.record([intent])
    pad.broken = True
    assert recover(journal, pad, agent, clock).left_open == 1
    pad.broken = False
    agent.available = False
    assert recover(journal, pad, agent, clock).left_open == 1
    assert tag.afi == SECURITY.unsecured_afi  # not touched before the failure is recorded
    agent.available = True
    assert recover(journal, pad, agent, clock).resolved == 1
    assert recover(journal, pad, agent, clock).resolved == 0
    (_failure,) = agent.events()
    stored = agent.outbox.get("kiosk-1", 1)
    assert stored is not None
    assert stored.event_id == str(recovery_event_id(intent))


def test_recovery_repeated_after_a_crash_records_once(world: World) -> None:
    """If recovery itself dies after recording, running it again does not record twice."""
    agent, journal, pad, clock = world.agent, world.journal, world.pad, world.clock
    tag = PadTag.item(ItemData("3100007"), secured=False)
    pad.place(tag)
    intent = intent_for(tag, "3100007", wanted="unsecured", event=checkout_of("3100007"))
    journal.record([intent])
    recover(journal, pad, agent, clock)
    journal.record([intent])  # as if the resolve had not reached the disk
    tag.afi = SECURITY.unsecured_afi  # and the re-securing neither
    recover(journal, pad, agent, clock)
    assert len(agent.events()) == 1
    assert journal.count() == 0
