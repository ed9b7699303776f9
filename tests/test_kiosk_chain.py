"""The full chain: kiosk controller -> edge agent (local API, outbox, MQTT) -> central simulator.

A private Mosquitto, the central library system simulator with its default seed, the real
edge agent service with its HTTP API, the kiosk's ClientAgent adapter over AgentClient, and
the simulated FEIG reader on a pty under the real driver. A patron borrows, is refused,
returns; then the central system goes away and the kiosk lends offline from the caches
central pushed earlier; when central is back the offline events reach it, flagged.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from edge_agent.client import AgentClient
from edge_agent.config import AgentSettings, BrokerSettings, LibedgeSettings, SiteSettings
from edge_agent.contract import Checkout
from edge_agent.service import AgentService
from kiosk import messages as msg
from kiosk.adapters import ClientAgent, SystemClock
from kiosk.controller import KioskController
from kiosk.flows import FINAL, LineStatus
from kiosk.journal import IntentJournal
from kiosk.machine import State
from kiosk.workers import PostQueue, ThreadWorker
from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker
from tests.test_kiosk_support import WAIT, SimPad, config, sim_pad, sim_tag

TOKEN = "kiosk-chain-token"
pytestmark = pytest.mark.broker


@dataclass
class Chain:
    """Everything from the pad to the central database."""

    central: CentralSimulator
    service: AgentService
    client: AgentClient
    agent: ClientAgent
    controller: KioskController
    post: PostQueue
    worker: ThreadWorker
    journal: IntentJournal
    rig: SimPad
    device_id: str

    def run_until(self, predicate: object, timeout: float = WAIT) -> bool:
        assert callable(predicate)
        return self.post.run_until(predicate, timeout)

    def scan(self) -> None:
        self.controller.scan_now()
        assert self.worker.wait_idle(WAIT)
        view = self.controller.view
        assert self.run_until(
            lambda: (
                not self.controller.scanner.in_flight
                and not self.controller.view.busy
                and all(line.status in FINAL for line in self.controller.view.lines)
            )
        ), view

    def identify(self, card: str, pin: str | None = None) -> None:
        assert self.controller.card_presented(card)
        if pin is not None:
            assert self.run_until(lambda: self.controller.view.screen == State.PIN)
            assert self.controller.pin_entered(pin)
        assert self.run_until(lambda: self.controller.view.screen == State.CHOOSE)

    def finish(self) -> None:
        assert self.controller.done()
        if self.controller.view.screen == State.RECEIPT:
            assert self.controller.receipt("none")
        self.controller.tick()  # goodbye lasts 0 s here
        assert self.controller.view.screen == State.ATTRACT

    def lines(self) -> dict[str, tuple[LineStatus, str]]:
        return {
            line.key.rsplit("/", 1)[1]: (line.status, line.message)
            for line in self.controller.view.lines
        }


@pytest.fixture
def chain(broker: MosquittoBroker, tmp_path: Path) -> Iterator[Chain]:
    """Central, agent and kiosk on the session broker, with a device id of their own."""
    device_id = f"kiosk-{uuid.uuid4().hex[:6]}"
    settings = LibedgeSettings(
        site=SiteSettings(library_id="demo-library", device_id=device_id),
        agent=AgentSettings(
            database=tmp_path / "agent.sqlite",
            api_port=0,
            api_token=TOKEN,  # type: ignore[arg-type]
            request_timeout_s=1.0,
            # Events sent while central was away are re-sent soon after it is back.
            resend_after_s=1.0,
            broker=BrokerSettings(url=broker.url, reconnect_min_s=0.1, reconnect_max_s=1),
        ),
    )
    central = CentralSimulator(broker.url, tmp_path / "central.sqlite", instance="c1")
    central.start()
    service = AgentService(settings)
    service.start()
    client = AgentClient(service.api_url, token=TOKEN)
    worker, post = ThreadWorker(), PostQueue()
    journal = IntentJournal(tmp_path / "kiosk" / "intents.sqlite")
    try:
        assert service.link is not None
        link = service.link
        assert link.wait_for(lambda: link.status().connected, 10)
        with sim_pad() as rig:
            agent = ClientAgent(client)
            controller = KioskController(
                replace(config(), goodbye_s=0.0),
                pad=rig.pad,
                agent=agent,
                clock=SystemClock(),
                journal=journal,
                worker=worker,
                post=post,
            )
            controller.start()
            yield Chain(
                central, service, client, agent, controller, post, worker, journal, rig, device_id
            )
    finally:
        worker.close()
        journal.close()
        client.close()
        service.stop()
        central.stop()


def test_online_visit_through_the_real_agent_and_central(chain: Chain) -> None:
    """Borrow (one lent, two refused by central), then return: central's model follows."""
    central, rig = chain.central, chain.rig
    lent, held, reference = (sim_tag(i) for i in ("30000001", "30000002", "30000005"))
    rig.field.place(lent, held, reference)
    chain.identify("P0007", pin="4321")  # central asks for his PIN
    assert chain.controller.view.title == "Hello, John Smith!"
    assert chain.controller.choose("borrow")
    chain.scan()
    lines = chain.lines()
    due = central.today() + dt.timedelta(days=14)
    catalogues, language = chain.controller.catalogues, chain.controller.view.language
    assert lines["30000001"] == (LineStatus.DONE, catalogues.render(msg.borrowed(due), language))
    assert lines["30000002"][0] is LineStatus.REFUSED
    assert lines["30000005"][0] is LineStatus.REFUSED
    assert rig.afi(lent) == 0xC2
    assert rig.afi(held) == 0x07
    assert rig.afi(reference) == 0x07
    stored = central.wait_for_events(3, device_id=chain.device_id)
    assert sorted(e.kind for e in stored) == ["checkout", "refusal", "refusal"]
    item = central.item("30000001")
    assert item is not None
    assert (item.state, item.patron_id, item.due_date) == ("on_loan", "P0007", due)
    chain.finish()

    assert chain.controller.choose("return")
    rig.field.remove(held.uid, reference.uid)
    chain.scan()
    assert chain.lines()["30000001"][0] is LineStatus.DONE
    assert rig.afi(lent) == 0x07
    central.wait_for_events(4, device_id=chain.device_id)
    returned = central.item("30000001")
    assert returned is not None
    assert returned.state == "on_shelf"
    assert central.gaps(chain.device_id) == []


