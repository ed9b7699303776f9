"""Borrowing a stack online: the simulated FEIG reader on a pty, the real driver, a fake agent.

Every item is authorised, unsecured and verified on the tag, and committed to the outbox
before its line says "borrowed"; items that cannot be lent are refused with a sentence (and a
Refusal event), and an item whose security cannot be switched is not lent at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.contract import Checkout, Refusal, RefusalReason, SecurityWriteFailure
from hardware.tags import SetInfo
from kiosk import messages as msg
from kiosk.flows import LineStatus
from kiosk.presenter import ViewModel
from simulators.reader import SimTag
from tests.test_kiosk_support import (
    NOT_FOR_LOAN,
    ON_HOLD,
    SECURITY,
    SET_ITEM,
    TITLES,
    TODAY,
    Kiosk,
    SimPad,
    make_kiosk,
    sim_pad,
    sim_tag,
)

SECURED, ON_LOAN = SECURITY.secured_afi, SECURITY.unsecured_afi


@pytest.fixture
def rig() -> Iterator[SimPad]:
    """A simulated pad on a pty."""
    with sim_pad() as pad:
        yield pad


@pytest.fixture
def kiosk(tmp_path: Path, rig: SimPad) -> Iterator[Kiosk]:
    """A kiosk with a real worker thread over the simulated pad."""
    k = make_kiosk(tmp_path, rig.pad, threaded=True)
    yield k
    k.close()


def render(kiosk: Kiosk, text: msg.Text) -> str:
    return kiosk.controller.catalogues.render(text, kiosk.view.language)


def checkouts(kiosk: Kiosk) -> dict[str, Checkout]:
    return {e.item_id: e for e in kiosk.agent.events() if isinstance(e, Checkout)}


def test_stack_is_lent_item_by_item_and_committed_before_display(kiosk: Kiosk, rig: SimPad) -> None:
    """Five items each get their own line; a line says borrowed only once its event is committed."""
    seen_done: set[str] = set()

    def check(view: ViewModel) -> None:
        committed = checkouts(kiosk)
        for line in view.lines:
            if line.status is LineStatus.DONE and line.key not in seen_done:
                seen_done.add(line.key)
                item_id = line.key.rsplit("/", 1)[1]
                assert item_id in committed, f"{item_id} shown as borrowed before its commit"
                tag = next(
                    t for t in rig.field.tags() if t.uid.hex().upper() == committed[item_id].tag_uid
                )
                assert rig.afi(tag) == ON_LOAN, "shown as borrowed before the tag was unsecured"

    kiosk.controller.subscribe(check)
    kiosk.identify("P0007")
    assert kiosk.controller.choose("borrow")
    items = list(TITLES)[:5]
    tags = [sim_tag(i) for i in items]
    rig.field.place(*tags)
    kiosk.scan()

    lines = kiosk.view.lines
    assert [line.status for line in lines] == [LineStatus.DONE] * 5
    due = TODAY + dt.timedelta(days=14)
    for line, item in zip(lines, items, strict=True):
        assert line.title == TITLES[item]
        assert line.message == render(kiosk, msg.borrowed(due))
    assert sorted(checkouts(kiosk)) == sorted(items)
    assert all(e.due_date == due and not e.offline for e in checkouts(kiosk).values())
    assert [rig.afi(t) for t in tags] == [ON_LOAN] * 5
    # Each line became final on its own: some view showed exactly k lines done, for every k.
    done_counts = {sum(line.status is LineStatus.DONE for line in v.lines) for v in kiosk.views}
    assert set(range(6)) <= done_counts
    assert kiosk.journal.count() == 0


def test_item_whose_security_cannot_be_switched_is_not_lent(kiosk: Kiosk, rig: SimPad) -> None:
    """A tag with a locked AFI: the item is not lent, the failure is recorded, the patron told."""
    good, stuck = sim_tag("3100001"), sim_tag("3100002")
    stuck.afi_locked = True
    rig.field.place(good, stuck)
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    kiosk.scan()

    by_key = {line.key.rsplit("/", 1)[1]: line for line in kiosk.view.lines}
    assert by_key["3100001"].status is LineStatus.DONE
    assert by_key["3100002"].status is LineStatus.ATTENTION
    assert by_key["3100002"].message == render(kiosk, msg.NOT_LENT_SECURITY)
    assert "3100002" not in checkouts(kiosk)
    failures = [e for e in kiosk.agent.events() if isinstance(e, SecurityWriteFailure)]
    assert len(failures) == 1
    assert failures[0].tag_uid == stuck.uid.hex().upper()
    assert failures[0].wanted == "unsecured"
    assert failures[0].item_id == "3100002"
    assert rig.afi(stuck) == SECURED
    assert kiosk.journal.count() == 0


def test_refusals_are_recorded_and_explained(kiosk: Kiosk, rig: SimPad) -> None:
    """On hold, not for loan, unknown and over the limit: refused with words, tags left secured."""
    kiosk.identify("P0005")  # may borrow two items
    kiosk.controller.choose("borrow")
    tags = [sim_tag(i) for i in (ON_HOLD, NOT_FOR_LOAN, "9999999", "3100001", "3100002", "3100003")]
    rig.field.place(*tags)
    kiosk.scan()

    reasons = {e.item_id: e.reason for e in kiosk.agent.events() if isinstance(e, Refusal)}
    assert reasons == {
        ON_HOLD: RefusalReason.ITEM_ON_HOLD,
        NOT_FOR_LOAN: RefusalReason.ITEM_NOT_FOR_LOAN,
        "9999999": RefusalReason.ITEM_UNKNOWN,
        "3100003": RefusalReason.LIMIT_REACHED,
    }
    lines = {line.key.rsplit("/", 1)[1]: line for line in kiosk.view.lines}
    for item_id, reason in reasons.items():
        assert lines[item_id].status is LineStatus.REFUSED
        assert lines[item_id].message == render(kiosk, msg.refusal("checkout", reason))
        assert reason.value not in lines[item_id].message
    assert sorted(checkouts(kiosk)) == ["3100001", "3100002"]
    afis = {t.uid: rig.afi(t) for t in tags}
    assert [afis[t.uid] for t in tags[:3] + tags[5:]] == [SECURED] * 4


def test_multi_part_item_waits_for_every_part(kiosk: Kiosk, rig: SimPad) -> None:
    """Two of three parts wait on their line; with the third the set is lent as one item."""
    parts = [
        sim_tag(SET_ITEM, set_info=SetInfo(3, n), uid=bytes.fromhex(f"E00401AA000000{n:02X}"))
        for n in (1, 2, 3)
    ]
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    rig.field.place(parts[0], parts[1])
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.WAITING
    assert line.message == render(kiosk, msg.set_waiting(3, 2))
    assert not checkouts(kiosk)

    rig.field.place(parts[2])
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.DONE
    (event,) = checkouts(kiosk).values()
    assert event.item_id == SET_ITEM
    assert event.tag_uid is None
    assert [rig.afi(t) for t in parts] == [ON_LOAN] * 3


def test_incomplete_set_is_refused_when_the_patron_finishes(kiosk: Kiosk, rig: SimPad) -> None:
    """A set still missing a part when the patron presses Finish is refused and recorded."""
    parts = [
        sim_tag(SET_ITEM, set_info=SetInfo(3, n), uid=bytes.fromhex(f"E00401AB000000{n:02X}"))
        for n in (1, 3)
    ]
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    rig.field.place(*parts)
    kiosk.scan()
    assert kiosk.controller.done()
    kiosk.settle()
    (refusal,) = [e for e in kiosk.agent.events() if isinstance(e, Refusal)]
    assert refusal.reason is RefusalReason.INCOMPLETE_SET
    assert refusal.item_id == SET_ITEM
    assert refusal.detail == "2 of 3 parts on the pad"
    assert [rig.afi(t) for t in parts] == [SECURED, SECURED]
    assert kiosk.view.screen == "goodbye"  # nothing was lent: no receipt to offer


def test_foreign_items_cards_and_unreadable_tags(kiosk: Kiosk, rig: SimPad) -> None:
    """Another library's book is refused, a library card gets a friendly line, a blank tag too."""
    foreign = sim_tag("5550001", isil="VN-HCMGSL")
    card = sim_tag("P0001", type_of_usage=0x80)
    blank = SimTag(uid=bytes.fromhex("E004010000000BAD"))
    rig.field.place(foreign, card, blank)
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    kiosk.scan()

    lines = {line.key: line for line in kiosk.view.lines}
    assert lines["item:VN-HCMGSL/5550001"].status is LineStatus.REFUSED
    assert lines["item:VN-HCMGSL/5550001"].message == render(
        kiosk, msg.refusal("checkout", RefusalReason.FOREIGN_ITEM)
    )
    assert lines["card:P0001"].status is LineStatus.INFO
    assert lines["tag:E004010000000BAD"].status is LineStatus.REFUSED
    assert lines["tag:E004010000000BAD"].message == render(kiosk, msg.UNREADABLE_TAG)
    refusals = {e.reason: e for e in kiosk.agent.events() if isinstance(e, Refusal)}
    assert set(refusals) == {RefusalReason.FOREIGN_ITEM, RefusalReason.ITEM_UNKNOWN}
    assert "E004010000000BAD" in (refusals[RefusalReason.ITEM_UNKNOWN].detail or "")
    assert rig.afi(foreign) == SECURED
    assert not checkouts(kiosk)


