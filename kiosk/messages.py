"""Every sentence a patron (or staff member) can see on the kiosk, marked for translation.

Written for a child or an elderly reader: short sentences, what happened, what to do next,
never an error code. Each :class:`~edge_agent.contract.RefusalReason` and each failure has
its own sentence per action (:func:`refusal`), so nothing technical reaches the screen; the
technical detail goes into the recorded event and the log for staff.

The English msgids here are the source text; ``kiosk/locale/*/LC_MESSAGES/libedge.po`` holds
the translations (Vietnamese written in a warm, simple register).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from edge_agent.contract import RefusalReason
from kiosk.i18n import N_, NN_, Money, Text

__all__ = [
    "Action",
    "refusal",
]

log = logging.getLogger(__name__)

Action = Literal["identify", "checkout", "checkin", "renew"]

# ---------------------------------------------------------------- screens: titles, prompts

ATTRACT_TITLE = N_("Welcome to the library!")
ATTRACT_PROMPT = N_("Scan your library card, hold it on the card reader, or type your card number.")
IDENTIFYING_TITLE = N_("Just a moment")
IDENTIFYING_PROMPT = N_("We are checking your card…")
PIN_TITLE = N_("Your PIN")
PIN_PROMPT = N_("Please type your PIN and press OK. It is not shown on the screen.")
PIN_AGAIN = N_("That PIN is not right. Please try again.")
CHOOSE_PROMPT = N_("What would you like to do?")
CHECKOUT_TITLE = N_("Borrow")
CHECKOUT_PROMPT = N_("Put your books on the tray. You can put several at once.")
CHECKIN_TITLE = N_("Return")
CHECKIN_PROMPT = N_("Put the books you are bringing back on the tray.")
RENEW_TITLE = N_("Keep books longer")
RENEW_PROMPT = N_("Choose the books you would like to keep longer.")
RENEW_NOTHING = N_("You have no books to renew.")
ACCOUNT_TITLE = N_("My account")
ACCOUNT_LOADING = N_("We are getting your account…")
RECEIPT_TITLE = N_("Would you like a receipt?")
RECEIPT_PROMPT = N_("A receipt shows your books and the date to bring them back.")
GOODBYE_TITLE = N_("Thank you!")
GOODBYE_PROMPT = N_("See you soon! Please remember your card and your books.")
STAFF_PIN_TITLE = N_("Staff")
STAFF_PIN_PROMPT = N_("Please type the staff PIN.")
STAFF_TITLE = N_("Staff mode")
STAFF_PROMPT = N_("Check the devices, or take the kiosk out of service.")
OUT_OF_SERVICE_TITLE = N_("This kiosk is resting")
OUT_OF_SERVICE_PROMPT = N_(
    "Please go to the library desk. The librarians will be happy to help you."
)


HELLO = N_("Hello!")


def hello(name: str) -> Text:
    """The greeting once the patron is known."""
    return N_("Hello, {name}!", name=name)


def countdown(seconds: int) -> Text:
    """The warning before a quiet session closes itself."""
    return NN_(
        "Are you still there? This screen will close in {n} second.",
        "Are you still there? This screen will close in {n} seconds.",
        seconds,
    )


# ---------------------------------------------------------------- buttons

BUTTON_BORROW = N_("Borrow")
BUTTON_RETURN = N_("Return")
BUTTON_RETURN_ITEMS = N_("Return books")
BUTTON_RENEW = N_("Keep longer")
BUTTON_RENEW_ALL = N_("Keep all longer")
BUTTON_ACCOUNT = N_("My account")
BUTTON_FINISH = N_("Finish")
BUTTON_BACK = N_("Back")
BUTTON_CANCEL = N_("Cancel")
BUTTON_PRINT = N_("Print")
BUTTON_EMAIL = N_("E-mail")
BUTTON_NO_RECEIPT = N_("No, thank you")
BUTTON_STAFF = N_("Staff")
BUTTON_READER_TEST = N_("Test the tray")
BUTTON_PRINT_TEST = N_("Test the printer")
BUTTON_OUT_OF_SERVICE = N_("Out of service")
BUTTON_IN_SERVICE = N_("Back in service")
BUTTON_LEAVE_STAFF = N_("Leave staff mode")

# ---------------------------------------------------------------- banners and notices

OFFLINE_BANNER = N_(
    "The connection to the library system is down. You can still borrow and return some books."
)
OFFLINE_NO_BORROWING = N_(
    "The connection to the library system is down, so borrowing is paused. You can still "
    "return books."
)
TRAY_PROBLEM = N_("The tray is not working right now. Please take your books to the library desk.")
AGENT_DOWN = N_("This kiosk cannot work right now. Please go to the library desk.")
CARD_NOT_A_NUMBER = N_(
    "This does not look like a library card number. Please check it and try again."
)
CARD_MISREAD = N_("We could not read your card correctly. Please try again.")
PIN_NOT_DIGITS = N_("A PIN has only numbers. Please try again.")
CANNOT_BORROW = N_(
    "Your card cannot borrow books right now. You can still return books and see your "
    "account. The librarians at the desk will help you."
)
SESSION_CLOSED = N_("We closed the screen to keep your details private.")
PRINTER_FAILED = N_(
    "The printer is not working, so there is no receipt. Your books are recorded all the same."
)
EMAIL_SENT = N_("We have sent the receipt to your e-mail address.")
EMAIL_FAILED = N_("We could not send the e-mail. Your books are recorded all the same.")
STAFF_PIN_WRONG = N_("That staff PIN is not right.")


def staff_locked(seconds: int) -> Text:
    """Staff PIN attempts are paused after several wrong ones."""
    return NN_(
        "Too many wrong PINs. Please wait {n} second.",
        "Too many wrong PINs. Please wait {n} seconds.",
        seconds,
    )


# ---------------------------------------------------------------- item lines

CHECKING = N_("Checking…")
RETURNED = N_("Returned. Thank you!")
RETURNED_HOLD = N_(
    "Returned. Another reader is waiting for this book: please put it on the hold shelf."
)
RETURNED_NOT_LOCKED = N_(
    "Returned, but we could not lock it again. Please give this book to the library desk."
)
NOT_LENT_SECURITY = N_(
    "We could not unlock this book, so it is not borrowed. Please take it to the library desk."
)
NOT_LENT_FAILURE = N_(
    "Something went wrong, so this book is not borrowed. Please take it to the library desk."
)
NOT_RETURNED_FAILURE = N_(
    "Something went wrong, so this book is not returned yet. Please give it to the library desk."
)
PATRON_CARD_ON_TRAY = N_("This is a library card, not a book. Please keep it with you!")
UNREADABLE_TAG = N_("We cannot read this book's label. Please take it to the library desk.")
RENEW_CHECKING = N_("Asking the library…")


def borrowed(due: dt.date) -> Text:
    """An item was lent."""
    return N_("Borrowed. Please bring it back by {due}.", due=due)


def renewed(due: dt.date) -> Text:
    """A loan was renewed."""
    return N_("You can keep it longer. Please bring it back by {due}.", due=due)


def set_waiting(parts: int, found: int) -> Text:
    """A multi-part item with parts missing from the tray."""
    return N_(
        "This set has {parts} parts and we can see {found} of them. Please put all the parts "
        "on the tray.",
        parts=parts,
        found=found,
    )


def untitled(item_id: str) -> Text:
    """What a line is called when the item's title is unknown."""
    return N_("Item {item_id}", item_id=item_id)


