"""A patron's visit end to end: identification, PIN, activities, receipt, goodbye, timeouts.

Most tests run synchronously (InlineWorker) over the in-memory pad; what is checked here is
the session's life, privacy (the PIN and the patron's details) and the screens, not the pad.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.contract import Checkout, PatronLookup, Refusal, RefusalReason, Renewal
from hardware.printer import PrinterOutOfPaper
from hardware.rfid_ops import SecurityResult
from hardware.tags import ItemData
from kiosk import messages as msg
from kiosk.adapters import ReaderPad
from kiosk.controller import KioskController
from kiosk.fakes import FakeClock, MemoryAgent, MemoryMailer, MemoryPad, MemoryPrinter, PadTag
from kiosk.flows import Flows, LineStatus
from kiosk.i18n import Catalogues
from kiosk.journal import IntentJournal
from kiosk.machine import State
from kiosk.presenter import ViewModel
from kiosk.workers import InlineWorker, PostQueue, ThreadWorker
from tests.test_kiosk_support import TITLES, TODAY, WAIT, Kiosk, config, make_kiosk


@pytest.fixture
def pad() -> MemoryPad:
    """An in-memory pad."""
    return MemoryPad()


@pytest.fixture
def kiosk(tmp_path: Path, pad: MemoryPad) -> Iterator[Kiosk]:
    """A synchronous kiosk with a printer."""
    k = make_kiosk(tmp_path, pad)
    yield k
    k.close()


def render(kiosk: Kiosk, text: msg.Text) -> str:
    return kiosk.controller.catalogues.render(text, kiosk.view.language)


def item_tag(item_id: str, *, secured: bool = True) -> PadTag:
    return PadTag.item(ItemData(item_id, owner_institution="VN-HaNL"), secured=secured)


def strings_in(view: ViewModel) -> list[str]:
    """Every string anywhere in a view model."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, tuple | list):
            for v in value:
                walk(v)

    walk(view)
    return found


_PORTS = (
    MemoryAgent,
    MemoryPad,
    ReaderPad,
    IntentJournal,
    FakeClock,
    MemoryPrinter,
    MemoryMailer,
    InlineWorker,
    ThreadWorker,
    PostQueue,
    Catalogues,
)
_OPAQUE = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.ModuleType,
    type,
    types.CodeType,
    logging.Logger,
)


def reachable_strings(controller: KioskController) -> list[str]:
    """Every string reachable from the controller's own state (ports and listeners excluded)."""
    gc.collect()
    seen: set[int] = set()
    found: list[str] = []
    stack: list[object] = [controller]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(obj)
            continue
        if isinstance(obj, _PORTS + _OPAQUE) or obj is controller._listeners:
            continue
        if isinstance(obj, Flows):
            continue  # holds only ports
        stack.extend(gc.get_referents(obj))
    return found


# ---------------------------------------------------------------- identification


def test_card_then_choice_screen_greets_the_patron(kiosk: Kiosk) -> None:
    """A known card without a PIN leads to the choice screen with the patron's name."""
    assert kiosk.view.screen == State.ATTRACT
    assert kiosk.view.keypad == "card"
    kiosk.identify("P0007")
    assert kiosk.view.title == "Hello, John Smith!"  # his language is English
    assert [b.id for b in kiosk.view.buttons] == ["borrow", "return", "renew", "account", "finish"]
    assert kiosk.view.countdown_s == 60


def test_pin_required_by_policy_never_leaves_the_keypad(
    tmp_path: Path, pad: MemoryPad, caplog: pytest.LogCaptureFixture
) -> None:
    """With pin_required the PIN screen comes first; the PIN reaches only the lookup request."""
    caplog.set_level(logging.DEBUG)
    kiosk = make_kiosk(tmp_path, pad, kiosk_config=config(pin_required=True), threaded=True)
    try:
        assert kiosk.controller.card_presented("P0001")
        assert kiosk.view.screen == State.PIN
        assert kiosk.view.keypad == "pin"
        assert kiosk.controller.pin_entered("1234")
        kiosk.settle()
        assert kiosk.run_until(lambda: kiosk.view.screen == State.CHOOSE)
        lookup = kiosk.agent.asked[0]
        assert isinstance(lookup, PatronLookup)
        assert lookup.pin is None
        assert all("1234" not in s for v in kiosk.views for s in strings_in(v))
        assert "1234" not in caplog.text
        assert "1234" not in reachable_strings(kiosk.controller)
    finally:
        kiosk.close()


