"""The demo's kiosk site: pad reader, edge agent and the Kivy kiosk app, driven by patrons.

A simulated pad reader, the edge agent and the real kiosk app (:class:`kiosk.app.main.KioskApp`
around the real :class:`~kiosk.controller.KioskController`), served by a stream of patrons
(checkouts, returns, refusals). Kivy runs on the process's main thread, offscreen when there
is no display, with ``screenshots/kiosk-latest.png`` saved every few seconds and the first
view of each screen kept beside it; ``--window off`` drives the controller alone, no Kivy.

A script plays the patrons on another thread: it presents cards, types PINs, chooses borrow
or return, puts tags on the simulated pad and finishes the visit, each step run on the UI
thread through :mod:`.kiosk_window`. Patrons come from the central simulator's default seed:
John Smith and Emma Wilson (with PINs), Hoàng Thị Em (none), and Trần Thị Bình, whose blocked
card is refused. A reference book among the borrowed ones is refused too. While the broker
is down the kiosk lends offline, and the agent's outbox holds the events until the link is
back.

The kiosk is built the way the real kiosk app builds it (:func:`kiosk.wiring.open_kiosk`).
That brings the real FEIG driver along, which simulators may not import for their own use:
the import contract names this module as its one exception, because here the real driver
talks to the simulated reader, exactly as it must.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.config import LibedgeSettings
from edge_agent.service import AgentService
from kiosk.app import SCREEN_FILE_NAMES
from kiosk.wiring import KioskRuntime, open_kiosk
from kiosk.workers import Post, PostQueue
from simulators.reader import FeigSimulator, RFField, SimTag

from .common import ISIL, agent_settings, backlog, drain, every, report
from .kiosk_window import (
    InlineUi,
    LatestScreenshot,
    Ui,
    UiBridge,
    WindowClosedError,
    prepare_kivy,
    retake_first_screenshot,
)

__all__ = ["PATRONS", "KioskDriver", "run_kiosk_site"]

log = logging.getLogger(__name__)

TOKEN = "demo-kiosk-token"  # noqa: S105 - a loopback-only demo API's token, not a secret
WAIT = 10.0
#: Longest wait for the window to open the kiosk (Kivy's start, the devices, recovery).
OPEN_S = 60.0
#: With the window: how long the patron looks at a screen before acting on it.
PACE_S = 0.3
#: Line statuses that are not final yet (kiosk.flows.LineStatus values).
PENDING_LINES = ("checking", "waiting")
#: Longest wait, when stopping, for central to confirm what the agent still holds.
DRAIN_S = 15.0
#: Not for loan in the default seed: always refused.
REFERENCE_ITEM = "30000005"


@dataclass(frozen=True)
class Patron:
    """A patron of the default seed, as the script uses them."""

    card: str
    pin: str | None
    blocked: bool = False


#: Demo data of the simulated library (its seed documents these PINs); never real ones.
PATRONS = (
    Patron("P0007", "4321"),
    Patron("P0004", "0000"),
    Patron("P0006", None),
    Patron("P0002", "2468", blocked=True),
)


@dataclass
class Tally:
    """What the kiosk did, by outcome."""

    visits: int = 0
    lent: int = 0
    returned: int = 0
    refused: int = 0
    refused_cards: int = 0
    refused_actions: int = 0
    loans: dict[str, list[str]] = field(default_factory=dict)


class KioskDriver:
    """Plays patrons at a kiosk controller: one visit at a time, like a person at the screen.

    Every look at or step on the controller goes through ``ui``: on the window's UI thread
    when the Kivy app runs (the controller's state is that thread's alone), inline without.
    Only the simulated pad (the patron's hands) and the worker's idleness are touched here.
    """

    def __init__(
        self,
        ui: Ui,
        controller: Any,
        worker: Any,
        pad_field: RFField,
        tags: Callable[[str], SimTag],
        *,
        tally: Tally | None = None,
        pace: Callable[[], object] = lambda: None,
    ) -> None:
        self.ui, self.controller, self.worker = ui, controller, worker
        self.field, self.tags = pad_field, tags
        self.tally = tally or Tally()
        #: The patron reading a screen before acting on it (nothing without a window).
        self.pace = pace

    def _until(self, predicate: Callable[[], bool]) -> bool:
        return self.ui.until(predicate, WAIT)

    def _settled(self) -> bool:
        view = self.controller.view
        return (
            not self.controller.scanner.in_flight
            and not view.busy
            and all(line.status not in PENDING_LINES for line in view.lines)
        )

    def _screen(self) -> str:
        return str(self.ui.call(lambda: self.controller.view.screen))

    def _goodbye_passes(self) -> None:
        # The patron walks away: the goodbye screen's time passes (UI thread).
        ctl = self.controller
        ctl.tick(ctl.clock.monotonic() + ctl.config.goodbye_s + 0.1)

    def _leave(self) -> None:
        """End the visit, whichever screen it is on, and return to the attract screen."""
        ctl = self.controller
        if self._screen() in ("checkout", "checkin"):
            self.ui.call(ctl.done)
            self.pace()
        if self._screen() == "receipt":
            self.ui.call(lambda: ctl.receipt("none"))
            self.pace()
        if self._screen() == "goodbye":
            self.ui.call(self._goodbye_passes)
        if self._screen() != "attract":
            self.ui.call(ctl.cancel)
        self._until(lambda: ctl.view.screen == "attract")

    def _identify(self, patron: Patron) -> bool:
        ctl = self.controller
        self.pace()
        self.ui.call(lambda: ctl.card_presented(patron.card))
        self._until(lambda: ctl.view.screen != "identifying" and not ctl.view.busy)
        if self._screen() == "pin" and patron.pin is not None:
            pin = patron.pin
            self.pace()
            self.ui.call(lambda: ctl.pin_entered(pin))
            self._until(lambda: ctl.view.screen not in ("pin", "identifying"))
        return self._screen() == "choose"

    def visit(self, patron: Patron, action: str, items: list[str]) -> dict[str, str]:
        """One patron's visit: identify, borrow or return ``items``, finish; line statuses."""
        self.tally.visits += 1
        statuses: dict[str, str] = {}
        ctl = self.controller
        try:
            if not self._identify(patron):
                self.tally.refused_cards += 1
                return statuses
            self.pace()
            if not self.ui.call(lambda: bool(ctl.choose(action))):
                # A blocked patron may come in (to return things) but not borrow.
                self.tally.refused_actions += 1
                return statuses
            tags = [self.tags(item) for item in items]
            self.field.place(*tags)
            self.ui.call(ctl.scan_now)
            self.worker.wait_idle(WAIT)
            self._until(self._settled)
            lines = self.ui.call(lambda: [(line.key, str(line.status)) for line in ctl.view.lines])
            for key, status in lines:
                statuses[key.rsplit("/", 1)[1]] = status
            self.pace()
        finally:
            # The patron takes everything off the pad, whatever happened.
            self.field.clear()
            self._leave()
        shown = ", ".join(f"{i} {s}" for i, s in statuses.items()) or "refused"
        print(f"visit {self.tally.visits}: {patron.card} {action}: {shown}", flush=True)
        loans = self.tally.loans.setdefault(patron.card, [])
        for item, status in statuses.items():
            if status != "done":
                self.tally.refused += 1
            elif action == "borrow":
                self.tally.lent += 1
                loans.append(item)
            else:
                self.tally.returned += 1
                if item in loans:
                    loans.remove(item)
        return statuses


def _shelf_items(agent: AgentService) -> list[str]:
    caches = agent.caches
    assert caches is not None  # the agent is running
    return [
        i.item_id
        for i in caches.item_states(100_000)
        if i.state == "on_shelf" and not i.item_id.startswith("3000")
    ]


def play(driver: KioskDriver, shelf: list[str], stop: threading.Event, gap_s: float) -> None:
    """Patrons in turn until ``stop``: who holds loans returns them, the others borrow 1-2."""
    rng = random.Random(2024)
    n = 0
    while not stop.is_set():
        patron = PATRONS[n % len(PATRONS)]
        n += 1
        loans = driver.tally.loans.get(patron.card, [])
        if loans:
            driver.visit(patron, "return", list(loans))
        else:
            picks = [shelf.pop(rng.randrange(len(shelf))) for _ in range(rng.randint(1, 2))]
            if n % 3 == 0:
                picks.append(REFERENCE_ITEM)
            driver.visit(patron, "borrow", picks)
            lent = driver.tally.loans.get(patron.card, [])
            # What was not lent goes back to the shelf for someone else.
            shelf.extend(i for i in picks if i != REFERENCE_ITEM and i not in lent)
        stop.wait(gap_s)


def run_kiosk_site(
    workdir: Path,
    broker_url: str,
    stop: threading.Event,
    gap_s: float,
    *,
    window: str = "off",
    screenshot_every_s: float = 5.0,
    log_level: str = "WARNING",
) -> int:
    """Run the kiosk site until ``stop`` is set; return the exit status.

    ``window``: ``off`` drives the controller on this thread, without Kivy; ``auto`` or ``on``
    show the Kivy app on this thread (which must be the main thread), offscreen with a
    screenshot every ``screenshot_every_s`` seconds when there is no display.
    """
    pad_field = RFField()
    sim = FeigSimulator(pad_field, air_time=False)
    pad_path = sim.start_pty()
    settings = agent_settings(
        workdir,
        broker_url,
        "kiosk-1",
        "kiosk",
        TOKEN,
        devices={"item_reader": pad_path, "printer": None},
    )
    agent = AgentService(settings)
    tally = Tally()
    try:
        agent.start()
        caches = agent.caches
        assert caches is not None  # started above
        while caches.versions().get("item_states") is None:
            if stop.wait(0.2):
                return 0
        # The agent's API port was chosen by the system: the kiosk is told the real one.
        host, port = agent.api_url.removeprefix("http://").rsplit(":", 1)
        kiosk_settings = settings.model_copy(
            update={
                "agent": settings.agent.model_copy(update={"api_host": host, "api_port": int(port)})
            }
        )
        made: dict[str, SimTag] = {}

        def tag(item: str) -> SimTag:
            # One tag per item for the whole run: its AFI follows the item out and back.
            if item not in made:
                made[item] = SimTag.from_item(item, isil=ISIL, secured=True)
            return made[item]

        def progress(final: bool = False) -> None:
            report(
                "kiosk",
                backlog=drain(agent, DRAIN_S) if final else backlog(agent),
                visits=tally.visits,
                lent=tally.lent,
                returned=tally.returned,
                refused=tally.refused,
                refused_cards=tally.refused_cards,
                refused_actions=tally.refused_actions,
                **({"final": True} if final else {}),
            )

        site = _Site(kiosk_settings, workdir, pad_field, tag, tally, _shelf_items(agent), stop)
        every(stop, 1.0, progress)
        if window == "off":
            site.run_headless(gap_s)
            status = 0
        else:
            status = site.run_window(gap_s, screenshot_every_s, log_level)
        progress(final=True)
        return status
    finally:
        sim.stop()
        agent.stop()


@dataclass
class _Site:
    """The kiosk and its patrons, once the agent is up: with or without the Kivy window."""

    settings: LibedgeSettings
    workdir: Path
    pad_field: RFField
    tag: Callable[[str], SimTag]
    tally: Tally
    shelf: list[str]
    stop: threading.Event

    def run_headless(self, gap_s: float) -> None:
        """The controller on this thread, results through a queue: no Kivy."""
        post = PostQueue()
        runtime = open_kiosk(self.settings, post, data_dir=self.workdir)
        try:
            driver = KioskDriver(
                InlineUi(post),
                runtime.controller,
                runtime.worker,
                self.pad_field,
                self.tag,
                tally=self.tally,
            )
            print("ready: kiosk site", flush=True)
            play(driver, self.shelf, self.stop, gap_s)
        finally:
            runtime.close()

    def run_window(self, gap_s: float, screenshot_every_s: float, log_level: str) -> int:
        """The Kivy app on this thread, the patrons on another; 0 when both ended cleanly."""
        offscreen = prepare_kivy(self.workdir, log_level)
        from kiosk.app.kivy_config import configure_kivy

        configure_kivy(windowed=True)
        from kiosk.app.main import KioskApp

        folder = self.workdir / "screenshots"
        ui: UiBridge | None = None

        def opener(post: Post) -> KioskRuntime:
            # Kivy's thread, inside the app's build(): the controller is this thread's.
            assert ui is not None  # made below, before the app runs
            runtime = open_kiosk(self.settings, ui.wrap(post), data_dir=self.workdir)
            runtime.controller.subscribe(ui.changed)
            ui.opened(runtime)
            return runtime

        # KioskApp also keeps the first screenshot of each kind of screen there.
        app = KioskApp(opener, screenshots=folder if offscreen else None)
        ui = UiBridge(app.post, WAIT)
        failed: list[BaseException] = []
        patrons = threading.Thread(
            target=self._patrons,
            args=(app, ui, folder if offscreen else None),
            kwargs={"gap_s": gap_s, "every_s": screenshot_every_s, "failed": failed},
            name="patrons",
        )
        patrons.start()
        try:
            app.run()
        finally:
            # Closed by the script's request, by a person, or by a failure: the script ends.
            ui.close()
            self.stop.set()
            patrons.join(WAIT * 3)
        if failed or patrons.is_alive():
            return 1
        return 0

    def _patrons(
        self,
        app: Any,
        ui: UiBridge,
        folder: Path | None,
        *,
        gap_s: float,
        every_s: float,
        failed: list[BaseException],
    ) -> None:
        """The patron script's thread: wait for the window, play, then close the window."""
        try:
            runtime: Any = ui.wait_opened(OPEN_S)
            driver = KioskDriver(
                ui,
                runtime.controller,
                runtime.worker,
                self.pad_field,
                self.tag,
                tally=self.tally,
                # Each screen stays up a moment, as for a person: watchable on a display, and
                # KioskApp's first shot of a screen (0.1 s after it shows) is of that screen.
                pace=lambda: self.stop.wait(PACE_S),
            )
            if folder is not None:
                view = ui.call(lambda: runtime.controller.view)
                first = SCREEN_FILE_NAMES.format(screen=view.screen, language=view.language)
                retake_first_screenshot(app, ui, folder / first)
            else:
                ui.call(lambda: None)  # one round trip through the UI thread: the window is up
            if folder is not None:
                if every_s > 0:
                    LatestScreenshot(app, ui, folder, every_s).start(self.stop)
                print(f"kiosk window offscreen: screenshots in {folder}", flush=True)
            print("ready: kiosk site", flush=True)
            play(driver, self.shelf, self.stop, gap_s)
        except WindowClosedError:
            # A person closed the window: the site stops as if told to.
            print("kiosk window closed: stopping the kiosk site", flush=True)
        except BaseException as exc:
            failed.append(exc)
            log.exception("the patron script failed")
        finally:
            self.stop.set()
            # App.stop on the UI thread: on_stop closes the kiosk (worker, pad, journal).
            ui.post(app.stop)
