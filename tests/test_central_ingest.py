"""Classification of what arrives on central's subscription: valid, invalid, mismatched, foreign."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.contract import (
    Checkout,
    DeviceKind,
    DeviceStatus,
    PatronLookup,
    Request,
)
from edge_agent.contract.topics import event_topic, request_topic, status_topic
from simulators.central.ingest import (
    EventMessage,
    Foreign,
    Invalid,
    RequestMessage,
    StatusCleared,
    StatusMessage,
    classify,
    peek_request_id,
    peek_seq,
)
from tests.test_central_common import NOW, TODAY, envelope

LIB = "test-library"
TOPIC = event_topic(LIB, "kiosk-1", "refusal")


def test_valid_event_is_accepted_with_its_topic_parts() -> None:
    """A consistent envelope on its own kind's topic is an event of the topic's device."""
    env = envelope(5)
    verdict = classify(TOPIC, env.model_dump_json().encode(), LIB)
    assert isinstance(verdict, EventMessage)
    assert verdict.envelope == env
    assert verdict.info.device_id == "kiosk-1"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("device_id", "kiosk-2", "device_id 'kiosk-2' differs from the topic's 'kiosk-1'"),
        ("library_id", "other-lib", "library_id 'other-lib' differs"),
    ],
)
def test_event_naming_another_device_or_library_is_a_mismatch(
    field: str, value: str, expected: str
) -> None:
    """A payload whose device or library differs from its topic is rejected, keeping its seq."""
    env = envelope(9, **{field: value})  # type: ignore[arg-type]
    verdict = classify(TOPIC, env.model_dump_json().encode(), LIB)
    assert isinstance(verdict, Invalid)
    assert (verdict.category, verdict.seq) == ("mismatch", 9)
    assert expected in verdict.reason


def test_event_on_another_kinds_topic_is_a_mismatch() -> None:
    """A checkout published on the refusal topic is rejected."""
    env = envelope(3, Checkout(patron_id="P", item_id="I", due_date=TODAY))
    verdict = classify(TOPIC, env.model_dump_json().encode(), LIB)
    assert isinstance(verdict, Invalid)
    assert verdict.category == "mismatch"
    assert "'checkout'" in verdict.reason
    assert verdict.seq == 3


def test_invalid_event_keeps_a_readable_seq_and_names_the_field() -> None:
    """A contract violation is malformed; its seq is kept when readable so it can be rejected."""
    data = json.loads(envelope(12).model_dump_json())
    del data["payload"]["reason"]
    verdict = classify(TOPIC, json.dumps(data).encode(), LIB)
    assert isinstance(verdict, Invalid)
    assert verdict.category == "malformed"
    assert verdict.seq == 12
    assert "payload.refusal.reason" in verdict.reason


def test_unknown_event_kind_in_the_topic_is_malformed() -> None:
    """An event topic with a kind the contract lacks is rejected with the topic's seq."""
    topic = f"libedge/v1/{LIB}/kiosk-1/up/event/teleport"
    verdict = classify(topic, envelope(4).model_dump_json().encode(), LIB)
    assert isinstance(verdict, Invalid)
    assert verdict.seq == 4
    assert "teleport" in verdict.reason


def test_seq_too_large_for_sqlite_is_refused_without_a_seq() -> None:
    """A seq beyond 2**63-1 passes the contract but is rejected before it reaches SQLite."""
    data = json.loads(envelope(1).model_dump_json())
    data["seq"] = 2**64
    verdict = classify(TOPIC, json.dumps(data).encode(), LIB)
    assert isinstance(verdict, Invalid)
    assert verdict.seq is None
    assert "seq" in verdict.reason


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("elsewhere/v1/a/b/up/event/refusal", "not under"),
        (f"libedge/v1/{LIB}/kiosk-1/up/bogus", "unknown channel"),
        (f"libedge/v1/{LIB}/kiosk-1/up/event/refusal/extra", "segments"),
        (f"libedge/v1/{LIB}/kiosk-1/down/receipt", "not an uplink"),
        (f"libedge/v1/{LIB}/ki osk/up/status", "bad library or device"),
        ("libedge/v1/other-lib/kiosk-1/up/event/refusal", "not served here"),
    ],
)
def test_foreign_topics_are_foreign(topic: str, reason: str) -> None:
    """Topics outside the scheme, downlinks and other libraries are foreign, with the reason."""
    verdict = classify(topic, envelope(1).model_dump_json().encode(), LIB)
    assert isinstance(verdict, Foreign)
    assert reason in verdict.reason


def test_any_library_is_served_when_none_is_given() -> None:
    """With no library restriction, another library's valid event is accepted."""
    env = envelope(1, library_id="far-away")
    topic = event_topic("far-away", "kiosk-1", "refusal")
    assert isinstance(classify(topic, env.model_dump_json().encode(), None), EventMessage)


