"""Answers to kiosk requests from the circulation model: every op, every refusal, PINs."""

from __future__ import annotations

import datetime as dt
import sqlite3
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
    Request,
    Response,
)
from edge_agent.contract.central import RequestBody
from simulators.central import store
from simulators.central.answers import Answerer
from simulators.central.seed import PinBook, Seed, load_seed
from tests.test_central_common import NOW, SECRET_PIN, TODAY, WRONG_PIN, write_seed

LIB = "test-library"


@pytest.fixture
def seed(tmp_path: Path) -> Seed:
    return load_seed(write_seed(tmp_path))


@pytest.fixture
def conn(tmp_path: Path, seed: Seed) -> Iterator[sqlite3.Connection]:
    connection = store.connect(tmp_path / "central.sqlite")
    store.ensure_seeded(connection, seed, LIB, TODAY, NOW.isoformat())
    yield connection
    connection.close()


def ask(conn: sqlite3.Connection, seed: Seed, body: RequestBody) -> Response:
    request = Request(
        request_id=uuid.uuid4(), library_id=LIB, device_id="kiosk-1", time=NOW, body=body
    )
    response = Answerer(seed, PinBook(seed.patrons)).answer(conn, request, NOW, TODAY)
    assert response.request_id == request.request_id
    return response


