"""The kiosk's reusable widgets: buttons, banners, item lines, keypad, language bar.

They draw parts of a :class:`~kiosk.presenter.ViewModel` (given to them through Kivy
properties by the screens' ``.kv`` rules) and send every touch to the running
:class:`~kiosk.app.main.KioskApp`, which hands it to the controller. Their look (colours, type
sizes) comes from ``widgets.kv`` and follows the app's theme.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from kivy.app import App
from kivy.factory import Factory
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label

from kiosk.flows import LineStatus
from kiosk.keypad import typed
from kiosk.presenter import (
    AccountView,
    BannerView,
    ButtonView,
    LanguageView,
    LineView,
    StaffView,
)

__all__ = [
    "AccountPanel",
    "Banners",
    "ButtonBar",
    "KButton",
    "Keypad",
    "LanguageBar",
    "LinesList",
    "ScreenBody",
    "StaffPanel",
]

#: The mark in front of a line, by status (DejaVu Sans has all of them).
MARKS = {
    LineStatus.CHECKING: "…",
    LineStatus.WAITING: "…",
    LineStatus.DONE: "✓",
    LineStatus.REFUSED: "✗",
    LineStatus.ATTENTION: "!",
    LineStatus.INFO: "i",
}


class _Actions(Protocol):
    def press(self, button_id: str) -> None: ...
    def set_language(self, code: str) -> None: ...
    def keypad_entered(self, mode: str, text: str) -> None: ...
    def toggle_large(self) -> None: ...
    def toggle_speech(self) -> None: ...


def _app() -> _Actions:
    return cast(_Actions, App.get_running_app())


class KButton(Button):  # type: ignore[misc]
    """A large, thumb-sized button that remembers what it does."""

    action_id = StringProperty("")
    selected = BooleanProperty(False)


class ScreenBody(BoxLayout):  # type: ignore[misc]
    """The part of a screen between the prompt and the buttons; each screen's kv fills it."""

    view = ObjectProperty(None, allownone=True)


class _BannerLabel(Label):  # type: ignore[misc]
    """One banner (styled in widgets.kv)."""

    kind = StringProperty("")


class Banners(BoxLayout):  # type: ignore[misc]
    """Banners across the top (offline, out of service, staff message, problem)."""

    banners = ListProperty([])

    def on_banners(self, _widget: Any, banners: list[BannerView]) -> None:
        """Redraw the banners."""
        self.clear_widgets()
        for banner in banners:
            self.add_widget(_BannerLabel(text=banner.text, kind=banner.kind.value), index=0)


class ButtonBar(BoxLayout):  # type: ignore[misc]
    """The screen's buttons from the view model; a touch goes to the controller."""

    buttons = ListProperty([])

    def on_buttons(self, _widget: Any, buttons: list[ButtonView]) -> None:
        """Rebuild the buttons."""
        self.clear_widgets()
        for view in buttons:
            button = KButton(
                text=view.label,
                action_id=view.id.value,
                disabled=not view.enabled,
                size_hint_y=1,
            )
            button.bind(on_release=lambda b: _app().press(b.action_id))
            self.add_widget(button)


class LanguageBar(BoxLayout):  # type: ignore[misc]
    """Language buttons (each in its own words) and the accessibility switches."""

    languages = ListProperty([])
    large_label = StringProperty("")
    speech_label = StringProperty("")

    def on_languages(self, _widget: Any, languages: list[LanguageView]) -> None:
        """Rebuild the language buttons (the switches are in widgets.kv)."""
        box = self.ids.get("codes")
        if box is None:
            return
        box.clear_widgets()
        for language in languages:
            button = KButton(
                text=language.label,
                action_id=f"lang:{language.code}",
                selected=language.selected,
                size_hint_y=1,
            )
            button.bind(on_release=lambda b: _app().set_language(b.action_id.split(":", 1)[1]))
            box.add_widget(button)

    def on_kv_post(self, _base_widget: Any) -> None:
        """Draw the languages known before the kv rule made the button box."""
        self.on_languages(self, list(self.languages))


class _LineRow(BoxLayout):  # type: ignore[misc]
    """One item's line (styled in widgets.kv)."""

    mark = StringProperty("")
    title = StringProperty("")
    message = StringProperty("")
    status = StringProperty("")


class LinesList(GridLayout):  # type: ignore[misc]
    """Every item's line, newest last."""

    lines = ListProperty([])

    def on_lines(self, _widget: Any, lines: list[LineView]) -> None:
        """Redraw the lines."""
        self.clear_widgets()
        for line in lines:
            self.add_widget(
                _LineRow(
                    mark=MARKS.get(line.status, ""),
                    title=line.title,
                    message=line.message,
                    status=line.status.value,
                )
            )


