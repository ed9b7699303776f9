"""The event contract: strict decoding, clear errors, topics, and documents generated from the models."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from edge_agent.contract import (
    AccountAnswer,
    AlarmItem,
    CacheUpdate,
    Checkin,
    Checkout,
    Command,
    ContractError,
    DeliveryReceipt,
    DeviceKind,
    DeviceStatus,
    Envelope,
    GateAlarm,
    ItemState,
    ItemStates,
    Loan,
    PatronLookup,
    Refusal,
    RefusalReason,
    RejectedEvent,
    Renewal,
    Request,
    Response,
    ScreenMessage,
    SecurityState,
    SecurityWriteFailure,
    VisitorCount,
    decode,
    topics,
)
from edge_agent.contract.asyncapi import (
    MESSAGES,
    asyncapi_document,
    export,
    json_schemas,
    render_asyncapi,
    render_schema,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 21, 8, 30, tzinfo=dt.UTC)
OFFICIAL_ASYNCAPI_SCHEMA = ROOT / "tests" / "data" / "asyncapi-3.0.0.schema.json"


def envelope(payload: Any, seq: int = 1) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        library_id="hn-pl",
        device_id="kiosk-1",
        device_kind=DeviceKind.KIOSK,
        seq=seq,
        time=NOW,
        clock_trusted=True,
        payload=payload,
    )


PAYLOADS = [
    Checkout(
        patron_id="P001", item_id="30001", tag_uid="E004010012345678", due_date=dt.date(2026, 12, 5)
    ),
    Checkin(item_id="30001", hold_alert=True),
    Renewal(patron_id="P001", item_id="30001", due_date=dt.date(2026, 12, 19)),
    Refusal(
        action="checkout", reason=RefusalReason.ITEM_ON_HOLD, patron_id="P001", item_id="30002"
    ),
    SecurityWriteFailure(
        tag_uid="E004010012345678",
        wanted="unsecured",
        afi_seen=7,
        attempts=3,
        error="AFI read back 0x07",
    ),
    GateAlarm(
        pass_id=uuid.uuid4(),
        items=[
            AlarmItem(
                tag_uid="E004010012345678",
                item_id="30003",
                title="Dế Mèn phiêu lưu ký",
                security=SecurityState.SECURED,
                data_model="iso28560-2",
                antenna="exit-left",
                reads=4,
            )
        ],
    ),
    VisitorCount(
        interval_start=NOW, interval_end=NOW + dt.timedelta(hours=1), entered=12, exited=9
    ),
]

OTHER_MESSAGES: list[BaseModel] = [
    DeviceStatus(
        library_id="hn-pl",
        device_id="gate-1",
        device_kind=DeviceKind.GATE,
        online=False,
        time=NOW,
        software_version="0.1.0",
    ),
    DeliveryReceipt(
        library_id="hn-pl",
        device_id="kiosk-1",
        confirmed=[1, 2, 3],
        rejected=[RejectedEvent(seq=4, reason="bad")],
        time=NOW,
    ),
    Request(
        request_id=uuid.uuid4(),
        library_id="hn-pl",
        device_id="kiosk-1",
        time=NOW,
        body=PatronLookup(patron_id="P001", pin=SecretStr("4321")),
    ),
    Response(
        request_id=uuid.uuid4(),
        time=NOW,
        outcome="ok",
        body=AccountAnswer(
            patron_id="P001",
            loans=[Loan(item_id="1", title="Truyện Kiều", due_date=dt.date(2026, 12, 1))],
            fines=5000,
        ),
    ),
    Response(
        request_id=uuid.uuid4(), time=NOW, outcome="refused", reason=RefusalReason.PATRON_BLOCKED
    ),
    CacheUpdate(
        library_id="hn-pl",
        version=3,
        time=NOW,
        body=ItemStates(items=[ItemState(item_id="1", state="on_hold")]),
    ),
    Command(
        command_id=uuid.uuid4(),
        time=NOW,
        body=ScreenMessage(text_vi="Thư viện đóng cửa lúc 17 giờ"),
    ),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.type)
def test_every_event_round_trips_through_json(payload: Any) -> None:
    """Each event kind survives JSON and comes back equal, with its kind visible on the envelope."""
    original = envelope(payload)
    decoded = decode(Envelope, original.model_dump_json())
    assert decoded == original
    assert decoded.kind == payload.type


@pytest.mark.parametrize("message", OTHER_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_other_message_round_trips(message: BaseModel) -> None:
    """Status, receipts, requests, responses, caches and commands survive JSON unchanged."""
    decoded = decode(type(message), message.model_dump_json())
    assert decoded.model_dump(mode="json") == json.loads(message.model_dump_json())


def _wire(payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(envelope(payload).model_dump_json())
    return result


def test_wrong_type_is_rejected_naming_the_field() -> None:
    """A due date that is not a date is refused with the path of the field."""
    data = _wire(PAYLOADS[0])
    data["payload"]["due_date"] = "next tuesday"
    with pytest.raises(ContractError, match=r"payload\.checkout\.due_date"):
        decode(Envelope, json.dumps(data))


def test_missing_field_is_rejected_naming_the_field() -> None:
    """An envelope without its sequence number is refused, and the message says 'seq'."""
    data = _wire(PAYLOADS[0])
    del data["seq"]
    with pytest.raises(ContractError, match=r"seq: Field required"):
        decode(Envelope, json.dumps(data))


def test_missing_nested_field_is_rejected_naming_it() -> None:
    """A checkout without an item id names payload.checkout.item_id."""
    data = _wire(PAYLOADS[0])
    del data["payload"]["item_id"]
    with pytest.raises(ContractError, match=r"payload\.checkout\.item_id: Field required"):
        decode(Envelope, json.dumps(data))


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_unknown_schema_version_is_rejected_not_guessed(version: object) -> None:
    """Only schema version 1 is understood; anything else is refused with that reason."""
    data = _wire(PAYLOADS[1])
    data["schema_version"] = version
    with pytest.raises(ContractError, match="unsupported schema_version"):
        decode(Envelope, json.dumps(data))


def test_unknown_fields_and_event_kinds_are_rejected() -> None:
    """An extra key or an unknown event type is an error, not silently dropped."""
    data = _wire(PAYLOADS[1])
    data["payload"]["colour"] = "red"
    with pytest.raises(ContractError, match=r"payload\.checkin\.colour: Extra inputs"):
        decode(Envelope, json.dumps(data))
    data = _wire(PAYLOADS[1])
    data["payload"]["type"] = "teleport"
    with pytest.raises(ContractError, match=r"payload"):
        decode(Envelope, json.dumps(data))


def test_naive_times_and_bad_ids_are_rejected() -> None:
    """Times must carry a zone, and ids must be usable as topic segments."""
    data = _wire(PAYLOADS[1])
    data["time"] = "2026-11-21T08:30:00"
    with pytest.raises(ContractError, match=r"time: Input should have timezone info"):
        decode(Envelope, json.dumps(data))
    data = _wire(PAYLOADS[1])
    data["device_id"] = "kiosk/1"
    with pytest.raises(ContractError, match=r"device_id"):
        decode(Envelope, json.dumps(data))


def test_pin_is_masked_everywhere_but_on_the_wire() -> None:
    """A PIN shows as a mask in repr, str and model_dump, and only the wire JSON carries it."""
    request = OTHER_MESSAGES[2]
    assert "4321" not in repr(request)
    assert "4321" not in str(request)
    assert "4321" not in str(request.model_dump())
    wire = request.model_dump_json()
    assert json.loads(wire)["body"]["pin"] == "4321"
    decoded = decode(Request, wire)
    assert isinstance(decoded.body, PatronLookup)
    assert decoded.body.pin is not None
    assert decoded.body.pin.get_secret_value() == "4321"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_contract_error(data: bytes) -> None:
    """Garbage never escapes as anything but ContractError."""
    for model in MESSAGES.values():
        with pytest.raises(ContractError):
            decode(model, data)


# ---------------------------------------------------------------- topics


def test_topics_are_built_and_parsed_back() -> None:
    """Every topic builder's output parses back to the same library, device, channel and name."""
    cases = [
        (topics.event_topic("hn-pl", "kiosk-1", "checkout"), "up", "event", "checkout"),
        (topics.status_topic("hn-pl", "kiosk-1"), "up", "status", None),
        (topics.request_topic("hn-pl", "kiosk-1", "renew"), "up", "request", "renew"),
        (topics.response_topic("hn-pl", "kiosk-1"), "down", "response", None),
        (topics.receipt_topic("hn-pl", "kiosk-1"), "down", "receipt", None),
        (topics.cache_topic("hn-pl", "kiosk-1", "loan_policy"), "down", "cache", "loan_policy"),
        (topics.command_topic("hn-pl", "kiosk-1"), "down", "command", None),
    ]
    for topic, direction, channel, name in cases:
        info = topics.parse_topic(topic)
        assert (info.library_id, info.device_id) == ("hn-pl", "kiosk-1")
        assert (info.direction, info.channel, info.name) == (direction, channel, name)
    assert (
        topics.event_topic("hn-pl", "kiosk-1", "checkout")
        == "libedge/v1/hn-pl/kiosk-1/up/event/checkout"
    )
    assert topics.central_subscription() == "$share/central/libedge/v1/+/+/up/#"