def test_patron_lookup_with_the_right_pin_describes_the_patron(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """The right PIN gives the display name, borrowing right and language."""
    response = ask(conn, seed, PatronLookup(patron_id="P-PIN", pin=SecretStr(SECRET_PIN)))
    assert response.outcome == "ok"
    assert isinstance(response.body, PatronAnswer)
    assert (response.body.display_name, response.body.may_borrow, response.body.language) == (
        "Nguyễn Thị Lan",
        True,
        "vi",
    )


@pytest.mark.parametrize("pin", [WRONG_PIN, None])
def test_wrong_or_missing_pin_is_refused(
    conn: sqlite3.Connection, seed: Seed, pin: str | None
) -> None:
    """A wrong PIN and no PIN for a card that has one are refused as wrong_pin."""
    body = PatronLookup(patron_id="P-PIN", pin=SecretStr(pin) if pin else None)
    response = ask(conn, seed, body)
    assert (response.outcome, response.reason, response.body) == (
        "refused",
        RefusalReason.WRONG_PIN,
        None,
    )
    assert SECRET_PIN not in response.model_dump_json()
    assert WRONG_PIN not in str(response)


def test_patron_lookup_counts_loans_and_ready_holds(conn: sqlite3.Connection, seed: Seed) -> None:
    """A patron without PIN gets counts of loans and holds ready; a blocked one may not borrow."""
    free = ask(conn, seed, PatronLookup(patron_id="P-FREE"))
    assert isinstance(free.body, PatronAnswer)
    assert (free.body.loans_count, free.body.holds_ready, free.body.may_borrow) == (3, 1, True)
    for patron in ("P-BLOCKED", "P-FINES"):
        blocked = ask(conn, seed, PatronLookup(patron_id=patron))
        assert isinstance(blocked.body, PatronAnswer)
        assert blocked.body.may_borrow is False
    unknown = ask(conn, seed, PatronLookup(patron_id="P-NOBODY"))
    assert unknown.reason is RefusalReason.PATRON_UNKNOWN


def test_checkout_allowed_gives_title_and_due_date(conn: sqlite3.Connection, seed: Seed) -> None:
    """An item on the shelf may be lent for the policy's loan days."""
    response = ask(conn, seed, CheckoutAuth(patron_id="P-HOLDER", item_id="I-SHELF"))
    assert response.outcome == "ok"
    assert isinstance(response.body, CheckoutAnswer)
    assert response.body.title == "Dế Mèn phiêu lưu ký"
    assert response.body.due_date == TODAY + dt.timedelta(days=21)


@pytest.mark.parametrize(
    ("patron", "item", "reason"),
    [
        ("P-NOBODY", "I-SHELF", RefusalReason.PATRON_UNKNOWN),
        ("P-BLOCKED", "I-SHELF", RefusalReason.PATRON_BLOCKED),
        ("P-FINES", "I-SHELF", RefusalReason.PATRON_BLOCKED),
        ("P-FREE", "I-NOWHERE", RefusalReason.ITEM_UNKNOWN),
        ("P-FREE", "I-REF", RefusalReason.ITEM_NOT_FOR_LOAN),
        ("P-FREE", "I-HELD", RefusalReason.ITEM_ON_HOLD),
        ("P-HOLDER", "I-READY", RefusalReason.ITEM_ON_HOLD),
        ("P-HOLDER", "I-LOAN", RefusalReason.ITEM_ALREADY_ON_LOAN),
        ("P-FULL", "I-SHELF", RefusalReason.LIMIT_REACHED),
    ],
)
def test_checkout_refusals_give_the_right_reason(
    conn: sqlite3.Connection, seed: Seed, patron: str, item: str, reason: RefusalReason
) -> None:
    """Each refusal case gets its own reason and no body."""
    response = ask(conn, seed, CheckoutAuth(patron_id=patron, item_id=item))
    assert (response.outcome, response.reason, response.body) == ("refused", reason, None)
    assert response.message


def test_hold_patron_may_check_out_their_ready_hold(conn: sqlite3.Connection, seed: Seed) -> None:
    """The patron a hold waits for is allowed to borrow it."""
    response = ask(conn, seed, CheckoutAuth(patron_id="P-FREE", item_id="I-READY"))
    assert response.outcome == "ok"


def test_checkin_says_whether_the_item_goes_to_the_hold_shelf(
    conn: sqlite3.Connection, seed: Seed
) -> None:
    """A held item gets a hold alert, another none, an unknown one is refused."""
    held = ask(conn, seed, CheckinAuth(item_id="I-OVERDUE"))
    plain = ask(conn, seed, CheckinAuth(item_id="I-LOAN"))
    unknown = ask(conn, seed, CheckinAuth(item_id="I-NOWHERE"))
    assert isinstance(held.body, CheckinAnswer)
    assert held.body.hold_alert is True
    assert isinstance(plain.body, CheckinAnswer)
    assert plain.body.hold_alert is False
    assert plain.body.title == "Tắt đèn"
    assert unknown.reason is RefusalReason.ITEM_UNKNOWN


def test_renewal_allowed_moves_the_due_date(conn: sqlite3.Connection, seed: Seed) -> None:
    """A renewable loan runs for the policy's loan days from today."""
    response = ask(conn, seed, RenewAuth(patron_id="P-FREE", item_id="I-LOAN"))
    assert isinstance(response.body, RenewAnswer)
    assert response.body.due_date == TODAY + dt.timedelta(days=21)


@pytest.mark.parametrize(
    ("patron", "item", "reason"),
    [
        ("P-FREE", "I-LIMIT", RefusalReason.RENEWAL_LIMIT),
        ("P-FREE", "I-OVERDUE", RefusalReason.ITEM_ON_HOLD),
        ("P-HOLDER", "I-LOAN", RefusalReason.OTHER),
        ("P-FREE", "I-NOWHERE", RefusalReason.ITEM_UNKNOWN),
        ("P-NOBODY", "I-LOAN", RefusalReason.PATRON_UNKNOWN),
        ("P-BLOCKED", "I-LOAN", RefusalReason.PATRON_BLOCKED),
    ],
)
def test_renewal_refusals_give_the_right_reason(
    conn: sqlite3.Connection, seed: Seed, patron: str, item: str, reason: RefusalReason
) -> None:
    """Renewal limit, a hold, someone else's loan and unknowns are refused with their reason."""
    response = ask(conn, seed, RenewAuth(patron_id=patron, item_id=item))
    assert (response.outcome, response.reason) == ("refused", reason)


def test_account_lists_loans_holds_ready_and_fines(conn: sqlite3.Connection, seed: Seed) -> None:
    """The account shows due dates, overdue and renewable flags, ready holds and fines."""
    response = ask(conn, seed, AccountQuery(patron_id="P-FREE"))
    assert isinstance(response.body, AccountAnswer)
    loans = {loan.item_id: loan for loan in response.body.loans}
    assert set(loans) == {"I-LOAN", "I-LIMIT", "I-OVERDUE"}
    assert loans["I-OVERDUE"].overdue
    assert loans["I-OVERDUE"].due_date == TODAY - dt.timedelta(2)
    assert not loans["I-OVERDUE"].renewable  # someone holds it
    assert not loans["I-LIMIT"].renewable  # renewed to the limit already
    assert loans["I-LOAN"].renewable
    assert not loans["I-LOAN"].overdue
    assert loans["I-LOAN"].title == "Tắt đèn"
    [hold] = response.body.holds_ready
    assert (hold.item_id, hold.pickup_by) == ("I-READY", TODAY + dt.timedelta(days=3))
    assert (response.body.fines, response.body.currency) == (0, "VND")
    fined = ask(conn, seed, AccountQuery(patron_id="P-FINES"))
    assert isinstance(fined.body, AccountAnswer)
    assert fined.body.fines == 45000
    assert ask(conn, seed, AccountQuery(patron_id="P-NOBODY")).reason is (
        RefusalReason.PATRON_UNKNOWN
    )


def test_blocked_patron_sees_no_loan_as_renewable(conn: sqlite3.Connection, seed: Seed) -> None:
    """A patron blocked by fines may look at the account but renew nothing."""
    with store.write_txn(conn):
        conn.execute("UPDATE patrons SET fines = 90000 WHERE patron_id = 'P-FREE'")
    response = ask(conn, seed, AccountQuery(patron_id="P-FREE"))
    assert isinstance(response.body, AccountAnswer)
    assert [loan.renewable for loan in response.body.loans] == [False, False, False]