@pytest.mark.parametrize("letters", [False, True])
def test_letters_are_offered_for_a_card_number_never_for_a_pin(
    tmp_path: Path, pad: MemoryPad, letters: bool
) -> None:
    """With card_keypad_letters the card keypad offers letters; the PIN keypad never does."""
    kiosk = make_kiosk(
        tmp_path, pad, kiosk_config=config(pin_required=True, card_keypad_letters=letters)
    )
    try:
        assert (kiosk.view.keypad, kiosk.view.keypad_letters) == ("card", letters)
        assert kiosk.controller.card_presented("P0001")
        assert (kiosk.view.keypad, kiosk.view.keypad_letters) == ("pin", False)
    finally:
        kiosk.close()


def test_central_asks_for_a_pin_even_when_the_kiosk_does_not(kiosk: Kiosk) -> None:
    """A card with a PIN at the central system leads to the PIN screen, then in."""
    kiosk.controller.card_presented("P0001")
    assert kiosk.view.screen == State.PIN
    assert kiosk.view.notice is None  # not "wrong PIN": none was typed yet
    assert kiosk.controller.pin_entered("1234")
    assert kiosk.view.screen == State.CHOOSE


def test_three_wrong_pins_end_the_visit(kiosk: Kiosk) -> None:
    """Wrong PINs are refused with a sentence; the third sends the patron to the desk."""
    kiosk.controller.card_presented("P0001")
    assert kiosk.controller.pin_entered("1111")
    assert kiosk.view.screen == State.PIN
    assert kiosk.view.notice == render(kiosk, msg.PIN_AGAIN)
    kiosk.controller.pin_entered("2222")
    kiosk.controller.pin_entered("3333")
    assert kiosk.view.screen == State.ATTRACT
    assert kiosk.view.notice == render(kiosk, msg.refusal("identify", RefusalReason.WRONG_PIN))
    refusals = [e for e in kiosk.agent.events() if isinstance(e, Refusal)]
    assert [r.reason for r in refusals] == [RefusalReason.WRONG_PIN] * 3  # not the no-PIN ask
    for pin in ("1111", "2222", "3333"):
        assert all(pin not in r.model_dump_json() for r in refusals)


def test_pin_must_be_digits(kiosk: Kiosk) -> None:
    """A PIN with letters is refused before anything is asked."""
    kiosk.controller.card_presented("P0001")
    asked = len(kiosk.agent.asked)
    result = kiosk.controller.pin_entered("12a4")
    assert not result
    assert result.error
    assert kiosk.view.notice == render(kiosk, msg.PIN_NOT_DIGITS)
    assert len(kiosk.agent.asked) == asked


def test_unknown_and_malformed_cards(kiosk: Kiosk) -> None:
    """An unknown card is refused in words; something that is not a card number is not asked."""
    assert kiosk.controller.card_presented("P9999")
    assert kiosk.view.screen == State.ATTRACT
    assert kiosk.view.notice == render(kiosk, msg.refusal("identify", RefusalReason.PATRON_UNKNOWN))
    asked = len(kiosk.agent.asked)
    result = kiosk.controller.card_presented("no such card!")
    assert not result
    assert result.error
    assert "pattern" in result.error
    assert kiosk.view.notice == render(kiosk, msg.CARD_NOT_A_NUMBER)
    assert len(kiosk.agent.asked) == asked


def test_blocked_patron_may_return_and_look_but_not_borrow(kiosk: Kiosk) -> None:
    """A blocked card: told why, Borrow and Renew disabled, Return and My account offered."""
    kiosk.identify("P0002")
    assert kiosk.view.notice == render(kiosk, msg.CANNOT_BORROW)
    enabled = {b.id: b.enabled for b in kiosk.view.buttons}
    assert enabled == {
        "borrow": False,
        "return": True,
        "renew": False,
        "account": True,
        "finish": True,
    }
    assert not kiosk.controller.choose("borrow")
    assert not kiosk.controller.press("borrow")
    assert kiosk.controller.press("account")


def test_agent_down_sends_the_patron_to_the_desk(kiosk: Kiosk) -> None:
    """Without the local agent nothing can be recorded: the kiosk says so and stays idle."""
    kiosk.agent.available = False
    assert kiosk.controller.card_presented("P0007")
    assert kiosk.view.screen == State.ATTRACT
    assert kiosk.view.notice == render(kiosk, msg.AGENT_DOWN)


