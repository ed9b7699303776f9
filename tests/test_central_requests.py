"""Requests over MQTT v5: answers on the response topic with correlation data; PINs kept secret."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from edge_agent.contract import (
    AccountAnswer,
    AccountQuery,
    CheckinAnswer,
    CheckinAuth,
    CheckoutAnswer,
    CheckoutAuth,
    PatronAnswer,
    PatronLookup,
    RefusalReason,
    RenewAnswer,
    RenewAuth,
)
from edge_agent.contract.topics import response_topic
from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker
from tests.test_central_common import (
    NOW,
    SECRET_PIN,
    TODAY,
    WRONG_PIN,
    FakeDevice,
    fixed_clock,
    unique_library,
    write_seed,
)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def broker(module_broker: MosquittoBroker) -> MosquittoBroker:
    """This module's own broker: other modules' retained messages cannot reach central here."""
    return module_broker


@pytest.fixture
def lib() -> str:
    return unique_library()


@pytest.fixture
def sim(broker: MosquittoBroker, tmp_path: Path, lib: str) -> Iterator[CentralSimulator]:
    with CentralSimulator(
        broker.url,
        tmp_path / "central.sqlite",
        seed=write_seed(tmp_path, lib),
        instance=f"r-{lib}",
        clock=fixed_clock,
    ) as simulator:
        yield simulator


@pytest.fixture
def device(broker: MosquittoBroker, lib: str) -> Iterator[FakeDevice]:
    fake = FakeDevice(broker.url, lib)
    yield fake
    fake.close()


def test_every_op_is_answered_with_its_correlation_data(
    sim: CentralSimulator, device: FakeDevice
) -> None:
    """Lookup, checkout, checkin, renew and account each get their answer body back."""
    due = TODAY + dt.timedelta(days=21)
    lookup, correlation = device.request(PatronLookup(patron_id="P-FREE"))
    assert correlation is not None
    assert len(correlation) == 16
    assert isinstance(lookup.body, PatronAnswer)
    assert lookup.body.display_name == "Emma Wilson"
    checkout, _ = device.request(CheckoutAuth(patron_id="P-FREE", item_id="I-SHELF2"))
    assert isinstance(checkout.body, CheckoutAnswer)
    assert checkout.body.due_date == due
    assert checkout.body.title == "Số đỏ"
    checkin, _ = device.request(CheckinAuth(item_id="I-OVERDUE"))
    assert isinstance(checkin.body, CheckinAnswer)
    assert checkin.body.hold_alert
    renew, _ = device.request(RenewAuth(patron_id="P-FREE", item_id="I-LOAN"))
    assert isinstance(renew.body, RenewAnswer)
    assert renew.body.due_date == due
    account, _ = device.request(AccountQuery(patron_id="P-FREE"))
    assert isinstance(account.body, AccountAnswer)
    assert len(account.body.loans) == 3
    assert all(r.time == NOW for r in (lookup, checkout, checkin, renew, account))
    answered = sim.stats().instance
    for op in ("patron_lookup", "checkout", "checkin", "renew", "account"):
        assert answered[f"requests:{op}:ok"] == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (CheckoutAuth(patron_id="P-BLOCKED", item_id="I-SHELF"), RefusalReason.PATRON_BLOCKED),
        (CheckoutAuth(patron_id="P-FREE", item_id="I-HELD"), RefusalReason.ITEM_ON_HOLD),
        (CheckoutAuth(patron_id="P-FREE", item_id="I-REF"), RefusalReason.ITEM_NOT_FOR_LOAN),
        (CheckoutAuth(patron_id="P-FULL", item_id="I-SHELF"), RefusalReason.LIMIT_REACHED),
        (CheckoutAuth(patron_id="P-FREE", item_id="I-NONE"), RefusalReason.ITEM_UNKNOWN),
        (RenewAuth(patron_id="P-FREE", item_id="I-LIMIT"), RefusalReason.RENEWAL_LIMIT),
        (RenewAuth(patron_id="P-FREE", item_id="I-OVERDUE"), RefusalReason.ITEM_ON_HOLD),
        (AccountQuery(patron_id="P-NOBODY"), RefusalReason.PATRON_UNKNOWN),
    ],
)
def test_refusals_travel_with_their_reason(
    sim: CentralSimulator, device: FakeDevice, body: object, reason: RefusalReason
) -> None:
    """A refused request comes back refused, with the reason and without a body."""
    response, _ = device.request(body)
    assert (response.outcome, response.reason, response.body) == ("refused", reason, None)


def test_pin_is_checked_and_never_stored_or_logged(
    sim: CentralSimulator, device: FakeDevice, caplog: pytest.LogCaptureFixture
) -> None:
    """Right and wrong PINs are told apart; neither appears in the database files or the log."""
    caplog.set_level(logging.DEBUG)
    wrong, _ = device.request(PatronLookup(patron_id="P-PIN", pin=SecretStr(WRONG_PIN)))
    missing, _ = device.request(PatronLookup(patron_id="P-PIN"))
    right, _ = device.request(PatronLookup(patron_id="P-PIN", pin=SecretStr(SECRET_PIN)))
    assert (wrong.outcome, wrong.reason) == ("refused", RefusalReason.WRONG_PIN)
    assert (missing.outcome, missing.reason) == ("refused", RefusalReason.WRONG_PIN)
    assert right.outcome == "ok"
    assert isinstance(right.body, PatronAnswer)
    # A malformed lookup (the PIN a number, not a string) must not leak it either.
    data = {
        "schema_version": 1,
        "library_id": device.library_id,
        "device_id": "kiosk-1",
        "time": NOW.isoformat(),
        "request_id": str(uuid.uuid4()),
        "body": {"op": "patron_lookup", "patron_id": "P-PIN", "pin": int(SECRET_PIN)},
    }
    error, _ = device.request(None, raw=json.dumps(data).encode(), op="patron_lookup")
    assert error.outcome == "error"
    sim.wait_for(lambda: sim.stats().rejected.get("malformed") == 1, what="malformed counted")
    files = [sim.db_path, *sim.db_path.parent.glob(sim.db_path.name + "-*")]
    assert len(files) >= 2  # the database and its WAL
    for path in files:
        content = path.read_bytes()
        assert SECRET_PIN.encode() not in content
        assert WRONG_PIN.encode() not in content
    assert caplog.text.count("request patron_lookup") == 3  # the log did record the lookups…
    assert all(patron.pin is None for patron in sim.seed.patrons)  # only digests remain
    assert SECRET_PIN not in caplog.text
    assert WRONG_PIN not in caplog.text


def test_response_topic_of_another_device_is_refused(
    sim: CentralSimulator, device: FakeDevice, lib: str
) -> None:
    """A request asking for its answer on another device's topic gets an error on its own."""
    response, _ = device.request(
        PatronLookup(patron_id="P-FREE"), response_to=response_topic(lib, "kiosk-2")
    )
    assert response.outcome == "error"
    assert "own" in (response.message or "")
    assert sim.stats().rejected == {"misdirected": 1}


def test_request_naming_another_device_is_an_error(
    sim: CentralSimulator, device: FakeDevice
) -> None:
    """A request whose payload names another device is refused with an error response."""
    data = {
        "schema_version": 1,
        "request_id": str(uuid.uuid4()),
        "library_id": device.library_id,
        "device_id": "kiosk-2",
        "time": NOW.isoformat(),
        "body": {"op": "account", "patron_id": "P-FREE"},
    }
    response, _ = device.request(None, raw=json.dumps(data).encode(), op="account")
    assert response.outcome == "error"
    assert "kiosk-2" in (response.message or "")
    assert str(response.request_id) == data["request_id"]
    assert sim.stats().rejected == {"mismatch": 1}


def test_a_device_asking_questions_gets_its_caches(
    sim: CentralSimulator, device: FakeDevice
) -> None:
    """A device first seen through a request is registered and sent every cache."""
    device.request(PatronLookup(patron_id="P-FREE"))
    names = set()
    for name in ("patron_blocks", "item_states", "loan_policy"):
        update, _ = device.cache(name)
        names.add(update.body.cache)
    assert names == {"patron_blocks", "item_states", "loan_policy"}
    assert any(d.device_id == "kiosk-1" and d.seen for d in sim.devices())
