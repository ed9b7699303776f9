"""The self-checkout controller: the state machine behind the kiosk's screens, without Kivy.

The Kivy layer renders :attr:`KioskController.view` (a :class:`~kiosk.presenter.ViewModel`)
and calls the methods below — ``card_presented``, ``pin_entered``, ``choose``, ``renew``,
``done``, ``receipt``, ``set_language``, ``tick``, ``press``, the staff methods and
``apply_command`` — **always from its UI thread**. Reader and network work runs on the
:class:`~kiosk.workers.Worker`; results come back through the ``post`` function the UI gives
(Kivy: ``Clock.schedule_once``), so the controller's state is only ever touched by one thread.

Every method returns a :class:`Result`. An input the current state does not accept is
refused with a clear error (the state and the input named) and logged; it never raises.

Flow of a visit: ATTRACT → (card [+ PIN]) → CHOOSE → CHECKOUT / CHECKIN / RENEW / ACCOUNT →
RECEIPT → GOODBYE → ATTRACT. The pad is read on every :meth:`tick` while items are expected;
every item gets its own line as soon as it is seen, and the line turns final when the item
has been processed (see :mod:`kiosk.flows` for the order of authorise, journal, switch,
verify, commit). A session ends after ``inactivity_timeout_s`` without a touch (the view
counts down) and after goodbye; then nothing of the patron remains in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import SecretStr

from edge_agent.contract import InService, OutOfService, RefusalReason, ReloadConfig, ScreenMessage
from hardware.scanner import InvalidCardNumber, InvalidReason, check_card_number
from kiosk import messages as msg
from kiosk.config import KioskConfig
from kiosk.flows import Flows, LineStatus
from kiosk.i18n import Catalogues, Text
from kiosk.journal import IntentJournal
from kiosk.machine import (
    OK,
    SESSION_STATES,
    Input,
    InvalidTransition,
    Result,
    State,
    next_state,
)
from kiosk.offline import OfflineRules
from kiosk.patrons import (
    AgentDown,
    Identified,
    LookupOutcome,
    NotIdentified,
    WrongPin,
    identify,
    mask_card,
)
from kiosk.ports import Agent, Clock, ItemPad, Mailer, Printer, Reloader
from kiosk.presenter import ButtonId, PresenterConfig, ViewModel, present
from kiosk.scanning import PadScanner
from kiosk.session import KioskState, Patron, Session
from kiosk.staff import StaffLock
from kiosk.staff_mode import StaffMode
from kiosk.visits import Visits
from kiosk.workers import Post, Worker

__all__ = ["KioskController", "Result"]

log = logging.getLogger(__name__)

Listener = Callable[[ViewModel], None]
Command = ScreenMessage | OutOfService | InService | ReloadConfig


class KioskController:
    """The kiosk's state machine; see the module docstring for the threading rule."""

    def __init__(
        self,
        config: KioskConfig,
        *,
        pad: ItemPad,
        agent: Agent,
        clock: Clock,
        journal: IntentJournal,
        worker: Worker,
        post: Post,
        printer: Printer | None = None,
        mailer: Mailer | None = None,
        catalogues: Catalogues | None = None,
        on_reload: Reloader | None = None,
    ) -> None:
        self.config = config
        self.catalogues = catalogues or Catalogues(config.languages)
        self.clock = clock
        self.worker = worker
        self.post = post
        self.rules = OfflineRules(config.offline)
        self.flows = Flows(
            pad=pad,
            agent=agent,
            journal=journal,
            clock=clock,
            rules=self.rules,
            timezone=config.timezone,
        )
        self.printer = printer
        self.mailer = mailer
        self.journal = journal
        self.on_reload = on_reload
        self.presenter_config = PresenterConfig(
            library_name=config.library_name,
            languages=config.languages,
            inactivity_timeout_s=config.inactivity_timeout_s,
            countdown_from_s=config.countdown_from_s,
            can_print=printer is not None,
            can_email=mailer is not None,
            offline_checkout=config.offline.allow_checkout,
            card_keypad_letters=config.card_keypad_letters,
        )
        now = clock.monotonic()
        self.state = KioskState(State.ATTRACT, config.default_language, now=now)
        self.staff = StaffMode(self, StaffLock(config.staff_pin, clock))
        self.visits = Visits(self)
        self.scanner = PadScanner(self)
        self._listeners: list[Listener] = []
        self._view: ViewModel | None = None
        self._last_status = float("-inf")
        self._last_recovery = now
        self._reload_wanted = False  # a reload was asked for and waits for an idle kiosk
        self._reload_checking = False  # its configuration is being checked on the worker

    # ------------------------------------------------------------ view and listeners

    @property
    def view(self) -> ViewModel:
        """The current view model, in the current language."""
        if self._view is None:
            self._view = present(self.state, self.presenter_config, self.catalogues)
        return self._view

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every new view model; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def changed(self) -> None:
        """Re-render, and tell the listeners when the screen would look different."""
        old = self._view
        self._view = None
        new = self.view
        if new == old:
            return
        for listener in list(self._listeners):
            try:
                listener(new)
            except Exception:
                # A broken screen must not stop the kiosk's logic.
                log.exception("view listener failed")

    # ------------------------------------------------------------ transitions

    def go(self, event: Input) -> Result:
        """Apply one transition from the table; refuse (and log) one it does not allow."""
        try:
            target = next_state(self.state.state, event)
        except InvalidTransition as exc:
            log.warning("%s", exc)
            return Result(False, str(exc))
        self.state.state = target
        if target is State.ATTRACT:
            self._enter_attract()
        elif target is State.GOODBYE:
            # Goodbye is said in the patron's language, but nothing else of theirs stays.
            self.end_session()
            self.state.goodbye_until = self.clock.monotonic() + self.config.goodbye_s
        self.changed()
        return OK

    def refuse(self, what: str) -> Result:
        """Refuse an input with a reason naming the state (logged, never raised)."""
        error = f"{what} is not possible in state {self.state.state.value!r}"
        log.warning("%s", error)
        return Result(False, error)

    def _enter_attract(self) -> None:
        self.end_session()
        self.state.language = self.config.default_language
        self.state.staff = None
        if self.state.out_of_service:
            # Patrons never see the attract screen of a kiosk out of service.
            self.state.state = next_state(State.ATTRACT, Input.OUT_OF_SERVICE)
        self._reload_if_idle()

    # ------------------------------------------------------------ configuration reload

    def reload_when_idle(self) -> Result:
        """Load the configuration again as soon as no patron or staff member is at the kiosk.

        A restart ends whatever is on the screen, so a visit (or staff mode) in progress is
        never cut short: the reload waits for the attract screen. The new file is checked
        first; a file that cannot be used is reported in the log and the kiosk goes on with
        the configuration it has.
        """
        if self.on_reload is None:
            log.warning("a configuration reload was asked for, but this kiosk cannot reload")
            return Result(False, "this kiosk cannot reload its configuration")
        self._reload_wanted = True
        self._reload_if_idle()
        return OK

    def _idle(self) -> bool:
        return self.state.state in (State.ATTRACT, State.OUT_OF_SERVICE)

    def _reload_if_idle(self) -> None:
        reloader = self.on_reload
        if reloader is None or not self._reload_wanted or self._reload_checking:
            return
        if not self._idle():
            log.info("configuration reload waits until the kiosk is idle")
            return
        self._reload_checking = True

        def job() -> None:
            try:
                problem = reloader.check()
            except Exception as exc:  # a bug in the check must not leave the flag set
                log.exception("checking the configuration failed")
                problem = f"checking it failed: {exc!r}"
            self.post(lambda: self._reload_checked(reloader, problem))

        self.submit(job)

    def _reload_checked(self, reloader: Reloader, problem: str | None) -> None:
        self._reload_checking = False
        if problem is not None:
            self._reload_wanted = False
            log.error(
                "configuration reload refused, the kiosk goes on with the configuration it has: %s",
                problem,
            )
            return
        if not self._idle():  # a patron came while the file was being checked
            self._reload_if_idle()
            return
        self._reload_wanted = False
        log.info("configuration reload: restarting the kiosk on the new configuration")
        reloader.restart()

    def submit(self, job: Callable[[], None]) -> None:
        """Run a job on the worker."""
        self.worker.submit(job)

    def notice(self, text: Text | None) -> None:
        """Show a short notice outside any session (on attract or goodbye)."""
        self.state.notice = text
        self.state.notice_until = self.clock.monotonic() + self.config.notice_s

    # ------------------------------------------------------------ session life

    @property
    def session(self) -> Session | None:
        """The current patron session (None between patrons)."""
        return self.state.session

    def touch(self) -> None:
        """The patron did something: restart the inactivity clock."""
        session = self.state.session
        if session is not None:
            session.last_activity = self.clock.monotonic()

    def new_session(self, card_number: str | None) -> Session:
        """Start a patron session."""
        now = self.clock.monotonic()
        session = Session(card_number=card_number, started=now, last_activity=now)
        self.state.session = session
        return session

    def end_session(self) -> None:
        """Drop the session and every patron detail; refuse sets left waiting on the pad."""
        session = self.state.session
        if session is None:
            return
        waiting = [
            line
            for line in session.lines.values()
            if line.status is LineStatus.WAITING and line.unit is not None
        ]
        if waiting:
            self.visits.refuse_waiting(session, waiting)
        self.state.session = None
        self.scanner.wait_for_empty = True

    def is_current(self, session: Session | None) -> bool:
        """Whether a job's session is still the one on screen."""
        return session is not None and session is self.state.session

    # ------------------------------------------------------------ identification

    def card_presented(self, number: str) -> Result:
        """A card was scanned, tapped, put on the pad or typed: start a patron's visit."""
        if self.state.state is not State.ATTRACT:
            return self.refuse("a card")
        check = check_card_number(number, self.config.card_rule)
        if isinstance(check, InvalidCardNumber):
            log.info("card refused (%s)", check.reason.value)
            text = (
                msg.CARD_MISREAD
                if check.reason is InvalidReason.CHECK_DIGIT
                else (msg.CARD_NOT_A_NUMBER)
            )
            self.notice(text)
            self.changed()
            return Result(False, f"not a card number: {check.reason.value}")
        self.new_session(check.number)
        if self.config.pin_required:
            return self.go(Input.CARD_NEEDS_PIN)
        result = self.go(Input.CARD)
        self._lookup(None)
        return result

    def pin_entered(self, pin: str) -> Result:
        """The patron typed their PIN; it goes into the lookup request and nowhere else."""
        session = self.state.session
        if self.state.state is not State.PIN or session is None:
            return self.refuse("a PIN")
        if not (pin.isascii() and pin.isdigit() and 1 <= len(pin) <= 12):
            session.notice = msg.PIN_NOT_DIGITS
            self.touch()
            self.changed()
            return Result(False, "a PIN has 1 to 12 digits")
        session.notice = None
        result = self.go(Input.PIN)
        self._lookup(SecretStr(pin))
        return result

    def _lookup(self, pin: SecretStr | None) -> None:
        session = self.state.session
        assert session is not None
        assert session.card_number is not None
        number = session.card_number
        session.busy += 1

        with_pin = pin is not None

        def job() -> None:
            outcome = identify(self.flows, self.rules, number, pin)
            self.post(lambda: self._on_lookup(session, outcome, with_pin))

        self.submit(job)

    def _on_lookup(self, session: Session, outcome: LookupOutcome, with_pin: bool) -> None:
        session.busy -= 1
        if not self.is_current(session) or self.state.state is not State.IDENTIFYING:
            return
        self.touch()
        match outcome:
            case Identified():
                session.patron = Patron(
                    outcome.patron_id, outcome.name, outcome.may_borrow, offline=outcome.offline
                )
                session.offline = outcome.offline
                if outcome.language in self.config.languages:
                    self.state.language = outcome.language
                session.notice = None if outcome.may_borrow else msg.CANNOT_BORROW
                self.go(Input.IDENTIFIED)
            case WrongPin() if not with_pin:
                # The central system wants a PIN for this card even if the kiosk does not
                # ask for one by default: ask now.
                self.go(Input.WRONG_PIN)
            case WrongPin():
                session.wrong_pins += 1
                if session.wrong_pins >= self.config.max_wrong_pins:
                    self.notice(msg.refusal("identify", RefusalReason.WRONG_PIN))
                    self.go(Input.NOT_IDENTIFIED)
                else:
                    session.notice = msg.PIN_AGAIN
                    self.go(Input.WRONG_PIN)
            case NotIdentified():
                log.info(
                    "card %s refused: %s",
                    mask_card(session.card_number or ""),
                    outcome.reason.value,
                )
                self.notice(msg.refusal("identify", outcome.reason))
                self.go(Input.NOT_IDENTIFIED)
            case AgentDown():
                self.state.agent_reachable = False
                self.notice(msg.AGENT_DOWN)
                self.go(Input.NOT_IDENTIFIED)

    # ------------------------------------------------------------ choosing an activity

    def choose(self, action: str) -> Result:
        """Start an activity: ``borrow``, ``return``, ``renew`` or ``account``."""
        event = {
            "borrow": Input.BORROW,
            "return": Input.RETURN,
            "renew": Input.RENEW,
            "account": Input.ACCOUNT,
        }.get(action)
        if event is None:
            return Result(False, f"unknown action {action!r}")
        session = self.state.session
        if self.state.state is State.ATTRACT and event is Input.RETURN:
            # Returning needs no card: a session without a patron.
            self.new_session(None)
        elif self.state.state is not State.CHOOSE or session is None or session.patron is None:
            return self.refuse(f"choosing {action!r}")
        elif event in (Input.BORROW, Input.RENEW) and not session.patron.may_borrow:
            return Result(False, "this card may not borrow")
        self.touch()
        result = self.go(event)
        if result:
            self.visits.entered(self.state.state)
        return result

    def renew(self, item_id: str) -> Result:
        """Renew one loan listed on the renew screen."""
        return self.visits.renew([item_id])

    def renew_all(self) -> Result:
        """Renew every renewable loan listed on the renew screen."""
        session = self.state.session
        if session is None or self.state.state is not State.RENEW:
            return self.refuse("renewing")
        return self.visits.renew(
            [
                line.item_id
                for line in session.lines_for(State.RENEW)
                if line.can_renew and line.item_id
            ]
        )

    def back(self) -> Result:
        """Back from an activity to the choice of activities."""
        session = self.state.session
        if session is None or session.busy:
            return self.refuse("going back")
        if session.patron is None:
            return self.refuse("going back without a card")
        self.touch()
        return self.go(Input.BACK)

    def done(self) -> Result:
        """The patron has finished: offer a receipt when there is one, else say goodbye."""
        return self.visits.done()

    def receipt(self, choice: str) -> Result:
        """The receipt choice: ``print``, ``email`` or ``none``."""
        return self.visits.receipt(choice)

    def cancel(self) -> Result:
        """End the session at once (or leave the PIN pad)."""
        if self.state.state is State.STAFF_PIN or self.state.state in SESSION_STATES:
            return self.go(Input.CANCEL)
        return self.refuse("cancel")

    def set_language(self, language: str) -> Result:
        """Switch the language of every text on screen, at any moment."""
        if language not in self.config.languages:
            return Result(False, f"language {language!r} is not offered here")
        self.state.language = language
        self.touch()
        self.changed()
        return OK

    def press(self, button: str) -> Result:
        """A button of the view model was pressed (its ``id``)."""
        try:
            bid = ButtonId(button)
        except ValueError:
            return Result(False, f"unknown button {button!r}")
        enabled = {b.id: b.enabled for b in self.view.buttons}
        if not enabled.get(bid, False):
            return self.refuse(f"button {bid.value!r}")
        actions: dict[ButtonId, Callable[[], Result]] = {
            ButtonId.BORROW: lambda: self.choose("borrow"),
            ButtonId.RETURN: lambda: self.choose("return"),
            ButtonId.RENEW: lambda: self.choose("renew"),
            ButtonId.ACCOUNT: lambda: self.choose("account"),
            ButtonId.RENEW_ALL: self.renew_all,
            ButtonId.FINISH: self.done,
            ButtonId.BACK: self.back,
            ButtonId.CANCEL: self.cancel,
            ButtonId.PRINT: lambda: self.receipt("print"),
            ButtonId.EMAIL: lambda: self.receipt("email"),
            ButtonId.NO_RECEIPT: lambda: self.receipt("none"),
            ButtonId.STAFF: self.staff.requested,
            ButtonId.READER_TEST: lambda: self.staff.action(bid),
            ButtonId.PRINT_TEST: lambda: self.staff.action(bid),
            ButtonId.OUT_OF_SERVICE: lambda: self.staff.action(bid),
            ButtonId.IN_SERVICE: lambda: self.staff.action(bid),
            ButtonId.LEAVE_STAFF: self.staff.leave,
        }
        return actions[bid]()

    # ------------------------------------------------------------ staff and commands

    def staff_requested(self) -> Result:
        """Open the staff PIN pad."""
        return self.staff.requested()

    def staff_pin_entered(self, pin: str) -> Result:
        """Check the staff PIN (constant time, rate-limited)."""
        return self.staff.pin_entered(pin)

    def staff_action(self, action: str) -> Result:
        """Reader test, print test, out of service / in service."""
        try:
            bid = ButtonId(action)
        except ValueError:
            return Result(False, f"unknown staff action {action!r}")
        return self.staff.action(bid)

    def leave_staff(self) -> Result:
        """Leave staff mode."""
        return self.staff.leave()

    def apply_command(self, command: Command) -> Result:
        """A remote staff command from the central system (through the agent)."""
        return self.staff.command(command)

    # ------------------------------------------------------------ time and the pad

    def tick(self, now: float | None = None) -> None:
        """Advance timers (countdown, goodbye, notices), read the pad, refresh the link state.

        The UI calls this a few times a second (Kivy: ``Clock.schedule_interval``).
        """
        now = self.clock.monotonic() if now is None else now
        state = self.state
        state.now = now
        session = state.session
        idle_limit = self.config.inactivity_timeout_s
        if session is not None and state.state in SESSION_STATES:
            if session.busy:
                session.last_activity = now  # a job in flight is not inactivity
            elif now - session.last_activity >= idle_limit:
                log.info("session closed after %.0f s without activity", idle_limit)
                self.go(Input.TIMEOUT)
                self.notice(msg.SESSION_CLOSED)
        elif state.state in (State.STAFF, State.STAFF_PIN):
            self.staff.tick(now)
        if state.state is State.GOODBYE and now >= state.goodbye_until:
            self.go(Input.GOODBYE_OVER)
        if state.notice is not None and now >= state.notice_until:
            state.notice = None
        message = state.screen_message
        if message is not None and message.until is not None and self.clock.now() >= message.until:
            state.screen_message = None
        self.scanner.maybe_scan(now)
        self._maybe_refresh(now)
        self.changed()

    def scan_now(self) -> None:
        """Read the pad now rather than at the next due tick."""
        self.scanner.scan_now()

    def _maybe_refresh(self, now: float) -> None:
        if now - self._last_status >= self.config.status_interval_s:
            self._last_status = now
            self.staff.refresh_link()
        if (
            self.state.state in (State.ATTRACT, State.OUT_OF_SERVICE)
            and now - self._last_recovery >= self.config.recovery_interval_s
        ):
            self._last_recovery = now
            self.staff.recover()

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Resolve intents left by a previous run, then learn the link state."""
        self._last_recovery = self.clock.monotonic()
        self.staff.recover()
        self.staff.refresh_link()
        self.changed()
