"""The view model: plain frozen dataclasses the Kivy screens render, already translated.

:func:`present` turns the controller's :class:`~kiosk.session.KioskState` into a
:class:`ViewModel` in the current language. The UI layer does nothing but draw it and call
the controller back (a button's ``id`` goes to :meth:`KioskController.press`). Two view
models are equal when the screen would look the same, so the controller notifies its
listeners only on a real change.

Nothing of the patron appears outside a session; the PIN never appears at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from kiosk import messages as msg
from kiosk.flows import LineStatus
from kiosk.i18n import Catalogues, Text
from kiosk.machine import SESSION_STATES, State
from kiosk.session import KioskState, Line, Session

__all__ = [
    "AccountRow",
    "AccountView",
    "BannerKind",
    "BannerView",
    "ButtonId",
    "ButtonView",
    "LanguageView",
    "LineView",
    "PresenterConfig",
    "StaffView",
    "ViewModel",
    "present",
]

#: Native names: a language is offered in its own words, whatever the current language is.
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}


class ButtonId(StrEnum):
    """What a button does; the UI passes it back to :meth:`KioskController.press`."""

    BORROW = "borrow"
    RETURN = "return"
    RENEW = "renew"
    RENEW_ALL = "renew_all"
    ACCOUNT = "account"
    FINISH = "finish"
    BACK = "back"
    CANCEL = "cancel"
    PRINT = "print"
    EMAIL = "email"
    NO_RECEIPT = "none"
    STAFF = "staff"
    READER_TEST = "reader_test"
    PRINT_TEST = "print_test"
    OUT_OF_SERVICE = "out_of_service"
    IN_SERVICE = "in_service"
    LEAVE_STAFF = "leave_staff"


class BannerKind(StrEnum):
    """Banners across the top of every screen."""

    OFFLINE = "offline"
    OUT_OF_SERVICE = "out_of_service"
    STAFF_MESSAGE = "staff_message"
    PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class ButtonView:
    """One button: what it does, its label, whether it can be pressed now."""

    id: ButtonId
    label: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class LineView:
    """One item's line."""

    key: str
    title: str
    status: LineStatus
    message: str
    hold: bool = False
    offline: bool = False
    can_renew: bool = False


@dataclass(frozen=True, slots=True)
class BannerView:
    """One banner."""

    kind: BannerKind
    text: str


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One loan or hold on the account screen."""

    title: str
    detail: str
    alert: bool = False


@dataclass(frozen=True, slots=True)
class AccountView:
    """The patron's account, ready to draw."""

    loans_heading: str
    loans: tuple[AccountRow, ...]
    holds_heading: str
    holds: tuple[AccountRow, ...]
    fines: str


@dataclass(frozen=True, slots=True)
class StaffView:
    """The staff screen's content (staff only)."""

    health: tuple[tuple[str, str], ...]
    result: str | None
    detail: str | None
    out_of_service: bool
    busy: bool


@dataclass(frozen=True, slots=True)
class LanguageView:
    """One language the patron can switch to."""

    code: str
    label: str
    selected: bool


Keypad = Literal["none", "card", "pin"]


@dataclass(frozen=True, slots=True)
class ViewModel:
    """Everything one screen shows, in ``language``."""

    screen: State
    language: str
    library_name: str
    title: str
    prompt: str
    notice: str | None
    lines: tuple[LineView, ...]
    banners: tuple[BannerView, ...]
    countdown_s: int | None
    buttons: tuple[ButtonView, ...]
    languages: tuple[LanguageView, ...]
    keypad: Keypad = "none"
    #: The keypad offers letters too (only for a card number, never for a PIN).
    keypad_letters: bool = False
    busy: bool = False
    account: AccountView | None = None
    staff: StaffView | None = None


@dataclass(frozen=True, slots=True)
class PresenterConfig:
    """The settings that change what is drawn."""

    library_name: str
    languages: tuple[str, ...]
    inactivity_timeout_s: float
    countdown_from_s: float = 30.0
    can_print: bool = False
    can_email: bool = False
    offline_checkout: bool = True
    card_keypad_letters: bool = False