def test_status_is_checked_against_its_topic() -> None:
    """A status is accepted from its own device and rejected when it names another."""
    status = DeviceStatus(
        library_id=LIB,
        device_id="gate-1",
        device_kind=DeviceKind.GATE,
        online=False,
        time=NOW,
        software_version="1",
    )
    good = classify(status_topic(LIB, "gate-1"), status.model_dump_json().encode(), LIB)
    forged = classify(status_topic(LIB, "gate-2"), status.model_dump_json().encode(), LIB)
    assert isinstance(good, StatusMessage)
    assert good.status == status
    assert isinstance(forged, Invalid)
    assert forged.category == "mismatch"


def test_empty_status_clears_and_is_not_an_error() -> None:
    """An empty retained payload on a status topic means the status was cleared."""
    verdict = classify(status_topic(LIB, "gate-1"), b"", LIB)
    assert isinstance(verdict, StatusCleared)
    assert verdict.info.device_id == "gate-1"
    assert isinstance(classify(TOPIC, b"", LIB), Invalid)


def test_requests_are_checked_and_a_bad_one_keeps_its_request_id() -> None:
    """A valid request is accepted; a broken one still yields its request id for the answer."""
    request = Request(
        request_id=uuid.uuid4(),
        library_id=LIB,
        device_id="kiosk-1",
        time=NOW,
        body=PatronLookup(patron_id="P1"),
    )
    topic = request_topic(LIB, "kiosk-1", "patron_lookup")
    assert isinstance(classify(topic, request.model_dump_json().encode(), LIB), RequestMessage)
    data = json.loads(request.model_dump_json())
    data["body"]["patron_id"] = ""
    broken = classify(topic, json.dumps(data).encode(), LIB)
    assert isinstance(broken, Invalid)
    assert broken.request_id == request.request_id
    wrong_op = classify(
        request_topic(LIB, "kiosk-1", "account"), request.model_dump_json().encode(), LIB
    )
    assert isinstance(wrong_op, Invalid)
    assert wrong_op.category == "mismatch"


def test_reasons_never_repeat_a_pin_from_the_payload() -> None:
    """A malformed patron lookup's reason names the field, not the PIN typed."""
    data = {
        "schema_version": 1,
        "request_id": str(uuid.uuid4()),
        "library_id": LIB,
        "device_id": "kiosk-1",
        "time": NOW.isoformat(),
        "body": {"op": "patron_lookup", "patron_id": "P1", "pin": 97531086420},
    }
    verdict = classify(
        request_topic(LIB, "kiosk-1", "patron_lookup"), json.dumps(data).encode(), LIB
    )
    assert isinstance(verdict, Invalid)
    assert "body.patron_lookup.pin" in verdict.reason
    assert "97531086420" not in verdict.reason


@pytest.mark.parametrize(
    ("payload", "seq"),
    [
        (b'{"seq": 7}', 7),
        (b'{"seq": 0}', None),
        (b'{"seq": true}', None),
        (b'{"seq": "7"}', None),
        (b'{"seq": 9223372036854775808}', None),
        (b"[1, 2]", None),
        (b"\xff", None),
        (b"[" * 100_000, None),
    ],
)
def test_peek_seq_reads_only_storable_positive_integers(payload: bytes, seq: int | None) -> None:
    """Only a positive integer that SQLite can store is taken as a seq."""
    assert peek_seq(payload) == seq


def test_peek_request_id_reads_only_uuids() -> None:
    """A request id is read when it is a UUID, else None."""
    rid = uuid.uuid4()
    assert peek_request_id(json.dumps({"request_id": str(rid)}).encode()) == rid
    assert peek_request_id(b'{"request_id": "nope"}') is None
    assert peek_request_id(b'{"request_id": 5}') is None


_TOPICS = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            TOPIC,
            status_topic(LIB, "kiosk-1"),
            request_topic(LIB, "kiosk-1", "checkout"),
            f"libedge/v1/{LIB}/kiosk-1/up/event/checkout",
        ]
    ),
)
_PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["seq", "payload", "type", "request_id", "body", "device_id", "x"]),
                children,
                max_size=5,
            )
        ),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=300, deadline=None)
@given(topic=_TOPICS, payload=_PAYLOADS)
def test_classify_never_raises_on_garbage(topic: str, payload: bytes) -> None:
    """Any topic and any bytes give a verdict; garbage is Foreign or Invalid, never an exception."""
    verdict = classify(topic, payload, LIB)
    if isinstance(verdict, StatusCleared):
        assert payload == b""
        assert topic == status_topic(LIB, "kiosk-1")
        return
    assert isinstance(verdict, Foreign | Invalid)
    assert len(verdict.reason) <= 500
    if isinstance(verdict, Invalid) and verdict.seq is not None:
        assert 1 <= verdict.seq <= 2**63 - 1