class _Row(BoxLayout):  # type: ignore[misc]
    """A title and a detail (account and staff rows; styled in widgets.kv)."""

    title = StringProperty("")
    detail = StringProperty("")
    heading = StringProperty("")


class AccountPanel(GridLayout):  # type: ignore[misc]
    """The patron's loans, holds and fines."""

    account = ObjectProperty(None, allownone=True)

    def on_account(self, _widget: Any, account: AccountView | None) -> None:
        """Redraw the account."""
        self.clear_widgets()
        if account is None:
            return
        self.add_widget(_Row(heading=account.loans_heading))
        for row in account.loans:
            self.add_widget(_Row(title=row.title, detail=row.detail))
        self.add_widget(_Row(heading=account.holds_heading))
        for row in account.holds:
            self.add_widget(_Row(title=row.title, detail=row.detail))
        self.add_widget(_Row(heading=account.fines))


class StaffPanel(GridLayout):  # type: ignore[misc]
    """Device health and the last test's result (staff only)."""

    staff = ObjectProperty(None, allownone=True)

    def on_staff(self, _widget: Any, staff: StaffView | None) -> None:
        """Redraw the health rows."""
        self.clear_widgets()
        if staff is None:
            return
        for name, state in staff.health:
            self.add_widget(_Row(title=name, detail=state))
        if staff.result:
            self.add_widget(_Row(heading=staff.result, detail=staff.detail or ""))


#: The letter page of the keypad, row by row (eight keys a row, so it is no taller than the
#: digits): A-Z, back, OK and the way back to the digits.
LETTER_KEYS = (*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "back", "ok", "digits")
LETTER_COLUMNS = 8


class Keypad(BoxLayout):  # type: ignore[misc]
    """Digits for a card number or a PIN; a PIN shows as dots and is never kept after OK.

    Where card numbers have letters (``letters_allowed``, from the view model), a card
    number's keypad has an ABC key that turns the digit page into a letter page and back.
    A PIN's keypad never offers letters.
    """

    mode = StringProperty("card")
    entered = StringProperty("")
    #: The view offers letters for this keypad (a card number, never a PIN).
    letters_allowed = BooleanProperty(False)
    #: The letter page is showing instead of the digits.
    letters = BooleanProperty(False)

    def on_kv_post(self, _base_widget: Any) -> None:
        """Build the letter page (kept aside until ABC is touched)."""
        self._alphabet = Factory.KeyGrid(cols=LETTER_COLUMNS)
        for key in LETTER_KEYS:
            label = {"back": "⌫", "ok": "OK", "digits": "123"}.get(key, key)
            self._alphabet.add_widget(Factory.KeyButton(text=label, action_id=key))
        self._arrange()

    def on_letters_allowed(self, _widget: Any, allowed: bool) -> None:
        """Offer the ABC key only where letters are allowed."""
        if not allowed:
            self.letters = False
        self._arrange()

    def on_letters(self, _widget: Any, _letters: bool) -> None:
        """Swap the digit page and the letter page."""
        self._arrange()

    def _arrange(self) -> None:
        """Below the display: the page showing, then (on the digits, if allowed) the ABC key."""
        if not hasattr(self, "_alphabet"):
            return  # the kv rule has not been applied yet; on_kv_post arranges
        digits, row = self.ids.digits, self.ids.toggle_row
        page = self._alphabet if self.letters else digits
        wanted = [page, row] if self.letters_allowed and not self.letters else [page]
        for widget in (digits, self._alphabet, row):
            if widget.parent is self:
                self.remove_widget(widget)
        for widget in wanted:
            self.add_widget(widget, index=0)  # index 0 is the bottom of a vertical box

    def key(self, key: str) -> None:
        """One key: a digit or letter, ``back``, ``ok``, or ``letters``/``digits`` (the pages)."""
        if key == "back":
            self.entered = self.entered[:-1]
        elif key == "ok":
            text, self.entered = self.entered, ""
            if text:
                _app().keypad_entered(self.mode, text)
        elif key in ("letters", "digits"):
            self.letters = key == "letters" and self._offers_letters()
        else:
            self.entered = typed(self.entered, key, letters=self._offers_letters())

    def _offers_letters(self) -> bool:
        """Letters only for a card number, and only where the view allows them."""
        return bool(self.letters_allowed) and self.mode == "card"

    def reset(self) -> None:
        """Forget what was typed and go back to the digits (the screen was left)."""
        self.entered = ""
        self.letters = False

    def shown(self, entered: str, mode: str) -> str:
        """What the display shows: the digits of a card number, dots for a PIN."""
        return "•" * len(entered) if mode == "pin" else entered
