"""Offline mode: the central system is unreachable and the kiosk applies the library's policy.

Banner; maximum items per patron; cached patron blocks; type of usage "not for offline issue"
(3, 5) and "not for offline return" (4, 5); cached item states; the default loan period;
every event flagged ``offline=True`` for the central side to reconcile. The flows run over the
simulated reader on a pty; the policy's corner cases are checked directly on OfflineRules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import OfflinePolicy
from edge_agent.contract import (
    Checkin,
    Checkout,
    ItemState,
    LoanPolicy,
    Refusal,
    RefusalReason,
)
from hardware.tags import ItemData
from kiosk import messages as msg
from kiosk.flows import LineStatus
from kiosk.offline import OfflineRules
from kiosk.presenter import BannerKind
from tests.test_kiosk_support import (
    ON_HOLD,
    SECURITY,
    TITLES,
    TODAY,
    Kiosk,
    SimPad,
    config,
    library,
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


def offline_kiosk(tmp_path: Path, rig: SimPad, **changes: object) -> Kiosk:
    agent = library(loan_days=21, offline_max_items=5)
    agent.central_up = False
    return make_kiosk(tmp_path, rig.pad, agent=agent, kiosk_config=config(**changes), threaded=True)


@pytest.fixture
def kiosk(tmp_path: Path, rig: SimPad) -> Iterator[Kiosk]:
    """A kiosk whose central system is unreachable."""
    k = offline_kiosk(tmp_path, rig)
    yield k
    k.close()


def render(kiosk: Kiosk, text: msg.Text) -> str:
    return kiosk.controller.catalogues.render(text, kiosk.view.language)


def test_offline_banner_and_checkout_with_the_default_loan_period(
    kiosk: Kiosk, rig: SimPad
) -> None:
    """A patron is admitted on the card; items are lent for the cached loan period, flagged."""
    assert [b.kind for b in kiosk.view.banners] == [BannerKind.OFFLINE]
    assert kiosk.view.banners[0].text == render(kiosk, msg.OFFLINE_BANNER)
    kiosk.identify("P0007")
    assert kiosk.view.title == render(kiosk, msg.HELLO)  # no name offline
    kiosk.controller.choose("borrow")
    tags = [sim_tag(i) for i in list(TITLES)[:2]]
    rig.field.place(*tags)
    kiosk.scan()
    due = TODAY + dt.timedelta(days=21)  # the central system's cached policy wins
    assert [line.message for line in kiosk.view.lines] == [render(kiosk, msg.borrowed(due))] * 2
    assert all(line.offline for line in kiosk.view.lines)
    events = [e for e in kiosk.agent.events() if isinstance(e, Checkout)]
    assert len(events) == 2
    assert all(e.offline and e.due_date == due for e in events)
    assert [rig.afi(t) for t in tags] == [ON_LOAN, ON_LOAN]
    # Titles came from the cached item states.
    assert [line.title for line in kiosk.view.lines] == [TITLES[i] for i in list(TITLES)[:2]]


def test_offline_limit_per_patron(kiosk: Kiosk, rig: SimPad) -> None:
    """The stricter of the configured (3) and cached (5) maximum applies per visit."""
    kiosk.identify("P0007")
    kiosk.controller.choose("borrow")
    items = list(TITLES)[:4]
    rig.field.place(*[sim_tag(i) for i in items[:2]])
    kiosk.scan()
    rig.field.place(*[sim_tag(i) for i in items[2:]])
    kiosk.scan()
    statuses = [line.status for line in kiosk.view.lines]
    assert statuses == [LineStatus.DONE] * 3 + [LineStatus.REFUSED]
    assert kiosk.view.lines[3].message == render(
        kiosk, msg.refusal("checkout", RefusalReason.LIMIT_REACHED)
    )
    (refusal,) = [e for e in kiosk.agent.events() if isinstance(e, Refusal)]
    assert refusal.offline
    assert refusal.reason is RefusalReason.LIMIT_REACHED


def test_cached_block_list_refuses_the_patron(kiosk: Kiosk) -> None:
    """A patron on the cached block list is turned away offline, and the refusal recorded."""
    assert kiosk.controller.card_presented("P0002")
    kiosk.settle()
    assert kiosk.run_until(lambda: kiosk.view.screen == "attract")
    assert kiosk.view.notice == render(kiosk, msg.refusal("identify", RefusalReason.PATRON_BLOCKED))
    (refusal,) = kiosk.agent.events()
    assert isinstance(refusal, Refusal)
    assert refusal.action == "identify"
    assert refusal.offline
    assert refusal.reason is RefusalReason.PATRON_BLOCKED


def test_not_for_offline_issue_and_cached_holds(kiosk: Kiosk, rig: SimPad) -> None:
    """Type of usage 3 and 5, an item the cache shows on hold: refused offline, tags untouched."""
    no3 = sim_tag("3100001", type_of_usage=0x13)
    no5 = sim_tag("3100002", type_of_usage=0x15)
    return_only = sim_tag("3100003", type_of_usage=0x14)  # not for offline *return*: may go out
    held = sim_tag(ON_HOLD)
    rig.field.place(no3, no5, return_only, held)
    kiosk.identify("P0001")
    kiosk.controller.choose("borrow")
    kiosk.scan()
    reasons = {e.item_id: e.reason for e in kiosk.agent.events() if isinstance(e, Refusal)}
    assert reasons == {
        "3100001": RefusalReason.NOT_FOR_OFFLINE,
        "3100002": RefusalReason.NOT_FOR_OFFLINE,
        ON_HOLD: RefusalReason.ITEM_ON_HOLD,
    }
    assert [e.item_id for e in kiosk.agent.events() if isinstance(e, Checkout)] == ["3100003"]
    assert [rig.afi(t) for t in (no3, no5, held)] == [SECURED] * 3


def test_offline_return_policy(kiosk: Kiosk, rig: SimPad) -> None:
    """Returns offline: 4/5 refused, a cached hold still gives the hold-shelf message."""
    kiosk.agent.items["3100004"].holds.append("P0004")
    plain = sim_tag("3100001", secured=False)
    no_return = sim_tag("3100002", secured=False, type_of_usage=0x14)
    held = sim_tag("3100004", secured=False)
    rig.field.place(plain, no_return, held)
    kiosk.controller.choose("return")
    kiosk.scan()
    lines = {line.key.rsplit("/", 1)[1]: line for line in kiosk.view.lines}
    assert lines["3100001"].message == render(kiosk, msg.RETURNED)
    assert lines["3100002"].message == render(
        kiosk, msg.refusal("checkin", RefusalReason.NOT_FOR_OFFLINE)
    )
    assert lines["3100004"].message == render(kiosk, msg.RETURNED_HOLD)
    checkins = {e.item_id: e for e in kiosk.agent.events() if isinstance(e, Checkin)}
    assert sorted(checkins) == ["3100001", "3100004"]
    assert all(e.offline for e in checkins.values())
    assert checkins["3100004"].hold_alert
    assert rig.afi(no_return) == ON_LOAN


def test_borrowing_switched_off_offline(tmp_path: Path, rig: SimPad) -> None:
    """With offline checkout disallowed the banner says so and Borrow is not offered."""
    kiosk = offline_kiosk(tmp_path, rig, offline=OfflinePolicy(allow_checkout=False))
    try:
        assert kiosk.view.banners[0].text == render(kiosk, msg.OFFLINE_NO_BORROWING)
        kiosk.identify("P0007")
        buttons = {b.id: b.enabled for b in kiosk.view.buttons}
        assert buttons["borrow"] is False
        assert buttons["return"] is True
        assert not kiosk.controller.choose("borrow")
    finally:
        kiosk.close()


@pytest.mark.parametrize("admit", [True, False], ids=["card-alone", "turned-away"])
def test_a_pin_that_cannot_be_checked_offline_follows_the_librarys_choice(
    tmp_path: Path, rig: SimPad, admit: bool
) -> None:
    """With PINs required, offline the library chooses: admit on the card, or turn away.

    Turned away, the patron reads why, and the refusal is recorded without the PIN.
    """
    kiosk = offline_kiosk(
        tmp_path,
        rig,
        pin_required=True,
        offline=OfflinePolicy(max_items_per_patron=3, admit_without_pin_check=admit),
    )
    try:
        assert kiosk.controller.card_presented("P0007")
        assert kiosk.view.screen == "pin"
        assert kiosk.controller.pin_entered("8642")
        kiosk.settle()
        if admit:
            assert kiosk.run_until(lambda: kiosk.view.screen == "choose")
            assert kiosk.agent.events() == []
            return
        assert kiosk.run_until(lambda: kiosk.view.screen == "attract")
        expected = msg.refusal("identify", RefusalReason.NOT_FOR_OFFLINE)
        assert kiosk.view.notice == render(kiosk, expected)
        (refusal,) = kiosk.agent.events()
        assert isinstance(refusal, Refusal)
        assert (refusal.action, refusal.reason, refusal.offline) == (
            "identify",
            RefusalReason.NOT_FOR_OFFLINE,
            True,
        )
        assert "8642" not in refusal.model_dump_json()
    finally:
        kiosk.close()


def test_link_lost_in_the_middle_of_a_visit(tmp_path: Path, rig: SimPad) -> None:
    """Identified online, then the link drops: the next items are decided offline, banner shown."""
    kiosk = make_kiosk(tmp_path, rig.pad, threaded=True)
    try:
        kiosk.identify("P0007")
        kiosk.controller.choose("borrow")
        rig.field.place(sim_tag("3100001"))
        kiosk.scan()
        kiosk.agent.central_up = False
        rig.field.place(sim_tag("3100002"))
        kiosk.scan()
        events = {e.item_id: e for e in kiosk.agent.events() if isinstance(e, Checkout)}
        assert events["3100001"].offline is False
        assert events["3100002"].offline is True
        assert BannerKind.OFFLINE in [b.kind for b in kiosk.view.banners]
    finally:
        kiosk.close()


def test_renewing_and_the_account_need_the_central_system(kiosk: Kiosk) -> None:
    """Offline, the account cannot be shown and nothing can be renewed: said in words."""
    kiosk.identify("P0007")
    kiosk.controller.choose("account")
    kiosk.settle()
    assert kiosk.view.prompt == render(kiosk, msg.ACCOUNT_UNAVAILABLE)
    kiosk.controller.back()
    kiosk.controller.choose("renew")
    kiosk.settle()
    assert kiosk.view.notice == render(
        kiosk, msg.refusal("renew", RefusalReason.CENTRAL_UNREACHABLE)
    )
    assert not kiosk.controller.renew_all()


# ---------------------------------------------------------------- the policy itself


RULES = OfflineRules(OfflinePolicy(max_items_per_patron=4, loan_days=10))


def test_policy_limits_and_loan_period() -> None:
    """Without a cached policy the configuration decides; with one, the stricter limit."""
    assert RULES.max_items(None) == 4
    assert RULES.loan_days(None) == 10
    cached = LoanPolicy(loan_days=21, offline_max_items=2)
    assert RULES.max_items(cached) == 2
    assert RULES.due_date(dt.date(2025, 12, 25), cached) == dt.date(2026, 1, 15)


def test_policy_refusals_per_rule() -> None:
    """Each rule refuses with its own reason."""
    states = {
        "held": ItemState(item_id="held", state="on_hold"),
        "out": ItemState(item_id="out", state="on_loan"),
        "lost": ItemState(item_id="lost", state="missing"),
        "flagged": ItemState(item_id="flagged", state="on_shelf", not_for_offline_issue=True),
    }

    def refusal(
        item: ItemData, blocked: RefusalReason | None = None, lent: int = 0
    ) -> RefusalReason | None:
        return RULES.checkout_refusal(
            item,
            blocked=blocked,
            state=states.get(item.primary_item_id),
            cached=None,
            lent_this_session=lent,
        )

    assert refusal(ItemData("a")) is None
    assert refusal(ItemData("a"), blocked=RefusalReason.PATRON_BLOCKED) is (
        RefusalReason.PATRON_BLOCKED
    )
    assert refusal(ItemData("a", type_of_usage=0x20)) is RefusalReason.ITEM_NOT_FOR_LOAN
    assert refusal(ItemData("a", type_of_usage=0x70)) is RefusalReason.ITEM_NOT_FOR_LOAN
    assert refusal(ItemData("a", type_of_usage=0x13)) is RefusalReason.NOT_FOR_OFFLINE
    assert refusal(ItemData("a", type_of_usage=0x15)) is RefusalReason.NOT_FOR_OFFLINE
    assert refusal(ItemData("a", type_of_usage=0x14)) is None
    assert refusal(ItemData("held")) is RefusalReason.ITEM_ON_HOLD
    assert refusal(ItemData("out")) is RefusalReason.ITEM_ALREADY_ON_LOAN
    assert refusal(ItemData("lost")) is RefusalReason.OTHER
    assert refusal(ItemData("flagged")) is RefusalReason.NOT_FOR_OFFLINE
    assert refusal(ItemData("a"), lent=4) is RefusalReason.LIMIT_REACHED
    assert RULES.checkin_refusal(ItemData("a", type_of_usage=0x14)) is RefusalReason.NOT_FOR_OFFLINE
    assert RULES.checkin_refusal(ItemData("a", type_of_usage=0x15)) is RefusalReason.NOT_FOR_OFFLINE
    assert RULES.checkin_refusal(ItemData("a", type_of_usage=0x13)) is None
    assert RULES.hold_alert(states["held"])
    assert not RULES.hold_alert(None)
    closed = OfflineRules(OfflinePolicy(allow_checkout=False, allow_checkin=False))
    assert (
        closed.checkout_refusal(
            ItemData("a"), blocked=None, state=None, cached=None, lent_this_session=0
        )
        is RefusalReason.CENTRAL_UNREACHABLE
    )
    assert closed.checkin_refusal(ItemData("a")) is RefusalReason.CENTRAL_UNREACHABLE


def test_without_a_cached_policy_the_configuration_decides(tmp_path: Path, rig: SimPad) -> None:
    """Central never sent a loan policy: the configured loan period and limit apply."""
    agent = library()
    agent.central_up, agent.has_policy = False, False
    kiosk = make_kiosk(tmp_path, rig.pad, agent=agent, threaded=True)
    try:
        kiosk.identify("P0007")
        kiosk.controller.choose("borrow")
        rig.field.place(sim_tag("3100001"))
        kiosk.scan()
        (event,) = [e for e in kiosk.agent.events() if isinstance(e, Checkout)]
        assert event.due_date == TODAY + dt.timedelta(days=14)
        assert event.offline
    finally:
        kiosk.close()
