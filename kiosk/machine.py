"""The kiosk's states and every allowed transition, in one table.

::

    ATTRACT ──card──► IDENTIFYING ──ok──► CHOOSE ──borrow──► CHECKOUT ─┐
       │  └─card+PIN─► PIN ──pin──┘ ▲        ├──return──► CHECKIN ────┤ done
       │                            │        ├──renew───► RENEW ──────┤
       │               wrong PIN ◄──┘        └──account─► ACCOUNT     ▼
       ├──return books──► CHECKIN (no card needed)          RECEIPT ──► GOODBYE ──► ATTRACT
       ├──staff──► STAFF_PIN ──ok──► STAFF ──leave──► ATTRACT
       └──out of service──► OUT_OF_SERVICE ──in service──► ATTRACT

(The controller sends OUT_OF_SERVICE as soon as it is back in ATTRACT while the kiosk is
marked out of service, so staff and patrons never see the attract screen then.)

Every session state also goes back to ATTRACT on ``TIMEOUT`` and ``CANCEL``. Anything not
in :data:`TRANSITIONS` is refused by :func:`next_state` with :class:`InvalidTransition`,
whose message names the state and the input; the controller logs it and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "OK",
    "SESSION_STATES",
    "TRANSITIONS",
    "Input",
    "InvalidTransition",
    "Result",
    "State",
    "next_state",
]


class State(StrEnum):
    """Where the kiosk is; also the id of the screen the UI shows."""

    ATTRACT = "attract"
    IDENTIFYING = "identifying"
    PIN = "pin"
    CHOOSE = "choose"
    CHECKOUT = "checkout"
    CHECKIN = "checkin"
    RENEW = "renew"
    ACCOUNT = "account"
    RECEIPT = "receipt"
    GOODBYE = "goodbye"
    STAFF_PIN = "staff_pin"
    STAFF = "staff"
    OUT_OF_SERVICE = "out_of_service"


class Input(StrEnum):
    """What can happen to the kiosk (a patron's touch, a finished job, a timer)."""

    CARD = "card"  # a card number to look up without a PIN
    CARD_NEEDS_PIN = "card_needs_pin"  # a card number; the PIN comes next
    PIN = "pin"  # the PIN was typed: look the patron up
    IDENTIFIED = "identified"  # the lookup said yes
    WRONG_PIN = "wrong_pin"  # the lookup said the PIN is wrong: try again
    NOT_IDENTIFIED = "not_identified"  # the lookup said no (or gave up)
    BORROW = "borrow"
    RETURN = "return"
    RENEW = "renew"
    ACCOUNT = "account"
    BACK = "back"  # from an activity to the choice of activities
    DONE = "done"  # the patron finished an activity
    FINISH = "finish"  # the patron finished without a receipt to offer
    RECEIPT_CHOSEN = "receipt_chosen"
    GOODBYE_OVER = "goodbye_over"
    TIMEOUT = "timeout"
    CANCEL = "cancel"
    STAFF = "staff"
    STAFF_OK = "staff_ok"
    STAFF_ACTION = "staff_action"
    LEAVE_STAFF = "leave_staff"
    OUT_OF_SERVICE = "out_of_service"
    IN_SERVICE = "in_service"


class InvalidTransition(ValueError):  # noqa: N818 - named for what it is, like KeyError
    """An input that the current state does not accept."""

    def __init__(self, state: State, event: Input) -> None:
        super().__init__(f"input {event.value!r} is not accepted in state {state.value!r}")
        self.state = state
        self.input = event


#: States in which a patron session exists (and ends on TIMEOUT or CANCEL).
SESSION_STATES = frozenset(
    {
        State.IDENTIFYING,
        State.PIN,
        State.CHOOSE,
        State.CHECKOUT,
        State.CHECKIN,
        State.RENEW,
        State.ACCOUNT,
        State.RECEIPT,
    }
)

_ACTIVITIES = (State.CHECKOUT, State.CHECKIN, State.RENEW, State.ACCOUNT)

TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.ATTRACT, Input.CARD): State.IDENTIFYING,
    (State.ATTRACT, Input.CARD_NEEDS_PIN): State.PIN,
    (State.ATTRACT, Input.RETURN): State.CHECKIN,
    (State.ATTRACT, Input.STAFF): State.STAFF_PIN,
    (State.ATTRACT, Input.OUT_OF_SERVICE): State.OUT_OF_SERVICE,
    (State.PIN, Input.PIN): State.IDENTIFYING,
    (State.IDENTIFYING, Input.IDENTIFIED): State.CHOOSE,
    (State.IDENTIFYING, Input.WRONG_PIN): State.PIN,
    (State.IDENTIFYING, Input.NOT_IDENTIFIED): State.ATTRACT,
    (State.CHOOSE, Input.BORROW): State.CHECKOUT,
    (State.CHOOSE, Input.RETURN): State.CHECKIN,
    (State.CHOOSE, Input.RENEW): State.RENEW,
    (State.CHOOSE, Input.ACCOUNT): State.ACCOUNT,
    (State.CHOOSE, Input.FINISH): State.GOODBYE,
    (State.CHOOSE, Input.DONE): State.RECEIPT,
    **{(state, Input.BACK): State.CHOOSE for state in _ACTIVITIES},
    **{(state, Input.DONE): State.RECEIPT for state in _ACTIVITIES},
    **{(state, Input.FINISH): State.GOODBYE for state in _ACTIVITIES},
    (State.RECEIPT, Input.RECEIPT_CHOSEN): State.GOODBYE,
    (State.GOODBYE, Input.GOODBYE_OVER): State.ATTRACT,
    **{(state, Input.TIMEOUT): State.ATTRACT for state in SESSION_STATES},
    **{(state, Input.CANCEL): State.ATTRACT for state in SESSION_STATES},
    (State.STAFF_PIN, Input.STAFF_OK): State.STAFF,
    (State.STAFF_PIN, Input.CANCEL): State.ATTRACT,
    (State.STAFF_PIN, Input.TIMEOUT): State.ATTRACT,
    (State.STAFF, Input.STAFF_ACTION): State.STAFF,
    (State.STAFF, Input.LEAVE_STAFF): State.ATTRACT,
    (State.STAFF, Input.TIMEOUT): State.ATTRACT,
    (State.OUT_OF_SERVICE, Input.IN_SERVICE): State.ATTRACT,
    (State.OUT_OF_SERVICE, Input.STAFF): State.STAFF_PIN,
}


def next_state(state: State, event: Input) -> State:
    """The state after ``event`` in ``state``; InvalidTransition when it is not allowed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None


@dataclass(frozen=True, slots=True)
class Result:
    """Whether the controller accepted an input; ``error`` says why not (for logs and tests)."""

    accepted: bool
    error: str | None = None

    def __bool__(self) -> bool:
        return self.accepted


#: The accepted result.
OK = Result(True)