# ---------------------------------------------------------------- account

ACCOUNT_LOANS = N_("Books you have")
ACCOUNT_NO_LOANS = N_("You have no books on loan.")
ACCOUNT_HOLDS = N_("Ready for you at the desk")
ACCOUNT_NO_HOLDS = N_("Nothing is waiting for you at the desk.")
ACCOUNT_NO_FINES = N_("You have nothing to pay.")
ACCOUNT_UNAVAILABLE = N_(
    "We cannot show your account right now. Please try again later or ask at the desk."
)


def loan_due(due: dt.date) -> Text:
    """One loan's due date."""
    return N_("Bring back by {due}", due=due)


def loan_overdue(due: dt.date) -> Text:
    """One overdue loan."""
    return N_("Late: it was due on {due}", due=due)


def hold_pickup(day: dt.date) -> Text:
    """A hold ready for pickup, with its last day."""
    return N_("Please collect it by {day}", day=day)


def fines(amount: int, currency: str) -> Text:
    """The patron's outstanding fines."""
    return N_("To pay at the desk: {amount}", amount=Money(amount, currency))


# ---------------------------------------------------------------- receipts

RECEIPT_BORROWED = N_("Borrowed")
RECEIPT_RETURNED = N_("Returned")
RECEIPT_RENEWED = N_("Renewed")
RECEIPT_HOLD_SHELF = N_("For the hold shelf")
RECEIPT_THANKS = N_("Thank you for visiting the library!")
RECEIPT_TEST = N_("Printer test: if you can read this, the printer works.")


def receipt_card(masked: str) -> Text:
    """The patron's card number on a receipt, masked."""
    return N_("Card: {card}", card=masked)


def receipt_when(day: dt.date, clock: str) -> Text:
    """When the receipt was printed."""
    return N_("Date: {day} {time}", day=day, time=clock)


# ---------------------------------------------------------------- staff


def staff_reader_ok(count: int) -> Text:
    """Reader test result."""
    return NN_("The tray works: {n} label on it.", "The tray works: {n} labels on it.", count)


STAFF_READER_FAILED = N_("The tray does not answer. Check its cable and power.")
STAFF_PRINT_SENT = N_("A test receipt was printed.")
STAFF_PRINT_FAILED = N_("The printer did not print. Check its paper, cover and cable.")
STAFF_NO_PRINTER = N_("No printer is configured.")
STAFF_OUT_OF_SERVICE = N_("The kiosk is out of service.")
STAFF_IN_SERVICE = N_("The kiosk is in service.")


