"""Staff mode behind the staff PIN, and remote commands from the central system.

The PIN is compared in constant time and wrong attempts lock the keypad for longer and
longer; staff see device health, test the reader (the simulated FEIG reader on a pty) and
the printer, and switch the kiosk out of service; ScreenMessage, OutOfService and InService
commands show on the screen.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from edge_agent.contract import InService, OutOfService, ReloadConfig, ScreenMessage
from hardware.printer import PrinterCoverOpen
from kiosk import messages as msg
from kiosk import staff as staff_module
from kiosk.fakes import FakeClock
from kiosk.machine import State
from kiosk.presenter import BannerKind
from kiosk.staff import StaffLock, StaffVerdict
from tests.test_kiosk_support import START, Kiosk, SimPad, make_kiosk, sim_pad, sim_tag


@pytest.fixture
def rig() -> Iterator[SimPad]:
    """A simulated pad on a pty."""
    with sim_pad() as pad:
        yield pad


@pytest.fixture
def kiosk(tmp_path: Path, rig: SimPad) -> Iterator[Kiosk]:
    """A synchronous kiosk over the simulated pad (staff PIN 0000)."""
    k = make_kiosk(tmp_path, rig.pad)
    yield k
    k.close()


def render(kiosk: Kiosk, text: msg.Text) -> str:
    return kiosk.controller.catalogues.render(text, kiosk.view.language)


def enter_staff(kiosk: Kiosk) -> None:
    assert kiosk.controller.staff_requested()
    assert kiosk.view.screen == State.STAFF_PIN
    assert kiosk.view.keypad == "pin"
    assert kiosk.controller.staff_pin_entered("0000")
    assert kiosk.view.screen == State.STAFF


# ---------------------------------------------------------------- the PIN lock


def test_staff_pin_lockout_grows_and_resets() -> None:
    """Three wrong PINs are free; then each wrong one locks for 30, 60, 120 s; a right one resets."""
    clock = FakeClock(START)
    lock = StaffLock(SecretStr("2468"), clock, lockout_s=30, max_lockout_s=100)
    assert lock.check("1111").verdict is StaffVerdict.WRONG
    assert lock.check("2222").verdict is StaffVerdict.WRONG
    third = lock.check("3333")
    assert third.verdict is StaffVerdict.LOCKED
    assert third.retry_after_s == 30
    assert lock.check("2468").verdict is StaffVerdict.LOCKED  # even the right PIN waits
    clock.advance(30)
    fourth = lock.check("4444")
    assert fourth.verdict is StaffVerdict.LOCKED
    assert fourth.retry_after_s == 60
    clock.advance(60)
    assert lock.check("5555").retry_after_s == 100  # capped
    clock.advance(100)
    assert lock.check("2468").verdict is StaffVerdict.OK
    assert lock.check("0000").verdict is StaffVerdict.WRONG  # the count starts again


def test_staff_pin_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attempt goes through hmac.compare_digest on equal-length digests."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(staff_module.hmac, "compare_digest", spy)
    lock = StaffLock(SecretStr("24681357"), FakeClock(START))
    assert lock.check("1").verdict is StaffVerdict.WRONG
    assert lock.check("24681357").verdict is StaffVerdict.OK
    assert calls == [(32, 32), (32, 32)]


# ---------------------------------------------------------------- staff mode


def test_wrong_staff_pin_is_refused_then_locked(kiosk: Kiosk) -> None:
    """A wrong staff PIN is told; after three the keypad says how long to wait."""
    kiosk.controller.staff_requested()
    assert not kiosk.controller.staff_pin_entered("1234")
    assert kiosk.view.notice == render(kiosk, msg.STAFF_PIN_WRONG)
    kiosk.controller.staff_pin_entered("1234")
    kiosk.controller.staff_pin_entered("1234")
    assert kiosk.view.notice == render(kiosk, msg.staff_locked(30))
    assert not kiosk.controller.staff_pin_entered("0000")
    assert kiosk.view.screen == State.STAFF_PIN
    assert kiosk.controller.cancel()
    assert kiosk.view.screen == State.ATTRACT


def test_health_reader_test_and_print_test(kiosk: Kiosk, rig: SimPad) -> None:
    """Staff see health figures, test the reader (tags counted) and the printer."""
    enter_staff(kiosk)
    staff = kiosk.view.staff
    assert staff is not None
    health = dict(staff.health)
    assert health["central link"] == "up"
    assert health["open intents"] == "0"
    assert health["pad"] == "simulated pad: firmware 3.3"
    assert "agent outbox held" in health
    rig.field.place(sim_tag("3100001"), sim_tag("3100002", model="3", type_of_usage=0x10))
    assert kiosk.controller.staff_action("reader_test")
    assert kiosk.view.staff is not None
    assert kiosk.view.staff.result == render(kiosk, msg.staff_reader_ok(2))
    assert kiosk.view.staff.detail == "models: iso28560-2, iso28560-3"
    assert kiosk.controller.press("print_test")
    assert kiosk.printer is not None
    assert len(kiosk.printer.receipts) == 1
    assert kiosk.printer.receipts[0].lines == (render(kiosk, msg.RECEIPT_TEST),)
    kiosk.printer.failure = PrinterCoverOpen("cover open")
    kiosk.controller.staff_action("print_test")
    assert kiosk.view.staff is not None
    assert kiosk.view.staff.result == render(kiosk, msg.STAFF_PRINT_FAILED)
    assert kiosk.view.staff.detail == "cover open"


def test_reader_test_reports_a_dead_reader(kiosk: Kiosk, rig: SimPad) -> None:
    """With the reader gone the test says so in words, with the detail for staff."""
    enter_staff(kiosk)
    rig.sim.unplug()
    kiosk.controller.staff_action("reader_test")
    assert kiosk.view.staff is not None
    assert kiosk.view.staff.result == render(kiosk, msg.STAFF_READER_FAILED)
    assert kiosk.view.staff.detail


def test_out_of_service_and_back(kiosk: Kiosk) -> None:
    """Staff switch the kiosk out of service; patrons see it and cannot start; then back."""
    enter_staff(kiosk)
    assert kiosk.controller.press("out_of_service")
    assert kiosk.controller.leave_staff()
    assert kiosk.view.screen == State.OUT_OF_SERVICE
    assert kiosk.view.title == render(kiosk, msg.OUT_OF_SERVICE_TITLE)
    assert BannerKind.OUT_OF_SERVICE in [b.kind for b in kiosk.view.banners]
    assert not kiosk.controller.card_presented("P0007")
    assert not kiosk.controller.choose("return")
    enter_staff(kiosk)
    assert kiosk.controller.press("in_service")
    kiosk.controller.leave_staff()
    assert kiosk.view.screen == State.ATTRACT


def test_staff_mode_closes_after_inactivity(kiosk: Kiosk) -> None:
    """Staff mode left open goes back to the attract screen after the inactivity time."""
    enter_staff(kiosk)
    kiosk.clock.advance(59)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.STAFF
    kiosk.clock.advance(2)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.ATTRACT


# ---------------------------------------------------------------- remote commands


def test_screen_message_in_both_languages_until_its_time(kiosk: Kiosk) -> None:
    """A staff message shows as a banner in the screen's language, and goes at its end time."""
    until = START + dt.timedelta(minutes=5)
    kiosk.controller.apply_command(
        ScreenMessage(
            text_vi="Thư viện đóng cửa lúc 17 giờ",
            text_en="The library closes at 5 pm",
            until=until,
        )
    )
    banner = [b for b in kiosk.view.banners if b.kind is BannerKind.STAFF_MESSAGE]
    assert [b.text for b in banner] == ["Thư viện đóng cửa lúc 17 giờ"]
    kiosk.controller.set_language("en")
    assert "The library closes at 5 pm" in [b.text for b in kiosk.view.banners]
    kiosk.clock.advance(301)
    kiosk.controller.tick()
    assert BannerKind.STAFF_MESSAGE not in [b.kind for b in kiosk.view.banners]


