"""Pure parts of the MQTT link: backoff delays, envelope bytes, downlink checks."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.contract import (
    CacheUpdate,
    Checkin,
    Checkout,
    DeliveryReceipt,
    Envelope,
    GateAlarm,
    LoanPolicy,
    PatronBlocks,
    Response,
    decode,
)
from edge_agent.link.backoff import Backoff
from edge_agent.link.downlink import (
    CacheMessage,
    CommandMessage,
    IgnoredMessage,
    ReceiptMessage,
    ResponseMessage,
    read_downlink,
)
from edge_agent.link.envelope import envelope_bytes
from edge_agent.outbox import EventState, OutboxEvent

NOW = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
LIB, DEV = "hn-pl", "kiosk-1"


# ---------------------------------------------------------------- backoff


@given(
    base=st.floats(0.01, 5),
    factor=st.floats(1, 1000),
    seed=st.integers(0, 2**32),
    attempts=st.integers(1, 80),
)
def test_backoff_delays_grow_jittered_within_half_to_full_ceiling(
    base: float, factor: float, seed: int, attempts: int
) -> None:
    """Each delay lies in [ceiling/2, ceiling], ceilings double up to the cap and never shrink."""
    cap = base * factor
    backoff = Backoff(base, cap, random.Random(seed))
    previous = 0.0
    for n in range(attempts):
        ceiling = backoff.ceiling()
        assert ceiling == pytest.approx(min(cap, base * 2.0 ** min(n, 64)))
        assert ceiling >= previous
        delay = backoff.next_delay()
        assert ceiling / 2 <= delay <= ceiling
        assert delay >= base / 2  # never a tight loop
        previous = ceiling


def test_backoff_reset_starts_from_base_and_jitter_spreads_devices() -> None:
    """After reset the next delay is back near base; two devices rarely pick the same delay."""
    backoff = Backoff(1.0, 60.0, random.Random(1))
    for _ in range(10):
        backoff.next_delay()
    assert backoff.ceiling() == 60.0
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0
    delays = {round(Backoff(1.0, 60.0, random.Random(s)).next_delay(), 6) for s in range(50)}
    assert len(delays) > 40


def test_backoff_refuses_nonsense_settings() -> None:
    """A zero base or a cap below the base is refused with a message naming it."""
    with pytest.raises(ValueError, match="base"):
        Backoff(0, 10)
    with pytest.raises(ValueError, match="cap"):
        Backoff(5, 1)


# ---------------------------------------------------------------- envelope


def _row(payload: str, kind: str, seq: int = 7, when: float = 1_700_000_000.25) -> OutboxEvent:
    return OutboxEvent(
        device_id=DEV,
        seq=seq,
        event_id=str(uuid.uuid4()),
        kind=kind,
        payload=payload,
        event_time=when,
        clock_trusted=False,
        state=EventState.PENDING,
        attempts=0,
        created_at=when,
        sent_at=None,
        confirmed_at=None,
        dead_reason=None,
    )


ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=64)


@settings(max_examples=150)
@given(
    item=ids,
    patron=ids,
    title=st.one_of(st.none(), st.text(max_size=200)),
    seq=st.integers(1, 2**63 - 1),
    when=st.floats(0, 4_000_000_000),
)
def test_envelope_bytes_parse_as_the_envelope_they_describe(
    item: str, patron: str, title: str | None, seq: int, when: float
) -> None:
    """The hand-written envelope JSON validates as an Envelope with the row's fields and payload."""
    payloads = [
        Checkout(patron_id=patron, item_id=item, due_date=dt.date(2025, 3, 15)),
        Checkin(item_id=item, hold_alert=True),
        GateAlarm.model_validate(
            {
                "pass_id": str(uuid.uuid4()),
                "items": [
                    {
                        "tag_uid": "E004015012345678",
                        "item_id": item,
                        "title": title,
                        "security": "secured",
                        "data_model": "iso28560-2",
                        "antenna": "A1",
                    }
                ],
            }
        ),
    ]
    for payload in payloads:
        row = _row(payload.model_dump_json(), payload.type, seq, when)
        raw = envelope_bytes(row, library_id=LIB, device_kind="kiosk")
        envelope = decode(Envelope, raw)
        assert envelope.seq == seq
        assert str(envelope.event_id) == row.event_id
        assert (envelope.library_id, envelope.device_id) == (LIB, DEV)
        assert envelope.time.timestamp() == pytest.approx(when, abs=1e-6)
        assert envelope.clock_trusted is False
        assert envelope.payload == payload
        assert json.loads(raw)["payload"] == json.loads(row.payload)


# ---------------------------------------------------------------- downlink


def _read(topic: str, payload: bytes, properties: object = None):  # type: ignore[no-untyped-def]
    return read_downlink(topic, payload, properties, library_id=LIB, device_id=DEV)


class _Props:
    def __init__(self, correlation: bytes) -> None:
        self.CorrelationData = correlation


