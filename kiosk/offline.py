"""The library's offline policy: what the kiosk may decide while the central system is away.

When the agent answers :class:`~edge_agent.link.answers.Offline`, the kiosk keeps serving
within limits the library set, from its configuration
(:class:`~edge_agent.config.OfflinePolicy`) and from the caches the central system pushed
last (patron blocks, item states, loan policy):

- borrowing and returning can each be switched off;
- at most ``max_items_per_patron`` items per patron and session (the stricter of the
  configured value and the central system's ``offline_max_items``);
- patrons on the cached block list are refused;
- items whose tag's type of usage says "not for offline issue" (secondary qualifier 3 or 5)
  or whose cached state says so are not lent; "not for offline return" (4 or 5) are not
  taken back;
- items the cache shows on hold (or on loan, or missing) are not lent — an item on hold that
  is *returned* goes to the hold shelf;
- items that the tag marks not for circulation or discarded are not lent;
- the due date is today + the loan period (the central system's, else the configured one).

Every decision here is a pure function of its arguments, so it is tested without I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from edge_agent.config import OfflinePolicy
from edge_agent.contract import ItemState, LoanPolicy, RefusalReason
from hardware.tags import ItemData

__all__ = ["OfflineRules"]


@dataclass(frozen=True, slots=True)
class OfflineRules:
    """The offline policy of one kiosk; the cached values are passed in, looked up by the caller."""

    policy: OfflinePolicy

    def max_items(self, cached: LoanPolicy | None) -> int:
        """Items one patron may borrow in one offline session."""
        limit = self.policy.max_items_per_patron
        if cached is not None:
            limit = min(limit, cached.offline_max_items)
        return limit

    def loan_days(self, cached: LoanPolicy | None) -> int:
        """The default loan period offline."""
        return cached.loan_days if cached is not None else self.policy.loan_days

    def due_date(self, today: dt.date, cached: LoanPolicy | None) -> dt.date:
        """When an item lent offline today is due."""
        return today + dt.timedelta(days=self.loan_days(cached))

    def checkout_refusal(  # noqa: PLR0911 - one guard per rule of the policy
        self,
        item: ItemData,
        *,
        blocked: RefusalReason | None,
        state: ItemState | None,
        cached: LoanPolicy | None,
        lent_this_session: int,
    ) -> RefusalReason | None:
        """Why this item may not be lent offline (None: it may).

        ``blocked`` is the cached block list's answer for the patron, ``state`` the cached
        state of the item, ``cached`` the cached loan policy.
        """
        if not self.policy.allow_checkout:
            return RefusalReason.CENTRAL_UNREACHABLE
        if blocked is not None:
            return blocked
        if item.is_not_for_circulation or item.is_discarded:
            return RefusalReason.ITEM_NOT_FOR_LOAN
        if item.not_for_offline_issue:
            return RefusalReason.NOT_FOR_OFFLINE
        if state is not None:
            if state.not_for_offline_issue:
                return RefusalReason.NOT_FOR_OFFLINE
            if state.state == "on_hold":
                return RefusalReason.ITEM_ON_HOLD
            if state.state == "on_loan":
                return RefusalReason.ITEM_ALREADY_ON_LOAN
            if state.state == "missing":
                return RefusalReason.OTHER
        if lent_this_session >= self.max_items(cached):
            return RefusalReason.LIMIT_REACHED
        return None

    def checkin_refusal(self, item: ItemData) -> RefusalReason | None:
        """Why this item may not be taken back offline (None: it may)."""
        if not self.policy.allow_checkin:
            return RefusalReason.CENTRAL_UNREACHABLE
        if item.not_for_offline_return:
            return RefusalReason.NOT_FOR_OFFLINE
        return None

    @staticmethod
    def hold_alert(state: ItemState | None) -> bool:
        """Whether a returned item goes to the hold shelf, as far as the cache knows."""
        return state is not None and state.state == "on_hold"