_TITLES: dict[State, Text] = {
    State.ATTRACT: msg.ATTRACT_TITLE,
    State.IDENTIFYING: msg.IDENTIFYING_TITLE,
    State.PIN: msg.PIN_TITLE,
    State.CHECKOUT: msg.CHECKOUT_TITLE,
    State.CHECKIN: msg.CHECKIN_TITLE,
    State.RENEW: msg.RENEW_TITLE,
    State.ACCOUNT: msg.ACCOUNT_TITLE,
    State.RECEIPT: msg.RECEIPT_TITLE,
    State.GOODBYE: msg.GOODBYE_TITLE,
    State.STAFF_PIN: msg.STAFF_PIN_TITLE,
    State.STAFF: msg.STAFF_TITLE,
    State.OUT_OF_SERVICE: msg.OUT_OF_SERVICE_TITLE,
}
_PROMPTS: dict[State, Text] = {
    State.ATTRACT: msg.ATTRACT_PROMPT,
    State.IDENTIFYING: msg.IDENTIFYING_PROMPT,
    State.PIN: msg.PIN_PROMPT,
    State.CHOOSE: msg.CHOOSE_PROMPT,
    State.CHECKOUT: msg.CHECKOUT_PROMPT,
    State.CHECKIN: msg.CHECKIN_PROMPT,
    State.RENEW: msg.RENEW_PROMPT,
    State.RECEIPT: msg.RECEIPT_PROMPT,
    State.GOODBYE: msg.GOODBYE_PROMPT,
    State.STAFF_PIN: msg.STAFF_PIN_PROMPT,
    State.STAFF: msg.STAFF_PROMPT,
    State.OUT_OF_SERVICE: msg.OUT_OF_SERVICE_PROMPT,
}
_BUTTON_LABELS: dict[ButtonId, Text] = {
    ButtonId.BORROW: msg.BUTTON_BORROW,
    ButtonId.RETURN: msg.BUTTON_RETURN,
    ButtonId.RENEW: msg.BUTTON_RENEW,
    ButtonId.RENEW_ALL: msg.BUTTON_RENEW_ALL,
    ButtonId.ACCOUNT: msg.BUTTON_ACCOUNT,
    ButtonId.FINISH: msg.BUTTON_FINISH,
    ButtonId.BACK: msg.BUTTON_BACK,
    ButtonId.CANCEL: msg.BUTTON_CANCEL,
    ButtonId.PRINT: msg.BUTTON_PRINT,
    ButtonId.EMAIL: msg.BUTTON_EMAIL,
    ButtonId.NO_RECEIPT: msg.BUTTON_NO_RECEIPT,
    ButtonId.STAFF: msg.BUTTON_STAFF,
    ButtonId.READER_TEST: msg.BUTTON_READER_TEST,
    ButtonId.PRINT_TEST: msg.BUTTON_PRINT_TEST,
    ButtonId.OUT_OF_SERVICE: msg.BUTTON_OUT_OF_SERVICE,
    ButtonId.IN_SERVICE: msg.BUTTON_IN_SERVICE,
    ButtonId.LEAVE_STAFF: msg.BUTTON_LEAVE_STAFF,
}


def _busy(state: KioskState) -> bool:
    if state.state is State.STAFF:
        return state.staff_busy
    session = state.session
    return state.state is State.IDENTIFYING or (session is not None and session.busy > 0)


def _buttons(  # noqa: PLR0911 - one case per screen
    state: KioskState, config: PresenterConfig
) -> list[tuple[ButtonId, bool]]:
    session = state.session
    busy = _busy(state)
    may_borrow = session is not None and session.patron is not None and session.patron.may_borrow
    identified = session is not None and session.patron is not None
    match state.state:
        case State.ATTRACT:
            return [(ButtonId.RETURN, True), (ButtonId.STAFF, True)]
        case State.PIN | State.STAFF_PIN:
            return [(ButtonId.CANCEL, True)]
        case State.CHOOSE:
            return [
                (ButtonId.BORROW, may_borrow),
                (ButtonId.RETURN, True),
                (ButtonId.RENEW, may_borrow),
                (ButtonId.ACCOUNT, True),
                (ButtonId.FINISH, True),
            ]
        case State.CHECKOUT | State.CHECKIN | State.ACCOUNT:
            buttons = [(ButtonId.FINISH, not busy)]
            if identified:
                buttons.insert(0, (ButtonId.BACK, not busy))
            return buttons
        case State.RENEW:
            can_renew = session is not None and any(
                line.can_renew for line in session.lines_for(State.RENEW)
            )
            return [
                (ButtonId.BACK, not busy),
                (ButtonId.RENEW_ALL, can_renew and not busy),
                (ButtonId.FINISH, not busy),
            ]
        case State.RECEIPT:
            buttons = []
            if config.can_print:
                buttons.append((ButtonId.PRINT, True))
            if config.can_email and identified:
                buttons.append((ButtonId.EMAIL, True))
            return [*buttons, (ButtonId.NO_RECEIPT, True)]
        case State.STAFF:
            service = ButtonId.IN_SERVICE if state.out_of_service else ButtonId.OUT_OF_SERVICE
            return [
                (ButtonId.READER_TEST, not busy),
                (ButtonId.PRINT_TEST, not busy and config.can_print),
                (service, True),
                (ButtonId.LEAVE_STAFF, True),
            ]
        case State.OUT_OF_SERVICE:
            return [(ButtonId.STAFF, True)]
        case _:
            return []


def _line_view(line: Line, catalogues: Catalogues, language: str) -> LineView:
    if line.title:
        title = line.title
    elif line.item_id:
        title = catalogues.render(msg.untitled(line.item_id), language)
    else:
        title = ""
    return LineView(
        key=line.key,
        title=title,
        status=line.status,
        message=catalogues.render(line.message, language),
        hold=line.hold,
        offline=line.offline,
        can_renew=line.can_renew,
    )