def test_downlink_reads_receipts_answers_and_caches_typed() -> None:
    """Valid receipts, responses and cache updates come back as typed messages."""
    receipt = DeliveryReceipt(library_id=LIB, device_id=DEV, confirmed=[1, 2], time=NOW)
    got = _read(f"libedge/v1/{LIB}/{DEV}/down/receipt", receipt.model_dump_json().encode())
    assert isinstance(got, ReceiptMessage)
    assert got.receipt.confirmed == [1, 2]
    rid = uuid.uuid4()
    response = Response(request_id=rid, time=NOW, outcome="refused", reason="patron_blocked")
    got = _read(
        f"libedge/v1/{LIB}/{DEV}/down/response",
        response.model_dump_json().encode(),
        _Props(rid.bytes),
    )
    assert isinstance(got, ResponseMessage)
    assert got.correlation == rid.bytes
    update = CacheUpdate(library_id=LIB, version=3, time=NOW, body=LoanPolicy(loan_days=21))
    got = _read(f"libedge/v1/{LIB}/{DEV}/down/cache/loan_policy", update.model_dump_json().encode())
    assert isinstance(got, CacheMessage)
    assert got.update.version == 3


@pytest.mark.parametrize(
    ("topic", "payload", "label"),
    [
        ("other/topic", b"{}", "foreign_topic"),
        (f"libedge/v1/{LIB}/kiosk-2/down/receipt", b"{}", "foreign_device"),
        (f"libedge/v1/other-lib/{DEV}/down/receipt", b"{}", "foreign_device"),
        (f"libedge/v1/{LIB}/{DEV}/up/status", b"{}", "not_downlink"),
        (f"libedge/v1/{LIB}/{DEV}/down/receipt", b"\xff\xfe not json", "malformed"),
        (f"libedge/v1/{LIB}/{DEV}/down/receipt", b'{"schema_version": 2}', "malformed"),
        (
            f"libedge/v1/{LIB}/{DEV}/down/receipt",
            DeliveryReceipt(library_id=LIB, device_id="kiosk-2", confirmed=[1], time=NOW)
            .model_dump_json()
            .encode(),
            "mismatched_ids",
        ),
        (
            f"libedge/v1/{LIB}/{DEV}/down/cache/item_states",
            CacheUpdate(library_id=LIB, version=1, time=NOW, body=PatronBlocks())
            .model_dump_json()
            .encode(),
            "mismatched_ids",
        ),
        (
            f"libedge/v1/{LIB}/{DEV}/down/cache/patron_blocks",
            CacheUpdate(library_id="x", version=1, time=NOW, body=PatronBlocks())
            .model_dump_json()
            .encode(),
            "mismatched_ids",
        ),
    ],
)
def test_downlink_ignores_foreign_and_malformed_messages_with_a_reason(
    topic: str, payload: bytes, label: str
) -> None:
    """Each kind of unusable message is ignored with its own label and a sentence naming it."""
    with pytest.raises(IgnoredMessage) as caught:
        _read(topic, payload)
    assert caught.value.label == label
    assert caught.value.detail


def test_downlink_ignores_an_answer_whose_correlation_differs() -> None:
    """A response whose correlation data is not its request id cannot be paired: ignored."""
    response = Response(request_id=uuid.uuid4(), time=NOW, outcome="error")
    with pytest.raises(IgnoredMessage) as caught:
        _read(
            f"libedge/v1/{LIB}/{DEV}/down/response",
            response.model_dump_json().encode(),
            _Props(uuid.uuid4().bytes),
        )
    assert caught.value.label == "mismatched_ids"


channels = st.sampled_from(
    ["receipt", "response", "command", "cache/patron_blocks", "cache/item_states", "cache/x", "zz"]
)


@settings(max_examples=300)
@given(
    channel=channels,
    payload=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=12), inner, max_size=5)
            ),
            max_leaves=15,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    topic_noise=st.text(max_size=30),
)
def test_downlink_garbage_only_ever_raises_ignored_message(
    channel: str, payload: bytes, topic_noise: str
) -> None:
    """Random bytes and random JSON on any downlink topic are ignored, never crash the reader."""
    for topic in (f"libedge/v1/{LIB}/{DEV}/down/{channel}", topic_noise):
        outcome: object
        try:
            outcome = _read(topic, payload, _Props(payload[:16]))
        except IgnoredMessage as exc:
            outcome = exc
        if isinstance(outcome, IgnoredMessage):
            assert outcome.label
            assert outcome.detail
        else:  # garbage that happens to be a valid message is returned typed
            assert isinstance(
                outcome, ReceiptMessage | ResponseMessage | CacheMessage | CommandMessage
            )


def test_envelope_bytes_escape_strings_that_need_it() -> None:
    """Fields outside the plain id alphabet take the JSON encoder's path and stay valid JSON."""
    row = _row(Checkin(item_id="I1").model_dump_json(), "checkin")
    odd = OutboxEvent(**{**{f: getattr(row, f) for f in row.__slots__}, "device_id": 'ki"osk\\1'})  # type: ignore[arg-type]
    raw = envelope_bytes(odd, library_id="lib é", device_kind="kiosk")
    data = json.loads(raw)
    assert data["device_id"] == 'ki"osk\\1'
    assert data["library_id"] == "lib é"
    assert data["payload"] == {"type": "checkin", "item_id": "I1", "tag_uid": None, "offline": False,
                               "hold_alert": False, "security_verified": True}  # fmt: skip