# ---------------------------------------------------------------- refusals

_CHECKOUT: dict[RefusalReason, Text] = {
    RefusalReason.PATRON_UNKNOWN: N_("We do not know this card. Please ask at the library desk."),
    RefusalReason.PATRON_BLOCKED: N_(
        "Your card cannot borrow books right now. The librarians at the desk will help you."
    ),
    RefusalReason.WRONG_PIN: PIN_AGAIN,
    RefusalReason.ITEM_UNKNOWN: N_("We do not know this book. Please take it to the library desk."),
    RefusalReason.ITEM_ON_HOLD: N_(
        "Another reader has reserved this book. Please leave it at the library desk."
    ),
    RefusalReason.ITEM_NOT_FOR_LOAN: N_(
        "This book stays in the library. You are welcome to read it here."
    ),
    RefusalReason.ITEM_ALREADY_ON_LOAN: N_(
        "This book is already on loan. Please take it to the library desk."
    ),
    RefusalReason.LIMIT_REACHED: N_(
        "You have as many books as you can borrow for now. Bring some back, then you can "
        "borrow more."
    ),
    RefusalReason.INCOMPLETE_SET: N_(
        "Some parts of this set are missing, so it is not borrowed. Please take it to the "
        "library desk."
    ),
    RefusalReason.NOT_FOR_OFFLINE: N_(
        "We cannot lend this book while the connection is down. Please take it to the library desk."
    ),
    RefusalReason.RENEWAL_LIMIT: N_("This book cannot be kept any longer."),
    RefusalReason.NOT_ON_LOAN_TO_PATRON: N_(
        "This book is not on loan to you. Please ask at the library desk."
    ),
    RefusalReason.SECURITY_FAILURE: NOT_LENT_SECURITY,
    RefusalReason.FOREIGN_ITEM: N_(
        "This book belongs to another library. Please take it to the library desk."
    ),
    RefusalReason.CENTRAL_UNREACHABLE: N_(
        "We cannot do this right now. Please try again later, or ask at the library desk."
    ),
    RefusalReason.OTHER: N_(
        "Something went wrong with this book. Please take it to the library desk."
    ),
}

_CHECKIN: dict[RefusalReason, Text] = {
    RefusalReason.ITEM_UNKNOWN: N_("We do not know this book. Please give it to the library desk."),
    RefusalReason.INCOMPLETE_SET: N_(
        "Some parts of this set are missing, so it is not returned yet. Please give it to "
        "the library desk."
    ),
    RefusalReason.NOT_FOR_OFFLINE: N_(
        "We cannot take this book back while the connection is down. Please give it to the "
        "library desk."
    ),
    RefusalReason.FOREIGN_ITEM: N_(
        "This book belongs to another library. Please give it to the library desk."
    ),
    RefusalReason.SECURITY_FAILURE: RETURNED_NOT_LOCKED,
    RefusalReason.CENTRAL_UNREACHABLE: N_(
        "We cannot take books back right now. Please give them to the library desk."
    ),
    RefusalReason.OTHER: N_(
        "Something went wrong with this book. Please give it to the library desk."
    ),
}

_RENEW: dict[RefusalReason, Text] = {
    RefusalReason.ITEM_ON_HOLD: N_(
        "Another reader is waiting for this book, so it cannot be kept longer."
    ),
    RefusalReason.RENEWAL_LIMIT: N_(
        "This book has been kept longer as many times as allowed. Please bring it back."
    ),
    RefusalReason.CENTRAL_UNREACHABLE: N_(
        "Keeping books longer needs the connection to the library system, which is down "
        "right now. Please try again later."
    ),
    RefusalReason.NOT_FOR_OFFLINE: N_(
        "Keeping books longer needs the connection to the library system, which is down "
        "right now. Please try again later."
    ),
}

_IDENTIFY: dict[RefusalReason, Text] = {
    RefusalReason.PATRON_BLOCKED: CANNOT_BORROW,
    RefusalReason.WRONG_PIN: N_(
        "The PIN was not right several times. Please ask at the library desk."
    ),
    RefusalReason.CENTRAL_UNREACHABLE: AGENT_DOWN,
    RefusalReason.NOT_FOR_OFFLINE: N_(
        "Your PIN cannot be checked while the library's system is out of reach. "
        "Please ask at the library desk."
    ),
}


def refusal(action: Action, reason: RefusalReason) -> Text:
    """The sentence for one refusal of one action: never the reason's code.

    A reason this version does not know yet (a newer contract) gets the general sentence.
    """
    table = {"checkin": _CHECKIN, "renew": _RENEW, "identify": _IDENTIFY}.get(action, {})
    found = table.get(reason) or _CHECKOUT.get(reason)
    if found is None:
        log.error("no sentence for refusal reason %r; showing the general one", reason)
        return _CHECKOUT[RefusalReason.OTHER]
    return found