# ---------------------------------------------------------------- the end of a visit


def visit(kiosk: Kiosk, pad: MemoryPad) -> None:
    kiosk.identify("P0001", pin="1234")
    kiosk.controller.choose("borrow")
    pad.place(item_tag("3100001"), item_tag("3100002"))
    kiosk.scan()
    assert [line.status for line in kiosk.view.lines] == [LineStatus.DONE] * 2


def test_done_receipt_goodbye_and_back_to_attract(kiosk: Kiosk, pad: MemoryPad) -> None:
    """Finish -> receipt (printed, masked card, due dates) -> goodbye -> attract after a while."""
    visit(kiosk, pad)
    assert kiosk.controller.done()
    assert kiosk.view.screen == State.RECEIPT
    assert [b.id for b in kiosk.view.buttons] == ["print", "none"]
    assert kiosk.controller.receipt("print")
    assert kiosk.view.screen == State.GOODBYE
    assert kiosk.controller.session is None
    assert kiosk.printer is not None
    (receipt,) = kiosk.printer.receipts
    assert receipt.language == "vi"
    assert receipt.lines[0] == "Thẻ: *0001"
    assert [i.title for i in receipt.items] == [TITLES["3100001"], TITLES["3100002"]]
    assert {i.due for i in receipt.items} == {TODAY + dt.timedelta(days=14)}
    kiosk.clock.advance(4)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.GOODBYE
    kiosk.clock.advance(2)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.ATTRACT


def test_email_receipt_and_printer_failures(tmp_path: Path, pad: MemoryPad) -> None:
    """E-mail goes to the patron's record; a printer out of paper is explained, not hidden."""
    kiosk = make_kiosk(tmp_path, pad, mailer=True)
    try:
        visit(kiosk, pad)
        kiosk.controller.done()
        assert [b.id for b in kiosk.view.buttons] == ["print", "email", "none"]
        kiosk.controller.receipt("email")
        assert kiosk.mailer is not None
        assert kiosk.mailer.sent[0][0] == "P0001"
        assert kiosk.view.notice == render(kiosk, msg.EMAIL_SENT)
        kiosk.clock.advance(10)
        kiosk.controller.tick()
        assert kiosk.printer is not None
        kiosk.printer.failure = PrinterOutOfPaper("paper end")
        pad.clear()
        kiosk.identify("P0007")
        kiosk.controller.choose("borrow")
        pad.place(item_tag("3100003"))
        kiosk.scan()
        kiosk.controller.done()
        kiosk.controller.receipt("print")
        assert kiosk.view.screen == State.GOODBYE
        assert kiosk.view.notice == render(kiosk, msg.PRINTER_FAILED)
    finally:
        kiosk.close()


@pytest.mark.parametrize(
    ("default", "printed", "screen"),
    [("print", 1, State.GOODBYE), ("none", 0, State.GOODBYE), ("ask", 0, State.RECEIPT)],
)
def test_receipt_default(
    tmp_path: Path, pad: MemoryPad, default: str, printed: int, screen: State
) -> None:
    """receipt_default decides whether the receipt screen is shown or skipped."""
    kiosk = make_kiosk(tmp_path, pad, kiosk_config=config(receipt_default=default))
    try:
        visit(kiosk, pad)
        kiosk.controller.done()
        assert kiosk.view.screen == screen
        assert kiosk.printer is not None
        assert len(kiosk.printer.receipts) == printed
    finally:
        kiosk.close()


def test_inactivity_countdown_then_timeout(kiosk: Kiosk, pad: MemoryPad) -> None:
    """The countdown is visible and warns in the last seconds; at zero the visit is closed."""
    visit(kiosk, pad)
    kiosk.clock.advance(30)
    kiosk.controller.tick()
    assert kiosk.view.countdown_s == 30
    assert kiosk.view.notice is None
    kiosk.clock.advance(15)
    kiosk.controller.tick()
    assert kiosk.view.countdown_s == 15
    assert kiosk.view.notice == render(kiosk, msg.countdown(15))
    kiosk.controller.set_language("en")  # a touch restarts the countdown
    assert kiosk.view.countdown_s == 60
    kiosk.clock.advance(60)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.ATTRACT
    assert kiosk.view.notice == render(kiosk, msg.SESSION_CLOSED)
    assert kiosk.view.countdown_s is None
    assert kiosk.view.language == "vi"