def test_remote_out_of_service_waits_for_the_patron(kiosk: Kiosk) -> None:
    """OutOfService during a visit lets the patron finish; InService brings the kiosk back."""
    kiosk.identify("P0007")
    assert kiosk.controller.apply_command(OutOfService(reason="maintenance"))
    assert kiosk.view.screen == State.CHOOSE  # the visit goes on
    kiosk.controller.done()
    assert kiosk.view.screen == State.GOODBYE
    kiosk.clock.advance(6)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.OUT_OF_SERVICE
    assert kiosk.controller.apply_command(InService())
    assert kiosk.view.screen == State.ATTRACT
    assert not kiosk.controller.apply_command(ReloadConfig())  # no reload hook given


def test_commands_fetched_from_the_agent_are_applied_once(kiosk: Kiosk) -> None:
    """Commands the agent received are picked up on the status refresh, each only once."""
    kiosk.agent.send_command(OutOfService(reason="inventory day"))
    kiosk.clock.advance(16)  # past the status refresh interval
    kiosk.controller.tick()
    assert kiosk.view.screen == State.OUT_OF_SERVICE
    enter_staff(kiosk)
    kiosk.controller.press("in_service")
    kiosk.controller.leave_staff()
    assert kiosk.view.screen == State.ATTRACT
    kiosk.clock.advance(16)
    kiosk.controller.tick()
    assert kiosk.view.screen == State.ATTRACT  # the old command is not applied again


