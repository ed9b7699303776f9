"""The demo's kiosk site: pad reader, edge agent and kiosk controller, driven by patrons.

A simulated pad reader, the edge agent and the kiosk controller, driven headlessly by a
stream of patrons (checkouts, returns, refusals).

The kiosk controller is the real one (what the Kivy window drives); here a script presents
cards, types PINs, chooses borrow or return, puts tags on the simulated pad and finishes the
visit. Patrons come from the central simulator's default seed: John Smith and Emma Wilson
(with PINs), Hoàng Thị Em (none), and Trần Thị Bình, whose blocked card is refused. A
reference book among the borrowed ones is refused too. While the broker is down the kiosk
lends offline, and the agent's outbox holds the events until the link is back.

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

from edge_agent.service import AgentService
from kiosk.wiring import open_kiosk
from kiosk.workers import PostQueue
from simulators.reader import FeigSimulator, RFField, SimTag

from .common import ISIL, agent_settings, backlog, drain, every, report

__all__ = ["PATRONS", "KioskDriver", "run_kiosk_site"]

log = logging.getLogger(__name__)

TOKEN = "demo-kiosk-token"  # noqa: S105 - a loopback-only demo API's token, not a secret
WAIT = 10.0
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
    """Plays patrons at a kiosk controller: one visit at a time, like a person at the screen."""

    def __init__(
        self,
        controller: Any,
        post: Any,
        worker: Any,
        pad_field: RFField,
        tags: Callable[[str], SimTag],
    ) -> None:
        self.controller, self.post, self.worker = controller, post, worker
        self.field, self.tags = pad_field, tags
        self.tally = Tally()

    def _until(self, predicate: Callable[[], bool]) -> bool:
        return bool(self.post.run_until(predicate, WAIT))

    def _settled(self) -> bool:
        view = self.controller.view
        return (
            not self.controller.scanner.in_flight
            and not view.busy
            and all(line.status not in PENDING_LINES for line in view.lines)
        )

    def _leave(self) -> None:
        """End the visit, whichever screen it is on, and return to the attract screen."""
        ctl = self.controller
        if ctl.view.screen in ("checkout", "checkin"):
            ctl.done()
        if ctl.view.screen == "receipt":
            ctl.receipt("none")
        if ctl.view.screen == "goodbye":
            # The patron walks away: the goodbye screen's time passes.
            ctl.tick(ctl.clock.monotonic() + ctl.config.goodbye_s + 0.1)
        if ctl.view.screen != "attract":
            ctl.cancel()
        self._until(lambda: ctl.view.screen == "attract")

    def _identify(self, patron: Patron) -> bool:
        ctl = self.controller
        ctl.card_presented(patron.card)
        self._until(lambda: ctl.view.screen != "identifying" and not ctl.view.busy)
        if ctl.view.screen == "pin" and patron.pin is not None:
            ctl.pin_entered(patron.pin)
            self._until(lambda: ctl.view.screen not in ("pin", "identifying"))
        return bool(ctl.view.screen == "choose")

    def visit(self, patron: Patron, action: str, items: list[str]) -> dict[str, str]:
        """One patron's visit: identify, borrow or return ``items``, finish; line statuses."""
        self.tally.visits += 1
        statuses: dict[str, str] = {}
        try:
            if not self._identify(patron):
                self.tally.refused_cards += 1
                return statuses
            if not self.controller.choose(action):
                # A blocked patron may come in (to return things) but not borrow.
                self.tally.refused_actions += 1
                return statuses
            tags = [self.tags(item) for item in items]
            self.field.place(*tags)
            self.controller.scan_now()
            self.worker.wait_idle(WAIT)
            self._until(self._settled)
            for line in self.controller.view.lines:
                statuses[line.key.rsplit("/", 1)[1]] = str(line.status)
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


def run_kiosk_site(workdir: Path, broker_url: str, stop: threading.Event, gap_s: float) -> int:
    """Run the kiosk site until ``stop`` is set; return the exit status."""
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
    runtime: Any = None
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
        post = PostQueue()
        runtime = open_kiosk(kiosk_settings, post, data_dir=workdir)
        made: dict[str, SimTag] = {}

        def tag(item: str) -> SimTag:
            # One tag per item for the whole run: its AFI follows the item out and back.
            if item not in made:
                made[item] = SimTag.from_item(item, isil=ISIL, secured=True)
            return made[item]

        driver = KioskDriver(runtime.controller, post, runtime.worker, pad_field, tag)

        def progress(final: bool = False) -> None:
            t = driver.tally
            report(
                "kiosk",
                backlog=drain(agent, DRAIN_S) if final else backlog(agent),
                visits=t.visits,
                lent=t.lent,
                returned=t.returned,
                refused=t.refused,
                refused_cards=t.refused_cards,
                refused_actions=t.refused_actions,
                **({"final": True} if final else {}),
            )

        every(stop, 1.0, progress)
        print("ready: kiosk site", flush=True)
        play(driver, _shelf_items(agent), stop, gap_s)
        progress(final=True)
        return 0
    finally:
        if runtime is not None:
            runtime.close()
        sim.stop()
        agent.stop()
