"""The scripted kiosk app run that tests/test_kiosk_app.py starts in a subprocess.

Kivy's App runs once per process, so the scenario lives here and runs as a script::

    python tests/test_kiosk_app_driver.py OUT_DIR

It starts the real :class:`~kiosk.app.main.KioskApp` offscreen over the simulated FEIG reader
on a pty, the real driver and pad adapter, a fake agent (:func:`tests.test_kiosk_support.
library`), a real intent journal and a real worker thread. Every step touches the screen
with a Kivy MotionEvent at the centre of a visible button, then waits — frame by frame, on
Kivy's clock, with a deadline — for the controller to reach the expected state. It saves a
screenshot of every screen in both languages (``kiosk-<screen>-<language>.png``) and writes
``result.json`` with what happened, for the test to check. This module holds no tests.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
STEP_TIMEOUT_S = 20.0
PATRON_PIN = "1234"  # P0001's PIN in tests.test_kiosk_support.library
STAFF_PIN = "0000"
BORROWED = ["3100001", "3100002", "3100005"]


@dataclass
class Step:
    """One step: do something, then wait until ``until`` holds."""

    what: str
    action: Callable[[], None] | None = None
    until: Callable[[], bool] = lambda: True


@dataclass
class Report:
    """What the scenario saw (written to result.json)."""

    done: list[str] = field(default_factory=list)
    shots: list[str] = field(default_factory=list)
    error: str | None = None
    cold_start_s: float | None = None
    spoken: list[list[str]] = field(default_factory=list)


def main(out: Path) -> int:
    """Run the scenario; 0 when every step happened."""
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kiosk.app.kivy_config import configure_kivy

    configure_kivy(windowed=True)
    from kivy.clock import Clock
    from kivy.tests.common import UnitTestTouch

    from kiosk.app.main import KioskApp
    from kiosk.app.speech import Speaker
    from kiosk.app.widgets import KButton, Keypad
    from kiosk.controller import KioskController
    from kiosk.fakes import FakeClock, MemoryPrinter
    from kiosk.flows import FINAL
    from kiosk.journal import IntentJournal
    from kiosk.machine import State
    from kiosk.workers import Post, ThreadWorker
    from tests.test_kiosk_support import NOT_FOR_LOAN, START, config, library, sim_pad, sim_tag

    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    speech_wav = out / "speech.wav"

    class WavSpeaker(Speaker):
        """espeak-ng for real, into a WAV file rather than a sound card."""

        def command(self, text: str, language: str) -> list[str]:
            report.spoken.append([language, text])
            return [*super().command(text, language)[:-2], "-w", str(speech_wav), "--", text]

    @dataclass
    class Runtime:
        controller: KioskController
        worker: ThreadWorker
        journal: IntentJournal

        def close(self) -> None:
            self.worker.close()
            self.journal.close()

    with ExitStack() as stack:
        rig = stack.enter_context(sim_pad())
        clock = FakeClock(START)
        agent = library()
        # Card numbers with letters: the attract keypad has an ABC page.
        kiosk_config = config(goodbye_s=3.0, card_keypad_letters=True)
        gate = threading.Event()

        def opener(post: Post) -> Runtime:
            journal = IntentJournal(out / "intents.sqlite")
            worker = ThreadWorker()
            controller = KioskController(
                kiosk_config,
                pad=rig.pad,
                agent=agent,
                clock=clock,
                journal=journal,
                worker=worker,
                post=post,
                printer=MemoryPrinter(),
            )
            controller.start()
            return Runtime(controller, worker, journal)

        speaker = WavSpeaker()
        # What "libedge kiosk run --screenshots DIR" does: each new screen saved by the app.
        app = KioskApp(opener, speaker=speaker, screenshots=out / "auto")

        def view() -> Any:
            return app.controller.view

        def on(screen: State, extra: Callable[[], bool] = lambda: True) -> Callable[[], bool]:
            return lambda: view().screen is screen and extra()

        def button(action_id: str) -> KButton:
            assert app.manager is not None
            found = [
                w
                for w in app.manager.current_screen.walk()
                if isinstance(w, KButton) and w.action_id == action_id and not w.disabled
            ]
            if not found:
                raise LookupError(f"no enabled button {action_id!r} on {view().screen.value}")
            return found[0]

        def touch(action_id: str) -> None:
            widget = button(action_id)
            x, y = widget.to_window(*widget.center)
            event = UnitTestTouch(x, y)
            event.touch_down()
            event.touch_up()

        def touches(*ids: str) -> Callable[[], None]:
            def run() -> None:
                for action_id in ids:
                    touch(action_id)

            return run

        def shoot() -> None:
            name = f"kiosk-{view().screen.value}-{view().language}.png"
            if app.large:
                name = name.replace(".png", "-large.png")
            app.save_screenshot(name, out)
            report.shots.append(name)

        def other_language() -> str:
            code: str = next(lang.code for lang in view().languages if not lang.selected)
            return code

        def both_languages(label: str) -> list[Step]:
            first: list[str] = []

            def first_shot() -> None:
                first.append(view().language)
                shoot()

            return [
                Step(f"{label}: shot", first_shot),
                Step(
                    f"{label}: switch language",
                    lambda: touch(f"lang:{other_language()}"),
                    lambda: view().language != first[-1],
                ),
                Step(f"{label}: shot in the other language", shoot),
                Step(
                    f"{label}: switch back",
                    lambda: touch(f"lang:{first[-1]}"),
                    lambda: view().language == first[-1],
                ),
            ]

        def lines_final(count: int) -> Callable[[], bool]:
            def check() -> bool:
                lines = view().lines
                return (
                    len(lines) == count
                    and not view().busy
                    and all(line.status in FINAL for line in lines)
                )

            return check

        def place(*item_ids: str) -> Callable[[], None]:
            def run() -> None:
                rig.field.place(*(sim_tag(i) for i in item_ids))
                app.controller.scan_now()

            return run

        def leave_goodbye() -> None:
            rig.field.clear()
            clock.advance(kiosk_config.goodbye_s + 0.1)

        def hold_worker() -> None:
            # The lookup queues behind this job, so the identifying screen stays up.
            def wait_for_gate() -> None:
                gate.wait(STEP_TIMEOUT_S)

            app.controller.worker.submit(wait_for_gate)
            app.controller.card_presented("P0001")

        def card(number: str) -> None:
            # The card scanner's input (hardware, not a touch).
            app.controller.card_presented(number)

        def receipt_if_offered() -> None:
            if view().screen is State.RECEIPT:
                touch("none")

        def keypads() -> list[Keypad]:
            assert app.manager is not None
            return [w for w in app.manager.current_screen.walk() if isinstance(w, Keypad)]

        def keypad_empty() -> bool:
            pads = keypads()
            return bool(pads) and all(pad.entered == "" for pad in pads)

        def letter_page(shown: bool) -> Callable[[], bool]:
            return lambda: [pad.letters for pad in keypads()] == [shown]

        def shoot_as(name: str) -> Callable[[], None]:
            def run() -> None:
                app.save_screenshot(f"kiosk-{name}-{view().language}.png", out)
                report.shots.append(name)

            return run

        def speech_finished() -> bool:
            process = speaker._process
            return process is not None and process.poll() is not None

        steps: list[Step] = [
            Step("attract", until=on(State.ATTRACT)),
            *both_languages("attract"),
            Step("card scanned", hold_worker, on(State.IDENTIFYING)),
            *both_languages("identifying"),
            Step("lookup answers: PIN needed", gate.set, on(State.PIN)),
            *both_languages("pin"),
            Step("PIN typed", touches("9", "back", *PATRON_PIN, "ok"), on(State.CHOOSE)),
            *both_languages("choose"),
            Step("borrow", touches("borrow"), on(State.CHECKOUT)),
            Step("stack on the pad", place(*BORROWED, NOT_FOR_LOAN), lines_final(4)),
            *both_languages("checkout"),
            Step("finish", touches("finish"), on(State.RECEIPT)),
            *both_languages("receipt"),
            Step("no receipt", touches("none"), on(State.GOODBYE)),
            *both_languages("goodbye"),
            Step("goodbye over", leave_goodbye, on(State.ATTRACT)),
            Step("return without a card", touches("return"), on(State.CHECKIN)),
            Step("returned stack on the pad", place(*BORROWED), lines_final(3)),
            *both_languages("checkin"),
            Step("finish return", touches("finish"), lambda: view().screen is not State.CHECKIN),
            Step("receipt", receipt_if_offered, on(State.GOODBYE)),
            Step("goodbye over again", leave_goodbye, on(State.ATTRACT)),
            Step("English card", lambda: card("P0007"), on(State.CHOOSE)),
            Step("account", touches("account"), on(State.ACCOUNT, lambda: bool(view().account))),
            *both_languages("account"),
            Step("back", touches("back"), on(State.CHOOSE)),
            Step("renew", touches("renew"), on(State.RENEW, lambda: not view().busy)),
            *both_languages("renew"),
            Step("back again", touches("back"), on(State.CHOOSE)),
            Step("large text on", touches("large"), lambda: app.large),
            Step("large text shot", shoot),
            Step("speech on", touches("speech"), speech_finished),
            Step("both off", touches("large", "speech"), lambda: not app.large),
            Step("finish visit", touches("finish"), on(State.GOODBYE)),
            Step("goodbye over once more", leave_goodbye, on(State.ATTRACT)),
            Step("staff", touches("staff"), on(State.STAFF_PIN)),
            Step("digits typed, then cancel", touches("5", "5", "cancel"), on(State.ATTRACT)),
            Step(
                "staff PIN pad is empty again", touches("staff"), on(State.STAFF_PIN, keypad_empty)
            ),
            *both_languages("staff_pin"),
            Step("staff PIN", touches(*STAFF_PIN, "ok"), on(State.STAFF)),
            *both_languages("staff"),
            Step(
                "out of service",
                touches("out_of_service"),
                lambda: bool(view().staff and view().staff.out_of_service),
            ),
            Step("leave staff", touches("leave_staff"), on(State.OUT_OF_SERVICE)),
            *both_languages("out_of_service"),
            Step("staff again", touches("staff"), on(State.STAFF_PIN)),
            Step("staff PIN again", touches(*STAFF_PIN, "ok"), on(State.STAFF)),
            Step("in service", touches("in_service"), lambda: not view().staff.out_of_service),
            Step("leave staff again", touches("leave_staff"), on(State.ATTRACT)),
            Step("letter page", touches("letters"), on(State.ATTRACT, letter_page(True))),
            Step("letter page shot", shoot_as("attract-letters")),
            # A page swap is laid out on the next frame: each page is touched in a step of its own.
            Step(
                "a letter, then the digits again",
                touches("P", "digits"),
                on(State.ATTRACT, letter_page(False)),
            ),
            Step(
                "card number with a letter typed", touches("0", "0", "0", "1", "ok"), on(State.PIN)
            ),
            Step("PIN cancelled", touches("cancel"), on(State.ATTRACT, letter_page(False))),
        ]

        position = {"step": -1, "deadline": 0.0, "settle": 0}

        def advance(_dt: float) -> None:
            index = position["step"]
            try:
                if index >= 0:
                    step = steps[int(index)]
                    if not step.until():
                        if time.monotonic() > position["deadline"]:
                            raise TimeoutError(f"step {step.what!r}: still on {view()}")
                        return
                    if report.cold_start_s is None:
                        report.cold_start_s = round(time.perf_counter() - STARTED, 3)
                    if position["settle"] == 0:
                        report.done.append(step.what)
                # Two frames between steps: the new screen is laid out before it is touched.
                if position["settle"] < 2:
                    position["settle"] += 1
                    return
                position["settle"] = 0
                index += 1
                position["step"] = index
                if index >= len(steps):
                    app.stop()
                    return
                position["deadline"] = time.monotonic() + STEP_TIMEOUT_S
                action = steps[int(index)].action
                if action is not None:
                    action()
            except Exception as exc:
                report.error = f"{type(exc).__name__}: {exc}"
                app.stop()

        Clock.schedule_interval(advance, 0)
        try:
            app.run()
        finally:
            gate.set()
            app.on_stop()
        report_data = {
            **report.__dict__,
            "events": [type(e).__name__ + ":" + getattr(e, "item_id", "") for e in agent.events()],
            "speech_wav_bytes": speech_wav.stat().st_size if speech_wav.exists() else 0,
        }
        (out / "result.json").write_text(json.dumps(report_data, indent=1), encoding="utf-8")
    return 0 if report.error is None else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main(Path(sys.argv[1])))