@pytest.mark.parametrize("ending", ["timeout", "receipt", "cancel"])
def test_nothing_of_the_patron_remains(kiosk: Kiosk, pad: MemoryPad, ending: str) -> None:
    """After the visit ends no string of the patron is reachable from the controller or view."""
    visit(kiosk, pad)
    kiosk.controller.back()
    kiosk.controller.choose("account")
    personal = ["P0001", "Nguyễn Văn An", TITLES["3100001"], TITLES["3100002"]]
    assert any(p in s for s in reachable_strings(kiosk.controller) for p in personal)
    if ending == "timeout":
        kiosk.clock.advance(61)
        kiosk.controller.tick()
    elif ending == "receipt":
        kiosk.controller.done()
        kiosk.controller.receipt("print")
    else:
        kiosk.controller.cancel()
    kiosk.settle()
    assert kiosk.controller.session is None
    leftovers = [s for s in reachable_strings(kiosk.controller) for p in personal if p in s]
    assert leftovers == []
    assert not any(p in s for s in strings_in(kiosk.view) for p in personal)


def test_language_follows_the_patron_and_can_change_anywhere(kiosk: Kiosk, pad: MemoryPad) -> None:
    """Every screen re-renders in the new language at once; the patron's own language is used."""
    screens = []

    def check() -> None:
        screens.append(kiosk.view.screen)
        assert kiosk.controller.set_language("en")
        english = kiosk.view.title
        assert [lang.selected for lang in kiosk.view.languages] == [False, True]
        assert kiosk.controller.set_language("vi")
        assert kiosk.view.title != english or not english
        assert [lang.code for lang in kiosk.view.languages] == ["vi", "en"]

    check()  # attract
    kiosk.controller.card_presented("P0004")
    check()  # pin
    kiosk.controller.pin_entered("0000")
    check()  # choose
    for activity in ("borrow", "return", "renew", "account"):
        kiosk.controller.choose(activity)
        check()
        kiosk.controller.back()
    kiosk.controller.choose("borrow")
    pad.place(item_tag("3100001"))
    kiosk.scan()
    kiosk.controller.done()
    check()  # receipt
    kiosk.controller.receipt("none")
    check()  # goodbye
    assert not kiosk.controller.set_language("fr")
    assert set(screens) >= {
        State.ATTRACT,
        State.PIN,
        State.CHOOSE,
        State.CHECKOUT,
        State.CHECKIN,
        State.RENEW,
        State.ACCOUNT,
        State.RECEIPT,
        State.GOODBYE,
    }


# ---------------------------------------------------------------- renew and account


def test_renew_and_account(kiosk: Kiosk, pad: MemoryPad) -> None:
    """Loans are listed with due dates; renewable ones are renewed and recorded; holds and fines."""
    agent = kiosk.agent
    for item_id, due in (
        ("3100003", TODAY + dt.timedelta(days=2)),
        ("3100004", TODAY - dt.timedelta(days=1)),
        ("3100005", TODAY + dt.timedelta(days=5)),
    ):
        item = agent.items[item_id]
        item.state, item.patron_id, item.due = "on_loan", "P0006", due
    agent.items["3100005"].holds.append("P0001")
    agent.items["3100009"].holds.append("P0006")
    kiosk.identify("P0006")
    kiosk.controller.choose("account")
    account = kiosk.view.account
    assert account is not None
    assert [row.title for row in account.loans] == [
        TITLES["3100003"],
        TITLES["3100004"],
        TITLES["3100005"],
    ]
    assert account.loans[1].alert
    assert account.loans[1].detail == render(kiosk, msg.loan_overdue(TODAY - dt.timedelta(days=1)))
    assert [row.title for row in account.holds] == [TITLES["3100009"]]
    assert account.fines == "Phí cần nộp ở quầy: 5.000 đ"

    kiosk.controller.back()
    kiosk.controller.choose("renew")
    lines = {line.key: line for line in kiosk.view.lines}
    assert lines["loan:3100003"].can_renew
    assert not lines["loan:3100005"].can_renew
    assert kiosk.controller.renew_all()
    lines = {line.key: line for line in kiosk.view.lines}
    new_due = TODAY + dt.timedelta(days=14)
    assert lines["loan:3100003"].message == render(kiosk, msg.renewed(new_due))
    assert lines["loan:3100003"].status is LineStatus.DONE
    renewals = [e for e in agent.events() if isinstance(e, Renewal)]
    assert sorted(r.item_id for r in renewals) == ["3100003", "3100004"]
    assert not kiosk.controller.renew("3100005")  # on hold: not offered