# ---------------------------------------------------------------- configuration reload


class CountingReloader:
    """The Reloader port: answers ``check()`` with ``problem`` and counts the calls."""

    def __init__(self, problem: str | None = None) -> None:
        self.problem = problem
        self.checks = 0
        self.restarts = 0

    def check(self) -> str | None:
        self.checks += 1
        return self.problem

    def restart(self) -> None:
        self.restarts += 1


@pytest.fixture
def reloader() -> CountingReloader:
    return CountingReloader()


@pytest.fixture
def reloading(tmp_path: Path, rig: SimPad, reloader: CountingReloader) -> Iterator[Kiosk]:
    """A synchronous kiosk that can reload its configuration."""
    k = make_kiosk(tmp_path, rig.pad, reloader=reloader)
    yield k
    k.close()


def test_reload_on_an_idle_kiosk_checks_the_file_then_restarts(
    reloading: Kiosk, reloader: CountingReloader
) -> None:
    """Nobody at the kiosk: the new file is checked and the kiosk restarts on it at once."""
    assert reloading.controller.apply_command(ReloadConfig())
    assert (reloader.checks, reloader.restarts) == (1, 1)


def test_reload_waits_for_the_patron_to_finish(
    reloading: Kiosk, reloader: CountingReloader
) -> None:
    """A reload never cuts a visit short: it happens when the kiosk is back on attract."""
    reloading.identify("P0007")
    assert reloading.controller.apply_command(ReloadConfig())
    assert reloading.view.screen == State.CHOOSE
    assert (reloader.checks, reloader.restarts) == (0, 0)
    reloading.controller.done()
    assert reloading.view.screen == State.GOODBYE
    assert reloader.restarts == 0  # goodbye is still the patron's screen
    reloading.clock.advance(6)
    reloading.controller.tick()
    assert reloading.view.screen == State.ATTRACT
    assert (reloader.checks, reloader.restarts) == (1, 1)


def test_reload_waits_for_staff_mode_to_close(reloading: Kiosk, reloader: CountingReloader) -> None:
    """Staff at the kiosk are not thrown out either; the reload follows their leaving."""
    enter_staff(reloading)
    assert reloading.controller.apply_command(ReloadConfig())
    assert reloader.restarts == 0
    reloading.controller.leave_staff()
    assert reloading.view.screen == State.ATTRACT
    assert reloader.restarts == 1


def test_reload_of_a_kiosk_out_of_service_is_at_once(
    reloading: Kiosk, reloader: CountingReloader
) -> None:
    """Out of service counts as idle: no patron can be using it."""
    assert reloading.controller.apply_command(OutOfService(reason="maintenance"))
    assert reloading.view.screen == State.OUT_OF_SERVICE
    assert reloading.controller.apply_command(ReloadConfig())
    assert reloader.restarts == 1


def test_a_file_that_cannot_be_used_is_named_and_the_kiosk_goes_on(
    reloading: Kiosk, reloader: CountingReloader, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken file is reported, the kiosk keeps serving, and a mended file reloads."""
    reloader.problem = "site.toml: devices.item_reader: a kiosk needs its pad reader"
    assert reloading.controller.apply_command(ReloadConfig())
    assert (reloader.checks, reloader.restarts) == (1, 0)
    assert "configuration reload refused" in caplog.text
    assert "devices.item_reader" in caplog.text
    reloading.identify("P0007")  # still serving patrons
    assert reloading.view.screen == State.CHOOSE
    reloading.controller.done()
    reloading.clock.advance(6)
    reloading.controller.tick()
    assert reloader.restarts == 0  # the refused reload is not retried on its own
    reloader.problem = None
    assert reloading.controller.apply_command(ReloadConfig())
    assert (reloader.checks, reloader.restarts) == (2, 1)