@pytest.mark.parametrize(
    "topic",
    [
        "libedge/v2/a/b/up/status",
        "libedge/v1/a/b/up/event",
        "libedge/v1/a/b/up/status/extra",
        "libedge/v1/a/b/sideways/status",
        "libedge/v1/a/b/down/event/checkout",
        "libedge/v1/+/b/up/status",
        "other/topic",
        "",
    ],
)
def test_foreign_topics_are_rejected(topic: str) -> None:
    """A topic outside the scheme is refused with a reason."""
    with pytest.raises(ContractError):
        topics.parse_topic(topic)


def test_ids_that_would_escape_a_subtree_cannot_build_topics() -> None:
    """Wildcards and separators in ids would break ACL confinement, so they are refused."""
    for bad in ("a/b", "+", "#", "", "kiosk 1"):
        with pytest.raises(ContractError):
            topics.event_topic("lib", bad, "checkout")


# ---------------------------------------------------------------- generated documents


def test_committed_documents_match_the_models() -> None:
    """docs/asyncapi.yaml and docs/schemas/ are exactly what the models generate now."""
    assert (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8") == render_asyncapi(), (
        "regenerate with: make contract"
    )
    for stem, schema in json_schemas().items():
        committed = ROOT / "docs" / "schemas" / f"{stem}.schema.json"
        assert committed.read_text(encoding="utf-8") == render_schema(schema), stem


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    """The generated document validates against the official AsyncAPI 3.0.0 JSON Schema."""
    official = json.loads(OFFICIAL_ASYNCAPI_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(official)
    document = yaml.safe_load(render_asyncapi())
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)
    ]
    assert errors == []
    # The validator is not vacuous: a broken operation is caught.
    document["operations"]["publishEvent"]["action"] = "shout"
    assert any(True for _ in validator.iter_errors(document))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    """No $ref in the document points at nothing."""
    document = asyncapi_document()
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"unresolved {ref}"
            node = node[part]


def test_json_schemas_accept_real_messages_and_reject_bad_ones() -> None:
    """The exported JSON Schemas agree with the models on a valid and an invalid message."""
    schemas = json_schemas()
    envelope_schema = jsonschema.Draft202012Validator(schemas["envelope"])
    good = _wire(PAYLOADS[0])
    assert list(envelope_schema.iter_errors(good)) == []
    bad = dict(good, seq=0)
    assert list(envelope_schema.iter_errors(bad)) != []


def test_contract_export_writes_every_document(tmp_path: Path) -> None:
    """export() writes one schema per message plus the AsyncAPI document."""
    written = export(tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == sorted([*(f"{s}.schema.json" for s in MESSAGES), "asyncapi.yaml"])
    for path in written:
        assert path.stat().st_size > 100
