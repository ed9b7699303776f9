"""One thin screen class per controller state, drawn by ``<screen>.kv`` beside this module.

A screen only binds: :class:`KioskScreen` receives the view model from the app and hands it
to its body (the widgets its own ``.kv`` rule declares); every touch goes to the app, which
passes it to the controller. No screen holds state of its own.
"""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory
from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen

from kiosk.app.widgets import Keypad
from kiosk.machine import State
from kiosk.presenter import ViewModel

__all__ = ["SCREENS", "KioskScreen", "screen_for"]


class KioskScreen(Screen):  # type: ignore[misc]
    """The frame every screen shares (screen.kv) around a body named by the subclass."""

    view = ObjectProperty(None, allownone=True)
    #: The kv class of this screen's body (declared in the screen's own .kv file).
    body_class = "ScreenBody"

    def on_kv_post(self, _base_widget: Any) -> None:
        """Put the screen's body into the shared frame."""
        self.body = Factory.get(self.body_class)()
        self.ids.body.add_widget(self.body)

    def on_view(self, _widget: Any, view: ViewModel | None) -> None:
        """Hand the new view model to the body."""
        self.body.view = view

    def on_leave(self, *_args: Any) -> None:
        """Forget digits half-typed on this screen's keypad (a PIN must not wait there)."""
        for widget in self.walk():
            if isinstance(widget, Keypad):
                widget.reset()


class AttractScreen(KioskScreen):
    """Welcome: put your card on the pad (or type its number), or return books."""

    body_class = "AttractBody"


class IdentifyingScreen(KioskScreen):
    """Looking the card up."""

    body_class = "IdentifyingBody"


class PinScreen(KioskScreen):
    """The patron's PIN pad."""

    body_class = "PinBody"


class ChooseScreen(KioskScreen):
    """Hello: borrow, return, renew or see the account."""

    body_class = "ChooseBody"


class CheckoutScreen(KioskScreen):
    """Borrowing: one line per item on the pad."""

    body_class = "CheckoutBody"


class CheckinScreen(KioskScreen):
    """Returning: one line per item on the pad."""

    body_class = "CheckinBody"


class RenewScreen(KioskScreen):
    """Renewing loans."""

    body_class = "RenewBody"


class AccountScreen(KioskScreen):
    """Loans, holds ready and fines."""

    body_class = "AccountBody"


class ReceiptScreen(KioskScreen):
    """Receipt: print, e-mail or none."""

    body_class = "ReceiptBody"


class GoodbyeScreen(KioskScreen):
    """Goodbye."""

    body_class = "GoodbyeBody"


class StaffPinScreen(KioskScreen):
    """The staff PIN pad."""

    body_class = "StaffPinBody"


class StaffScreen(KioskScreen):
    """Staff mode: device health and tests."""

    body_class = "StaffBody"


class OutOfServiceScreen(KioskScreen):
    """Out of service (staff can still come in)."""

    body_class = "OutOfServiceBody"


#: The screen class of every state.
SCREENS: dict[State, type[KioskScreen]] = {
    State.ATTRACT: AttractScreen,
    State.IDENTIFYING: IdentifyingScreen,
    State.PIN: PinScreen,
    State.CHOOSE: ChooseScreen,
    State.CHECKOUT: CheckoutScreen,
    State.CHECKIN: CheckinScreen,
    State.RENEW: RenewScreen,
    State.ACCOUNT: AccountScreen,
    State.RECEIPT: ReceiptScreen,
    State.GOODBYE: GoodbyeScreen,
    State.STAFF_PIN: StaffPinScreen,
    State.STAFF: StaffScreen,
    State.OUT_OF_SERVICE: OutOfServiceScreen,
}


def screen_for(state: State) -> KioskScreen:
    """A new screen for ``state``, named after it (the ScreenManager's key)."""
    return SCREENS[state](name=state.value)
