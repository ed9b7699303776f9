"""Returning items online: security re-armed and verified, hold alerts, commit before the line.

The simulated FEIG reader on a pty and the real driver; the fake agent's library has the
items on loan first (lent through the kiosk itself, so the tags really are unsecured).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.contract import Checkin, Refusal, RefusalReason, SecurityWriteFailure
from kiosk import messages as msg
from kiosk.flows import LineStatus
from kiosk.presenter import ViewModel
from simulators.reader import SimTag
from tests.test_kiosk_support import SECURITY, TITLES, Kiosk, SimPad, make_kiosk, sim_pad, sim_tag

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


def lend(kiosk: Kiosk, patron: str, *item_ids: str) -> None:
    """Put items on loan in the fake library (as if lent earlier)."""
    for item_id in item_ids:
        item = kiosk.agent.items[item_id]
        item.state, item.patron_id, item.due = "on_loan", patron, None


def render(kiosk: Kiosk, text: msg.Text) -> str:
    return kiosk.controller.catalogues.render(text, kiosk.view.language)


def checkins(kiosk: Kiosk) -> dict[str, Checkin]:
    return {e.item_id: e for e in kiosk.agent.events() if isinstance(e, Checkin)}


def test_return_without_a_card_re_arms_every_item(kiosk: Kiosk, rig: SimPad) -> None:
    """ "Return books" on the attract screen: items come back secured, committed before display."""
    items = list(TITLES)[:3]
    lend(kiosk, "P0001", *items)
    tags = [sim_tag(i, secured=False) for i in items]
    rig.field.place(*tags)

    def check(view: ViewModel) -> None:
        done = checkins(kiosk)
        for line in view.lines:
            if line.status is LineStatus.DONE:
                assert line.key.rsplit("/", 1)[1] in done

    kiosk.controller.subscribe(check)
    assert kiosk.controller.choose("return")
    assert kiosk.view.screen == "checkin"
    kiosk.scan()
    assert [line.status for line in kiosk.view.lines] == [LineStatus.DONE] * 3
    assert {line.message for line in kiosk.view.lines} == {render(kiosk, msg.RETURNED)}
    assert [rig.afi(t) for t in tags] == [SECURED] * 3
    events = checkins(kiosk)
    assert sorted(events) == sorted(items)
    assert all(e.security_verified and not e.offline and not e.hold_alert for e in events.values())
    assert all(kiosk.agent.items[i].state == "on_shelf" for i in items)
    # No patron: going back to the choice screen is not offered, finishing is.
    assert [b.id for b in kiosk.view.buttons] == ["finish"]


def test_item_on_hold_goes_to_the_hold_shelf(kiosk: Kiosk, rig: SimPad) -> None:
    """A returned item someone waits for: the line says hold shelf, the event carries the alert."""
    lend(kiosk, "P0001", "3100009")
    kiosk.agent.items["3100009"].holds.append("P0004")
    rig.field.place(sim_tag("3100009", secured=False))
    kiosk.identify("P0001", pin="1234")
    kiosk.controller.choose("return")
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.DONE
    assert line.hold
    assert line.message == render(kiosk, msg.RETURNED_HOLD)
    assert "giá sách đặt trước" in line.message
    assert checkins(kiosk)["3100009"].hold_alert


def test_tag_that_will_not_arm_is_returned_but_flagged(kiosk: Kiosk, rig: SimPad) -> None:
    """The item is back but its tag stays unsecured: recorded unverified plus a failure event."""
    lend(kiosk, "P0001", "3100005")
    tag = sim_tag("3100005", secured=False)
    tag.afi_locked = True
    rig.field.place(tag)
    kiosk.controller.choose("return")
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.ATTENTION
    assert line.message == render(kiosk, msg.RETURNED_NOT_LOCKED)
    assert checkins(kiosk)["3100005"].security_verified is False
    (failure,) = [e for e in kiosk.agent.events() if isinstance(e, SecurityWriteFailure)]
    assert failure.wanted == "secured"
    assert failure.tag_uid == tag.uid.hex().upper()
    assert kiosk.journal.count() == 0


def test_unknown_and_foreign_items_are_not_taken_back(kiosk: Kiosk, rig: SimPad) -> None:
    """An unknown item and another library's item are refused with a sentence each."""
    unknown, foreign = (
        sim_tag("8888888", secured=False),
        sim_tag("42", isil="DK-710100", secured=False),
    )
    rig.field.place(unknown, foreign)
    kiosk.controller.choose("return")
    kiosk.scan()
    lines = {line.key: line for line in kiosk.view.lines}
    assert lines["item:VN-HaNL/8888888"].message == render(
        kiosk, msg.refusal("checkin", RefusalReason.ITEM_UNKNOWN)
    )
    assert lines["item:DK-710100/42"].message == render(
        kiosk, msg.refusal("checkin", RefusalReason.FOREIGN_ITEM)
    )
    reasons = sorted(e.reason for e in kiosk.agent.events() if isinstance(e, Refusal))
    assert reasons == sorted([RefusalReason.ITEM_UNKNOWN, RefusalReason.FOREIGN_ITEM])
    assert rig.afi(unknown) == ON_LOAN
    assert rig.afi(foreign) == ON_LOAN


def test_return_that_cannot_be_recorded_is_undone(kiosk: Kiosk, rig: SimPad) -> None:
    """When the outbox refuses the Checkin, the tag is put back as it was: still on loan."""
    lend(kiosk, "P0001", "3100006")
    tag = sim_tag("3100006", secured=False)
    rig.field.place(tag)
    kiosk.controller.choose("return")
    kiosk.agent.refuse_appends = True
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.ATTENTION
    assert line.message == render(kiosk, msg.NOT_RETURNED_FAILURE)
    assert rig.afi(tag) == ON_LOAN
    assert kiosk.agent.items["3100006"].state == "on_loan"
    assert kiosk.journal.count() == 0


def test_blank_tag_on_return(kiosk: Kiosk, rig: SimPad) -> None:
    """A tag without library data is refused with a sentence, not a code."""
    rig.field.place(SimTag(uid=bytes.fromhex("E004010000000ABC")))
    kiosk.controller.choose("return")
    kiosk.scan()
    (line,) = kiosk.view.lines
    assert line.status is LineStatus.REFUSED
    assert line.message == render(kiosk, msg.UNREADABLE_TAG)