def _account(session: Session, catalogues: Catalogues, language: str) -> AccountView | None:
    answer = session.account
    if answer is None:
        return None

    def render(text: Text) -> str:
        return catalogues.render(text, language)

    loans = tuple(
        AccountRow(
            title=loan.title or render(msg.untitled(loan.item_id)),
            detail=render(
                msg.loan_overdue(loan.due_date) if loan.overdue else msg.loan_due(loan.due_date)
            ),
            alert=loan.overdue,
        )
        for loan in answer.loans
    )
    holds = tuple(
        AccountRow(
            title=hold.title or render(msg.untitled(hold.item_id)),
            detail=render(msg.hold_pickup(hold.pickup_by)) if hold.pickup_by else "",
        )
        for hold in answer.holds_ready
    )
    fines = (
        render(msg.fines(answer.fines, answer.currency))
        if answer.fines
        else render(msg.ACCOUNT_NO_FINES)
    )
    return AccountView(
        loans_heading=render(msg.ACCOUNT_LOANS if loans else msg.ACCOUNT_NO_LOANS),
        loans=loans,
        holds_heading=render(msg.ACCOUNT_HOLDS if holds else msg.ACCOUNT_NO_HOLDS),
        holds=holds,
        fines=fines,
    )


def _banners(
    state: KioskState, config: PresenterConfig, catalogues: Catalogues, language: str
) -> tuple[BannerView, ...]:
    banners = []
    if state.out_of_service:
        banners.append(
            BannerView(
                BannerKind.OUT_OF_SERVICE, catalogues.render(msg.OUT_OF_SERVICE_TITLE, language)
            )
        )
    if not state.agent_reachable:
        banners.append(BannerView(BannerKind.PROBLEM, catalogues.render(msg.AGENT_DOWN, language)))
    elif not state.link_up or (state.session is not None and state.session.offline):
        text = msg.OFFLINE_BANNER if config.offline_checkout else msg.OFFLINE_NO_BORROWING
        banners.append(BannerView(BannerKind.OFFLINE, catalogues.render(text, language)))
    if state.pad_problem and state.state in (State.CHECKOUT, State.CHECKIN):
        banners.append(
            BannerView(BannerKind.PROBLEM, catalogues.render(msg.TRAY_PROBLEM, language))
        )
    message = state.screen_message
    if message is not None:
        shown = message.text_en if language == "en" and message.text_en else message.text_vi
        banners.append(BannerView(BannerKind.STAFF_MESSAGE, shown))
    return tuple(banners)


def _countdown(state: KioskState, config: PresenterConfig) -> int | None:
    session = state.session
    if session is None or state.state not in SESSION_STATES or session.busy:
        return None
    remaining = config.inactivity_timeout_s - (state.now - session.last_activity)
    return max(0, math.ceil(remaining))


def present(state: KioskState, config: PresenterConfig, catalogues: Catalogues) -> ViewModel:
    """The view model of the current screen, in the current language."""
    language = state.language

    def render(text: Text | None) -> str:
        return "" if text is None else catalogues.render(text, language)

    session = state.session
    title = _TITLES.get(state.state)
    if state.state is State.CHOOSE:
        name = session.patron.name if session is not None and session.patron else None
        title = msg.hello(name) if name else msg.HELLO
    prompt = _PROMPTS.get(state.state)
    notice: Text | None = None
    countdown = _countdown(state, config)
    if countdown is not None and countdown <= config.countdown_from_s:
        notice = msg.countdown(countdown)
    elif session is not None and session.notice is not None:
        notice = session.notice
    elif session is None and state.notice is not None:
        notice = state.notice
    lines: tuple[LineView, ...] = ()
    account = None
    if session is not None:
        lines = tuple(
            _line_view(line, catalogues, language) for line in session.lines_for(state.state)
        )
        if state.state is State.ACCOUNT:
            account = _account(session, catalogues, language)
            if account is None:
                prompt = msg.ACCOUNT_UNAVAILABLE if session.account_failed else msg.ACCOUNT_LOADING
        if state.state is State.RENEW and not lines and not session.busy:
            prompt = msg.RENEW_NOTHING
    staff = None
    if state.state is State.STAFF and state.staff is not None:
        staff = StaffView(
            health=state.staff.health,
            result=render(state.staff.result) if state.staff.result else None,
            detail=state.staff.detail,
            out_of_service=state.out_of_service,
            busy=state.staff_busy,
        )
    keypad: Keypad = "none"
    if state.state is State.ATTRACT:
        keypad = "card"
    elif state.state in (State.PIN, State.STAFF_PIN):
        keypad = "pin"
    return ViewModel(
        screen=state.state,
        language=language,
        library_name=config.library_name,
        title=render(title),
        prompt=render(prompt),
        notice=render(notice) if notice is not None else None,
        lines=lines,
        banners=_banners(state, config, catalogues, language),
        countdown_s=countdown,
        buttons=tuple(
            ButtonView(bid, render(_BUTTON_LABELS[bid]), enabled)
            for bid, enabled in _buttons(state, config)
        ),
        languages=tuple(
            LanguageView(code, LANGUAGE_NAMES.get(code, code), code == language)
            for code in config.languages
        ),
        keypad=keypad,
        keypad_letters=keypad == "card" and config.card_keypad_letters,
        busy=_busy(state),
        account=account,
        staff=staff,
    )