def test_an_item_is_processed_once_per_visit(kiosk: Kiosk, rig: SimPad) -> None:
    """Reading the pad again does not lend or refuse the same items twice."""
    rig.field.place(sim_tag("3100001"), sim_tag(ON_HOLD))
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    kiosk.scan()
    before = len(kiosk.agent.events())
    kiosk.scan()
    kiosk.scan()
    assert len(kiosk.agent.events()) == before == 2
    assert len(kiosk.view.lines) == 2


def test_commit_failure_puts_the_security_back(kiosk: Kiosk, rig: SimPad) -> None:
    """When the outbox refuses the event, the tag is secured again and the item not lent."""
    tag = sim_tag("3100004")
    rig.field.place(tag)
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    kiosk.agent.refuse_appends = True
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.ATTENTION
    assert line.message == render(kiosk, msg.NOT_LENT_FAILURE)
    assert rig.afi(tag) == SECURED
    assert kiosk.agent.events() == []
    assert kiosk.journal.count() == 0


def test_lines_follow_the_language(kiosk: Kiosk, rig: SimPad) -> None:
    """Switching language re-renders the lines already on screen."""
    rig.field.place(sim_tag("3100001"), sim_tag(ON_HOLD))
    kiosk.identify("P0004", pin="0000")  # an English speaker: the screen switched to English
    assert kiosk.view.language == "en"
    kiosk.controller.choose("borrow")
    kiosk.scan()
    english = [line.message for line in kiosk.view.lines]
    assert kiosk.controller.set_language("vi")
    vietnamese = [line.message for line in kiosk.view.lines]
    assert (
        english[1] == "Another reader has reserved this book. Please leave it at the library desk."
    )
    assert vietnamese[1] == (
        "Sách này đang được người khác đặt trước — bạn vui lòng để lại ở quầy thủ thư nhé."
    )
    assert english[0] != vietnamese[0]
