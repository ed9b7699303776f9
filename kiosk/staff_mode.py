"""Staff mode and the kiosk's upkeep, for the controller: health, tests, service, commands.

Behind the staff PIN (:class:`~kiosk.staff.StaffLock`): device health from the agent, the
pad and the printer; a reader test; a print test; out of service on and off. Remote
commands from the central system (``ScreenMessage``, ``OutOfService``, ``InService``) are
applied here too; out of service takes effect when the current patron has finished, never
in the middle of their visit. Upkeep jobs — the link state for the offline banner, and
recovery of unresolved intents — are started from here on the controller's worker.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from edge_agent.contract import Command as RemoteCommand
from edge_agent.contract import InService, OutOfService, ReloadConfig, ScreenMessage
from hardware.printer import PrinterError, Receipt
from hardware.reader import ReaderError
from kiosk import messages as msg
from kiosk.i18n import Text
from kiosk.journal import JournalError
from kiosk.machine import OK, Input, Result, State
from kiosk.ports import AgentError
from kiosk.presenter import ButtonId
from kiosk.recovery import recover
from kiosk.session import StaffPanel
from kiosk.staff import StaffLock, StaffVerdict

if TYPE_CHECKING:
    from kiosk.controller import Command, KioskController

__all__ = ["StaffMode"]

log = logging.getLogger(__name__)


class StaffMode:
    """Staff screens, remote commands and upkeep jobs of one controller."""

    def __init__(self, controller: KioskController, lock: StaffLock) -> None:
        self.c = controller
        self.lock = lock
        self._last_input = 0.0
        # The agent lists only its latest commands; remembering more of their ids is enough.
        self._applied: deque[uuid.UUID] = deque(maxlen=200)

    def _touch(self) -> None:
        self._last_input = self.c.clock.monotonic()

    # ------------------------------------------------------------ entering and leaving

    def requested(self) -> Result:
        """Open the staff PIN pad (from the attract or out-of-service screen)."""
        if self.c.state.state not in (State.ATTRACT, State.OUT_OF_SERVICE):
            return self.c.refuse("staff mode")
        self._touch()
        return self.c.go(Input.STAFF)

    def pin_entered(self, pin: str) -> Result:
        """Check the staff PIN; the PIN typed is not kept."""
        c = self.c
        if c.state.state is not State.STAFF_PIN:
            return c.refuse("a staff PIN")
        self._touch()
        check = self.lock.check(pin)
        if check.verdict is StaffVerdict.OK:
            c.state.staff = StaffPanel()
            c.state.notice = None
            result = c.go(Input.STAFF_OK)
            self.load_health()
            return result
        if check.verdict is StaffVerdict.LOCKED:
            c.notice(msg.staff_locked(math.ceil(check.retry_after_s)))
        else:
            c.notice(msg.STAFF_PIN_WRONG)
        c.changed()
        return Result(False, f"staff PIN {check.verdict.value}")

    def leave(self) -> Result:
        """Leave staff mode (to the attract screen, or out of service)."""
        if self.c.state.state is not State.STAFF:
            return self.c.refuse("leaving staff mode")
        return self.c.go(Input.LEAVE_STAFF)

    def tick(self, now: float) -> None:
        """Close staff mode after the same inactivity time as a patron session."""
        if now - self._last_input >= self.c.config.inactivity_timeout_s:
            log.info("staff mode closed after inactivity")
            self.c.go(Input.TIMEOUT)

    # ------------------------------------------------------------ actions

    def action(self, action: ButtonId) -> Result:
        """Reader test, print test, out of service, back in service."""
        c = self.c
        if c.state.state is not State.STAFF or c.state.staff is None:
            return c.refuse(f"staff action {action.value!r}")
        self._touch()
        if action is ButtonId.OUT_OF_SERVICE:
            c.state.out_of_service, c.state.out_of_service_reason = True, "staff"
            self._result(msg.STAFF_OUT_OF_SERVICE)
        elif action is ButtonId.IN_SERVICE:
            c.state.out_of_service, c.state.out_of_service_reason = False, None
            self._result(msg.STAFF_IN_SERVICE)
        elif action is ButtonId.READER_TEST:
            self._run(self._reader_test)
        elif action is ButtonId.PRINT_TEST:
            if c.printer is None:
                self._result(msg.STAFF_NO_PRINTER)
            else:
                self._run(self._print_test)
        else:
            return Result(False, f"{action.value!r} is not a staff action")
        return c.go(Input.STAFF_ACTION)

    def _result(self, text: Text, detail: str | None = None) -> None:
        panel = self.c.state.staff
        if panel is not None:
            panel.result, panel.detail = text, detail

    def _run(self, test: Callable[[], tuple[Text, str | None]]) -> None:
        c = self.c
        c.state.staff_busy = True

        def job() -> None:
            text, detail = test()
            c.post(lambda: self._finished(text, detail))

        c.submit(job)

    def _finished(self, text: Text, detail: str | None) -> None:
        self.c.state.staff_busy = False
        self._result(text, detail)
        self.c.changed()

    def _reader_test(self) -> tuple[Text, str | None]:
        try:
            reading = self.c.flows.pad.read()
        except ReaderError as exc:
            return msg.STAFF_READER_FAILED, str(exc)
        models = ", ".join(sorted({tag.model.value for tag in reading.tags})) or "-"
        return msg.staff_reader_ok(len(reading.tags)), f"models: {models}"

    def _print_test(self) -> tuple[Text, str | None]:
        c = self.c
        assert c.printer is not None
        language = c.state.language
        receipt = Receipt(
            library_name=c.config.library_name,
            lines=(c.catalogues.render(msg.RECEIPT_TEST, language),),
            language=language,
        )
        try:
            c.printer.print_receipt(receipt)
        except PrinterError as exc:
            return msg.STAFF_PRINT_FAILED, str(exc)
        return msg.STAFF_PRINT_SENT, None

    def load_health(self) -> None:
        """Gather device health for the staff screen (agent, pad, printer, journal)."""
        c = self.c
        agent, pad, printer, journal = c.flows.agent, c.flows.pad, c.printer, c.journal

        def job() -> None:
            rows: list[tuple[str, str]] = []
            try:
                rows += [(f"agent {k}", v) for k, v in agent.health().items()]
                rows.append(("central link", "up" if agent.link_up() else "down"))
            except AgentError as exc:
                rows.append(("agent", f"unreachable: {exc}"))
            rows.append(("pad", pad.describe()))
            rows.append(("printer", printer.describe() if printer is not None else "none"))
            try:
                rows.append(("open intents", str(journal.count())))
            except JournalError as exc:
                rows.append(("intent journal", str(exc)))
            health = tuple(rows)
            c.post(lambda: self._health(health))

        c.submit(job)

    def _health(self, rows: tuple[tuple[str, str], ...]) -> None:
        panel = self.c.state.staff
        if panel is not None:
            panel.health = rows
            self.c.changed()

    # ------------------------------------------------------------ remote commands

    def command(self, command: Command) -> Result:
        """Apply a staff command from the central system."""
        c = self.c
        state = c.state
        match command:
            case ScreenMessage():
                state.screen_message = command
            case OutOfService():
                state.out_of_service, state.out_of_service_reason = True, command.reason
                if state.state is State.ATTRACT:
                    c.go(Input.OUT_OF_SERVICE)
            case InService():
                state.out_of_service, state.out_of_service_reason = False, None
                if state.state is State.OUT_OF_SERVICE:
                    c.go(Input.IN_SERVICE)
            case ReloadConfig():
                return c.reload_when_idle()
        c.changed()
        return OK

    # ------------------------------------------------------------ upkeep

    def refresh_link(self) -> None:
        """Learn whether the agent is there and has its link, and fetch new staff commands."""
        c = self.c
        agent = c.flows.agent

        def job() -> None:
            commands: list[RemoteCommand] = []
            try:
                up, reachable = agent.link_up(), True
                commands = list(agent.commands())
            except AgentError as exc:
                log.warning("agent unreachable: %s", exc)
                up, reachable = False, False
            c.post(lambda: self._link(up, reachable, commands))

        c.submit(job)

    def _link(self, up: bool, reachable: bool, commands: list[RemoteCommand]) -> None:
        self.c.state.link_up, self.c.state.agent_reachable = up, reachable
        for command in commands:
            if command.command_id in self._applied:
                continue
            self._applied.append(command.command_id)
            log.info("staff command %s from the central system", command.body.command)
            self.command(command.body)
        self.c.changed()

    def recover(self) -> None:
        """Resolve intents left in the journal (at start-up, then now and then when idle)."""
        c = self.c
        journal, pad, agent, clock = c.journal, c.flows.pad, c.flows.agent, c.clock

        def job() -> None:
            try:
                if journal.count():
                    recover(journal, pad, agent, clock)
            except JournalError as exc:
                log.error("recovery impossible: %s", exc)

        c.submit(job)