def test_offline_visit_and_reconciliation(chain: Chain, tmp_path: Path) -> None:
    """Central away: cached policy and item states decide, events flagged offline reach it later."""
    central = chain.central
    central.push_caches()
    central.wait_for(
        lambda: (
            chain.agent.loan_policy() is not None and chain.agent.item_state("30000007") is not None
        ),
        timeout=10,
        what="caches pushed to the agent",
    )
    central.stop()
    ok, flagged = sim_tag("30000010"), sim_tag("30000007")  # Chí Phèo: not for offline issue
    chain.rig.field.place(ok, flagged)
    chain.identify("P0001")  # offline the PIN cannot be checked: the card alone admits
    assert chain.controller.choose("borrow")
    chain.scan()
    lines = chain.lines()
    assert lines["30000010"][0] is LineStatus.DONE
    assert lines["30000007"][0] is LineStatus.REFUSED
    assert "offline" in [b.kind for b in chain.controller.view.banners]
    chain.finish()

    with CentralSimulator(
        chain.service.settings.agent.broker.url, tmp_path / "central.sqlite", instance="c2"
    ) as again:
        stored = again.wait_for_events(2, device_id=chain.device_id, timeout=20)
        checkouts = [e.envelope.payload for e in stored if e.kind == "checkout"]
        assert len(checkouts) == 1
        checkout = checkouts[0]
        assert isinstance(checkout, Checkout)
        assert checkout.offline
        assert checkout.item_id == "30000010"
        item = again.item("30000010")
        assert item is not None
        assert item.state == "on_loan"
