"""The state machine: its transition table, and random input sequences against the controller.

Hypothesis drives a synchronous controller (in-memory pad, fake agent) with random
sequences of everything a patron, staff, the central system, the clock and faults can do;
the controller must never raise, and after every step the screen, the session, the
countdown and the tags' security must be consistent.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from edge_agent.contract import (
    Checkout,
    InService,
    OutOfService,
    ScreenMessage,
    SecurityWriteFailure,
)
from hardware.tags import ItemData, SetInfo
from kiosk.controller import KioskController
from kiosk.fakes import FakeClock, MemoryPad, MemoryPrinter, PadTag
from kiosk.flows import LineStatus
from kiosk.journal import IntentJournal
from kiosk.machine import SESSION_STATES, TRANSITIONS, Input, InvalidTransition, State, next_state
from kiosk.presenter import ButtonId
from kiosk.workers import InlineWorker, post_inline
from tests.test_kiosk_support import ON_HOLD, START, TITLES, config, library


def test_table_refuses_what_it_does_not_list() -> None:
    """Every pair not in the table raises InvalidTransition naming the state and the input."""
    for state in State:
        for event in Input:
            if (state, event) in TRANSITIONS:
                assert next_state(state, event) is TRANSITIONS[(state, event)]
            else:
                with pytest.raises(InvalidTransition, match=f"'{event.value}'.*'{state.value}'"):
                    next_state(state, event)


def test_every_state_is_reachable_and_every_session_can_end() -> None:
    """From ATTRACT every state can be reached, and every session state can time out."""
    reached, frontier = {State.ATTRACT}, [State.ATTRACT]
    while frontier:
        state = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(State)
    for state in SESSION_STATES:
        assert TRANSITIONS[(state, Input.TIMEOUT)] is State.ATTRACT


PATRON_NAMES = ("Nguyễn Văn An", "Trần Thị Bình", "Emma Wilson", "Phạm Quốc Dũng", "John Smith")
CARDS = ("P0001", "P0002", "P0004", "P0005", "P0007", "P9999", "bad card!")
ITEMS = (*list(TITLES)[:6], ON_HOLD, "9999999")


class KioskMachine(RuleBasedStateMachine):
    """Random visits, staff actions, commands, clock jumps and faults."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.pad = MemoryPad()
        self.agent = library()
        self.clock = FakeClock(START)
        self.journal = IntentJournal(Path(self.tmp.name) / "intents.sqlite")
        self.kiosk = KioskController(
            config(),
            pad=self.pad,
            agent=self.agent,
            clock=self.clock,
            journal=self.journal,
            worker=InlineWorker(),
            post=post_inline,
            printer=MemoryPrinter(),
        )
        self.kiosk.start()
        self.tags: dict[str, PadTag] = {}
        self.item_of: dict[str, str] = {}
        for item_id in ITEMS:
            self.tags[item_id] = PadTag.item(ItemData(item_id, owner_institution="VN-HaNL"))
            self.item_of[item_id] = item_id
        for part in (1, 2):
            self.tags[f"set-{part}"] = PadTag.item(
                ItemData("3100030", owner_institution="VN-HaNL", set_info=SetInfo(2, part))
            )
            self.item_of[f"set-{part}"] = "3100030"
        self.tags["card"] = PadTag.item(ItemData("P0007", type_of_usage=0x80))
        self.item_of["card"] = "P0007"

    def teardown(self) -> None:
        self.journal.close()
        self.tmp.cleanup()

    # ------------------------------------------------------------ the patron

    @rule(
        activity=st.sampled_from(["borrow", "return"]),
        names=st.lists(st.sampled_from(sorted(["card", "set-1", "set-2", *ITEMS])), max_size=3),
    )
    def visit(self, activity: str, names: list[str]) -> None:
        # A shortcut to the interesting part, so most runs lend and return something.
        self.pad.place(*[self.tags[name] for name in names])
        self.kiosk.card_presented("P0007")
        self.kiosk.pin_entered("4321")
        self.kiosk.choose(activity)
        self.kiosk.scan_now()

    @rule()
    def scan(self) -> None:
        self.kiosk.scan_now()

    @rule(card=st.sampled_from(CARDS))
    def card(self, card: str) -> None:
        self.kiosk.card_presented(card)

    @rule(pin=st.sampled_from(["1234", "0000", "4321", "12a", ""]))
    def pin(self, pin: str) -> None:
        self.kiosk.pin_entered(pin)

    @rule(action=st.sampled_from(["borrow", "return", "renew", "account", "dance"]))
    def choose(self, action: str) -> None:
        self.kiosk.choose(action)

    @rule(button=st.sampled_from([*list(ButtonId), "nonsense"]))
    def press(self, button: str) -> None:
        self.kiosk.press(button)

    @rule()
    def done(self) -> None:
        self.kiosk.done()

    @rule(choice=st.sampled_from(["print", "email", "none", "fax"]))
    def receipt(self, choice: str) -> None:
        self.kiosk.receipt(choice)

    @rule()
    def cancel(self) -> None:
        self.kiosk.cancel()

    @rule()
    def back(self) -> None:
        self.kiosk.back()

    @rule(language=st.sampled_from(["vi", "en", "fr"]))
    def language(self, language: str) -> None:
        self.kiosk.set_language(language)

    @rule(names=st.lists(st.sampled_from(sorted(["card", "set-1", "set-2", *ITEMS])), max_size=4))
    def place(self, names: list[str]) -> None:
        self.pad.place(*[self.tags[name] for name in names])

    @rule(names=st.lists(st.sampled_from(sorted(["card", "set-1", "set-2", *ITEMS])), max_size=4))
    def remove(self, names: list[str]) -> None:
        self.pad.remove(*[self.tags[name].uid for name in names])

    @rule(seconds=st.sampled_from([0.1, 0.5, 3, 6, 30, 61]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.kiosk.tick()

    # ------------------------------------------------------------ staff, central, faults

    @rule(pin=st.sampled_from(["0000", "9999"]))
    def staff(self, pin: str) -> None:
        self.kiosk.staff_requested()
        self.kiosk.staff_pin_entered(pin)

    @rule(action=st.sampled_from(["reader_test", "print_test", "out_of_service", "in_service"]))
    def staff_action(self, action: str) -> None:
        self.kiosk.staff_action(action)

    @rule()
    def leave_staff(self) -> None:
        self.kiosk.leave_staff()

    @rule(which=st.integers(0, 2))
    def command(self, which: int) -> None:
        body = (
            ScreenMessage(text_vi="Tin nhắn", until=START + dt.timedelta(minutes=1)),
            OutOfService(reason="test"),
            InService(),
        )[which]
        self.kiosk.apply_command(body)

    @rule(central=st.booleans(), available=st.booleans(), broken=st.booleans())
    def faults(self, central: bool, available: bool, broken: bool) -> None:
        self.agent.central_up = central
        self.agent.available = available or central  # mostly up
        self.pad.broken = broken and not central

    # ------------------------------------------------------------ invariants

    @invariant()
    def screen_and_session_agree(self) -> None:
        view, state = self.kiosk.view, self.kiosk.state
        assert view.screen is state.state
        if state.state in SESSION_STATES:
            assert state.session is not None
        else:
            assert state.session is None
            assert view.countdown_s is None
            assert view.lines == ()
            text = " ".join([view.title, view.prompt, view.notice or ""])
            assert not any(name in text for name in PATRON_NAMES)

    @invariant()
    def nothing_left_half_done(self) -> None:
        # The worker is synchronous: after any input every line is final or waiting.
        assert all(line.status is not LineStatus.CHECKING for line in self.kiosk.view.lines)
        assert "1234" not in repr(self.kiosk.view)

    @invariant()
    def no_unsecured_tag_without_a_record(self) -> None:
        if not self.agent.available:
            return
        events = self.agent.events()
        lent = {e.item_id for e in events if isinstance(e, Checkout)}
        failed = {e.tag_uid for e in events if isinstance(e, SecurityWriteFailure)}
        for name, tag in self.tags.items():
            if tag.afi == self.pad.security.unsecured_afi:
                assert self.item_of[name] in lent or tag.uid.hex().upper() in failed, name
        assert self.journal.count() == 0 or not self.agent.available


TestKioskMachine = KioskMachine.TestCase
TestKioskMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_the_controller_imports_nothing_of_kivy() -> None:
    """Importing the controller and everything it uses loads no Kivy module."""
    import subprocess
    import sys

    code = (
        "import sys, kiosk.controller, kiosk.adapters, kiosk.fakes; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kivy'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