def test_renewal_refused_by_the_central_system(kiosk: Kiosk) -> None:
    """A loan that reached its renewal limit meanwhile is refused with a sentence and recorded."""
    item = kiosk.agent.items["3100003"]
    item.state, item.patron_id, item.due = "on_loan", "P0007", TODAY
    kiosk.identify("P0007")
    kiosk.controller.choose("renew")
    item.renewals = 2
    assert kiosk.controller.renew("3100003")
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.REFUSED
    assert line.message == render(kiosk, msg.refusal("renew", RefusalReason.RENEWAL_LIMIT))
    (refusal,) = [e for e in kiosk.agent.events() if isinstance(e, Refusal)]
    assert refusal.action == "renew"
    assert refusal.reason is RefusalReason.RENEWAL_LIMIT


# ---------------------------------------------------------------- refused inputs


def test_inputs_out_of_place_are_refused_not_raised(
    kiosk: Kiosk, caplog: pytest.LogCaptureFixture
) -> None:
    """Inputs the state does not accept return an error naming the state, and are logged."""
    caplog.set_level(logging.WARNING)
    for call in (
        lambda: kiosk.controller.pin_entered("1234"),
        kiosk.controller.done,
        lambda: kiosk.controller.receipt("print"),
        lambda: kiosk.controller.choose("borrow"),
        kiosk.controller.back,
        lambda: kiosk.controller.renew("3100001"),
        kiosk.controller.leave_staff,
    ):
        result = call()
        assert not result
        assert result.error
        assert "'attract'" in result.error
    assert not kiosk.controller.choose("dance")
    assert not kiosk.controller.press("launch")
    assert not kiosk.controller.press("finish")  # not on this screen
    assert "not possible in state 'attract'" in caplog.text
    assert kiosk.view.screen == State.ATTRACT


class GatedPad(MemoryPad):
    """A pad whose security switch waits for the test to open the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def set_security(self, uid: bytes, *, secured: bool) -> SecurityResult:
        assert self.gate.wait(WAIT), "the test never opened the gate"
        return super().set_security(uid, secured=secured)


def test_finish_waits_for_items_in_progress(tmp_path: Path) -> None:
    """While an item is being processed Finish is disabled and refused; then it is accepted."""
    pad = GatedPad()
    kiosk = make_kiosk(tmp_path, pad, threaded=True)
    try:
        kiosk.identify("P0007")
        kiosk.controller.choose("borrow")
        pad.place(item_tag("3100001"))
        kiosk.controller.scan_now()
        assert kiosk.run_until(lambda: [line.status for line in kiosk.view.lines] == ["checking"])
        assert kiosk.view.busy
        assert {b.id: b.enabled for b in kiosk.view.buttons}["finish"] is False
        assert kiosk.view.countdown_s is None  # work in progress is not inactivity
        assert not kiosk.controller.done()
        assert not kiosk.controller.press("finish")
        pad.gate.set()
        assert kiosk.run_until(lambda: [line.status for line in kiosk.view.lines] == ["done"])
        kiosk.settle()
        assert not kiosk.view.busy
        assert kiosk.controller.done()
        assert [e.item_id for e in kiosk.agent.events() if isinstance(e, Checkout)] == ["3100001"]
    finally:
        pad.gate.set()
        kiosk.close()


def test_a_library_card_on_the_pad_starts_a_visit_once(kiosk: Kiosk, pad: MemoryPad) -> None:
    """A card put on the pad identifies the patron; left lying there it does not start another."""
    card = PadTag.item(ItemData("P0007", type_of_usage=0x80))
    pad.place(card)
    kiosk.clock.advance(1)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.CHOOSE
    assert kiosk.view.title == "Hello, John Smith!"
    kiosk.controller.cancel()
    for _ in range(3):
        kiosk.clock.advance(1)
        kiosk.controller.tick()
    assert kiosk.view.screen == State.ATTRACT  # the card still lies there: ignored
    pad.remove(card.uid)
    kiosk.clock.advance(1)
    kiosk.controller.tick()
    pad.place(card)
    kiosk.clock.advance(1)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.CHOOSE  # put back on purpose: a new visit
