"""A property test: every back-end agrees with a plain model across random interleavings.

Hypothesis drives append / due / mark_sent / mark_confirmed / dead_letter / retry_dead /
discard_dead / prune and clock steps against one outbox and against the model below, and
checks after every step that every stored event and the statistics are what the model says.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from edge_agent.outbox import (
    EventIdConflict,
    EventNotFound,
    EventState,
    MemoryOutbox,
    Outbox,
    OutboxFull,
    OutboxLimits,
    SqliteOutbox,
)

DEVICES = st.sampled_from(["kiosk", "gate"])
PAYLOADS = st.sampled_from(["{}", '{"item": "39001"}', '"é"', "[1, 2, 3]"])
SEQS = st.lists(st.integers(min_value=1, max_value=12), max_size=3)
Key = tuple[str, int]
MAX_ROWS, MAX_BYTES = 7, 60
HELD = {EventState.PENDING, EventState.SENT, EventState.DEAD}


@dataclass
class ModelEvent:
    """What the model remembers of one event."""

    device_id: str
    seq: int
    event_id: str
    payload: str
    created_at: float
    state: EventState = EventState.PENDING
    attempts: int = 0
    sent_at: float | None = None
    confirmed_at: float | None = None
    dead_reason: str | None = None
    discarded_at: float | None = None


class OutboxMachine(RuleBasedStateMachine):
    """Runs one back-end and the model side by side (subclasses pick the back-end)."""

    keys = Bundle("keys")  # (device, seq) of events appended so far: rules aim at them

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.events: dict[tuple[str, int], ModelEvent] = {}  # insertion order = append order
        self.last_seq: dict[str, int] = {}
        self.outbox = self.make(OutboxLimits(max_rows=MAX_ROWS, max_bytes=MAX_BYTES))

    def make(self, limits: OutboxLimits) -> Outbox:
        raise NotImplementedError

    def clock(self) -> float:
        return self.now

    def teardown(self) -> None:
        self.outbox.close()

    # -------------------------------------------------------------- model helpers

    def held(self) -> tuple[int, int]:
        rows = [e for e in self.events.values() if e.state in HELD]
        return len(rows), sum(len(e.payload.encode()) for e in rows)

    def expect_due(
        self, device: str | None, limit: int, resend_after: int
    ) -> list[tuple[str, int]]:
        out = []
        for e in self.events.values():
            if device is not None and e.device_id != device:
                continue
            resend = e.state is EventState.SENT and self.now - (e.sent_at or 0) >= resend_after
            if e.state is EventState.PENDING or resend:
                out.append((e.device_id, e.seq))
        return out[:limit]

    # -------------------------------------------------------------- rules

    # Round numbers make ages land exactly on resend_after / older_than boundaries.
    @rule(seconds=st.sampled_from([0, 10, 30]) | st.integers(min_value=0, max_value=40))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    @rule(target=keys, device=DEVICES, payload=PAYLOADS, reuse=st.booleans())
    def append(self, device: str, payload: str, reuse: bool) -> object:
        earlier = [e for e in self.events.values() if e.device_id == device]
        if reuse and earlier:
            old = earlier[-1]
            if old.payload == payload:
                got = self.outbox.append(device, "loan", payload, event_id=old.event_id)
                assert (got.device_id, got.seq) == (old.device_id, old.seq)
            else:
                try:
                    self.outbox.append(device, "loan", payload, event_id=old.event_id)
                except EventIdConflict:
                    return multiple()
                raise AssertionError("a reused event_id for other content was accepted")
            return multiple()
        rows, size = self.held()
        fits = rows + 1 <= MAX_ROWS and size + len(payload.encode()) <= MAX_BYTES
        event_id = str(uuid.uuid4())
        try:
            got = self.outbox.append(device, "loan", payload, event_id=event_id)
        except OutboxFull:
            assert not fits, "refused although under the cap"
            return multiple()
        assert fits, "accepted although over the cap"
        seq = self.last_seq.get(device, 0) + 1
        assert (got.seq, got.created_at, got.event_id) == (seq, self.now, event_id)
        self.last_seq[device] = seq
        self.events[(device, seq)] = ModelEvent(device, seq, event_id, payload, self.now)
        return (device, seq)

    # Rules get either events that were appended (from the bundle) or arbitrary seqs.
    @staticmethod
    def _group(picked: list[Key]) -> dict[str, list[int]]:
        by_device: dict[str, list[int]] = {}
        for device, seq in picked:
            by_device.setdefault(device, []).append(seq)
        return by_device

    @rule(picked=st.lists(keys, max_size=3))
    def mark_sent_some(self, picked: list[Key]) -> None:
        for device, wanted in self._group(picked).items():
            self.mark_sent(device, wanted)

    @rule(picked=st.lists(keys, max_size=3))
    def mark_confirmed_some(self, picked: list[Key]) -> None:
        for device, wanted in self._group(picked).items():
            self.mark_confirmed(device, wanted)

    @rule(key=keys)
    def dead_letter_one(self, key: Key) -> None:
        self.dead_letter(*key)

    @rule(key=keys)
    def retry_one(self, key: Key) -> None:
        self.retry_dead(*key)

    @rule(key=keys)
    def discard_one(self, key: Key) -> None:
        self.discard_dead(*key)

    @rule(device=DEVICES, wanted=SEQS)
    def mark_sent(self, device: str, wanted: list[int]) -> None:
        self.outbox.mark_sent(device, wanted)
        for seq in dict.fromkeys(wanted):
            e = self.events.get((device, seq))
            if e is not None and e.state in (EventState.PENDING, EventState.SENT):
                e.state, e.sent_at, e.attempts = EventState.SENT, self.now, e.attempts + 1

    @rule(device=DEVICES, wanted=SEQS)
    def mark_confirmed(self, device: str, wanted: list[int]) -> None:
        changed = 0
        for seq in dict.fromkeys(wanted):
            e = self.events.get((device, seq))
            if e is not None and e.state is not EventState.CONFIRMED:
                e.state, e.confirmed_at = EventState.CONFIRMED, self.now
                changed += 1
        assert self.outbox.mark_confirmed(device, wanted) == changed

    @rule(device=DEVICES, seq=st.integers(min_value=1, max_value=12))
    def dead_letter(self, device: str, seq: int) -> None:
        e = self.events.get((device, seq))
        try:
            self.outbox.dead_letter(device, seq, f"refused at {self.now}")
        except EventNotFound:
            assert e is None
            return
        assert e is not None
        if e.state in (EventState.PENDING, EventState.SENT):
            e.state, e.dead_reason = EventState.DEAD, f"refused at {self.now}"

    @rule(device=DEVICES, seq=st.integers(min_value=1, max_value=12))
    def retry_dead(self, device: str, seq: int) -> None:
        e = self.events.get((device, seq))
        expected = e is not None and e.state is EventState.DEAD
        assert self.outbox.retry_dead(device, seq) is expected
        if e is not None and expected:
            e.state, e.sent_at = EventState.PENDING, None

    @rule(device=DEVICES, seq=st.integers(min_value=1, max_value=12))
    def discard_dead(self, device: str, seq: int) -> None:
        e = self.events.get((device, seq))
        expected = e is not None and e.state is EventState.DEAD
        assert self.outbox.discard_dead(device, seq) is expected
        if e is not None and expected:
            e.state, e.discarded_at = EventState.DISCARDED, self.now

    @rule(older_than=st.sampled_from([0, 10, 30]) | st.integers(min_value=0, max_value=60))
    def prune(self, older_than: int) -> None:
        gone = [
            key
            for key, e in self.events.items()
            if e.state is EventState.CONFIRMED and self.now - (e.confirmed_at or 0) >= older_than
        ]
        for key in gone:
            del self.events[key]
        assert self.outbox.prune_confirmed(older_than) == len(gone)

    @rule(
        device=st.none() | DEVICES,
        limit=st.integers(min_value=0, max_value=8),
        resend_after=st.sampled_from([0, 10, 30]) | st.integers(min_value=0, max_value=50),
    )
    def due(self, device: str | None, limit: int, resend_after: int) -> None:
        got = self.outbox.due(device, limit, resend_after=resend_after)
        assert [(e.device_id, e.seq) for e in got] == self.expect_due(device, limit, resend_after)

    @rule()
    def staff_lists(self) -> None:
        for state, listed in (
            (EventState.DEAD, self.outbox.dead_letters(limit=50)),
            (EventState.DISCARDED, self.outbox.discarded(limit=50)),
        ):
            expected = [k for k, e in self.events.items() if e.state is state]
            assert [(e.device_id, e.seq) for e in listed] == expected

    # -------------------------------------------------------------- invariants

    @invariant()
    def every_event_matches(self) -> None:
        for (device, seq), e in self.events.items():
            got = self.outbox.get(device, seq)
            assert got is not None, (device, seq)
            assert (
                got.event_id,
                got.payload,
                got.state,
                got.attempts,
                got.created_at,
                got.sent_at,
                got.confirmed_at,
                got.dead_reason,
                got.discarded_at,
            ) == (
                e.event_id,
                e.payload,
                e.state,
                e.attempts,
                e.created_at,
                e.sent_at,
                e.confirmed_at,
                e.dead_reason,
                e.discarded_at,
            )
        for device, last in self.last_seq.items():
            assert self.outbox.get(device, last + 1) is None

    @invariant()
    def stats_match(self) -> None:
        stats = self.outbox.stats()
        for state in EventState:
            mine = [e for e in self.events.values() if e.state is state]
            assert stats.counts[state] == len(mine), state
            assert stats.payload_bytes[state] == sum(len(e.payload.encode()) for e in mine)
        assert dict(stats.last_seq) == self.last_seq
        open_ = [
            e for e in self.events.values() if e.state in (EventState.PENDING, EventState.SENT)
        ]
        expected_age = self.now - open_[0].created_at if open_ else None
        assert stats.oldest_unconfirmed_age_s == expected_age


class MemoryMachine(OutboxMachine):
    """The model against MemoryOutbox."""

    def make(self, limits: OutboxLimits) -> Outbox:
        return MemoryOutbox(limits=limits, clock=self.clock)


class SqliteMachine(OutboxMachine):
    """The model against SqliteOutbox, one fresh file per example."""

    def make(self, limits: OutboxLimits) -> Outbox:
        self.tmp = tempfile.TemporaryDirectory(prefix="libedge-outbox-model-")
        return SqliteOutbox(Path(self.tmp.name) / "outbox.sqlite", limits=limits, clock=self.clock)

    def teardown(self) -> None:
        super().teardown()
        self.tmp.cleanup()


TestMemoryAgreesWithModel = MemoryMachine.TestCase
TestMemoryAgreesWithModel.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestSqliteAgreesWithModel = SqliteMachine.TestCase
TestSqliteAgreesWithModel.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
