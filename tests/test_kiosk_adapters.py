"""The adapters from the kiosk's ports to the real implementations, and the kiosk's settings.

ClientAgent is checked over AgentClient with httpx's mock transport for the agent's error
answers (507, 409, 401, no connection) — the full chain test runs it against the real agent;
EscposPrinter prints to the simulated ESC/POS printer over TCP.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from edge_agent.client import AgentClient
from edge_agent.config import LibedgeSettings, load_config
from edge_agent.contract import Checkin, CheckoutAuth, RefusalReason
from edge_agent.link.answers import Offline
from hardware.printer import PrinterUnavailable, Receipt, ReceiptItem
from kiosk.adapters import ClientAgent, EscposPrinter, SystemClock
from kiosk.config import KioskConfig
from kiosk.ports import AgentRefused, AgentUnavailable, DuplicateEvent
from simulators.printer import PrinterSimulator

Handler = Callable[[httpx.Request], httpx.Response]


def agent_over(handler: Handler) -> ClientAgent:
    client = AgentClient("http://agent.test", token="t", transport=httpx.MockTransport(handler))
    return ClientAgent(client)


def error(status: int, name: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": name, "message": message, "fields": []})


@pytest.fixture
def agents() -> Iterator[list[ClientAgent]]:
    """Agents made by a test, closed after it."""
    made: list[ClientAgent] = []
    yield made
    for agent in made:
        agent.client.close()


def test_append_sends_the_event_id_and_time_and_returns_the_seq(
    agents: list[ClientAgent],
) -> None:
    """The event id the kiosk chose goes to the agent (safe retries); seq and id come back."""
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(
            201, json={"device_id": "kiosk-1", "seq": 7, "event_id": body["event_id"]}
        )

    agent = agent_over(handler)
    agents.append(agent)
    event_id = uuid.uuid4()
    when = dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC)
    committed = agent.append(Checkin(item_id="3100001"), event_id=event_id, time=when)
    assert (committed.seq, committed.event_id) == (7, event_id)
    assert sent[0]["event_id"] == str(event_id)
    assert sent[0]["time"] == when.isoformat()


@pytest.mark.parametrize(
    ("status", "name", "kind"),
    [
        (507, "outbox_full", AgentRefused),
        (503, "storage_error", AgentRefused),
        (409, "event_id_conflict", DuplicateEvent),
        (401, "unauthorized", AgentUnavailable),
    ],
)
def test_append_errors_become_the_ports_kinds(
    agents: list[ClientAgent], status: int, name: str, kind: type[Exception]
) -> None:
    """The agent's error answers map onto refused, duplicate and unavailable."""
    agent = agent_over(lambda request: error(status, name, f"{name} happened"))
    agents.append(agent)
    with pytest.raises(kind, match=f"{name} happened"):
        agent.append(Checkin(item_id="1"), event_id=uuid.uuid4(), time=SystemClock().now())


def test_an_unreachable_agent_is_not_offline(agents: list[ClientAgent]) -> None:
    """No connection: ask raises AgentUnavailable (nothing could be recorded), not Offline."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    agent = agent_over(handler)
    agents.append(agent)
    with pytest.raises(AgentUnavailable):
        agent.ask(CheckoutAuth(patron_id="P1", item_id="I1"))
    with pytest.raises(AgentUnavailable):
        agent.link_up()
    with pytest.raises(AgentUnavailable):
        agent.append(Checkin(item_id="1"), event_id=uuid.uuid4(), time=SystemClock().now())


def test_offline_answers_and_cache_lookups(agents: list[ClientAgent]) -> None:
    """Central's absence comes back as Offline; caches answer per patron and per item."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/ask":
            return httpx.Response(
                200, json={"outcome": "offline", "kind": "timeout", "reason": "no answer"}
            )
        if path == "/caches/patron_blocks/P2":
            return httpx.Response(
                200, json={"patron_id": "P2", "blocked": True, "reason": "patron_blocked"}
            )
        if path == "/caches/patron_blocks/P3":
            return httpx.Response(
                200, json={"patron_id": "P3", "blocked": True, "reason": "a future reason"}
            )
        if path.startswith("/caches/patron_blocks/"):
            return httpx.Response(200, json={"patron_id": "P1", "blocked": False})
        if path == "/caches/item_states/I1":
            return httpx.Response(200, json={"item_id": "I1", "state": "on_hold"})
        if path == "/caches/loan_policy":
            return error(404, "not_cached", "central has not sent a loan policy yet")
        return error(404, "not_cached", "nothing")

    agent = agent_over(handler)
    agents.append(agent)
    answer = agent.ask(CheckoutAuth(patron_id="P1", item_id="I1"))
    assert isinstance(answer, Offline)
    assert answer.kind == "timeout"
    assert agent.patron_block("P1") is None
    assert agent.patron_block("P2") is RefusalReason.PATRON_BLOCKED
    assert agent.patron_block("P3") is RefusalReason.PATRON_BLOCKED  # unknown reason
    state = agent.item_state("I1")
    assert state is not None
    assert state.state == "on_hold"
    assert agent.item_state("I9") is None
    assert agent.loan_policy() is None
    assert agent.commands() == []  # this client offers no command list (yet)


# ---------------------------------------------------------------- printer


def test_escpos_printer_prints_to_the_simulated_printer(tmp_path: Path) -> None:
    """A kiosk receipt goes through python-escpos to the simulated printer and is cut."""
    with PrinterSimulator(tmp_path / "out", width=576) as sim:
        sim.start_tcp()
        url = sim.url
        printer = EscposPrinter(url)
        printer.print_receipt(
            Receipt(
                "Thư viện",
                lines=("Thẻ: ***0001",),
                items=(ReceiptItem("Truyện Kiều", dt.date(2025, 3, 24)),),
            )
        )
        (page,) = sim.wait_for_pages(1, 20)
        assert page.cut
        assert "ready" in printer.describe()
    with pytest.raises(PrinterUnavailable):  # the simulator is gone now
        EscposPrinter(url).print_receipt(Receipt("Thư viện"))


# ---------------------------------------------------------------- settings


def test_kiosk_settings_from_the_site_configuration(tmp_path: Path) -> None:
    """The [kiosk], [site], [security] and [devices] sections become the controller's config."""
    config_file = tmp_path / "libedge.toml"
    config_file.write_text(
        """
[site]
library_name = "Thư viện huyện"
isil = "VN-HaNL"
timezone = "Asia/Ho_Chi_Minh"
[security]
secured_afi = 0x07
unsecured_afi = 0x21
use_eas = true
[devices]
card_number_pattern = "^[0-9]{6}$"
card_check_digit = "luhn"
[kiosk]
languages = ["en", "vi"]
default_language = "vi"
inactivity_timeout_s = 90
pin_required = true
staff_pin = "8642"
receipt_default = "print"
[kiosk.offline]
max_items_per_patron = 2
""",
        encoding="utf-8",
    )
    config = KioskConfig.from_settings(load_config(config_file))
    assert config.library_name == "Thư viện huyện"
    assert config.home_isil == "VN-HaNL"
    assert config.languages == ("en", "vi")
    assert config.default_language == "vi"
    assert config.inactivity_timeout_s == 90
    assert config.pin_required
    assert config.staff_pin.get_secret_value() == "8642"
    assert config.receipt_default == "print"
    assert config.offline.max_items_per_patron == 2
    assert config.security.unsecured_afi == 0x21
    assert config.security.use_eas
    assert config.card_rule.check_digit == "luhn"
    assert KioskConfig.from_settings(LibedgeSettings()).languages == ("vi", "en")
    with pytest.raises(ValueError, match="default language"):
        KioskConfig(languages=("en",), default_language="vi")


# ---------------------------------------------------------------- wiring


def test_open_kiosk_from_the_site_configuration(tmp_path: Path) -> None:
    """open_kiosk builds a working controller from the configuration, and closes it all."""
    from edge_agent.config import AgentSettings, BrokerSettings, DevicesSettings
    from edge_agent.service import AgentService
    from kiosk.wiring import JOURNAL_NAME, open_kiosk
    from kiosk.workers import PostQueue
    from tests.test_kiosk_support import sim_pad, sim_tag

    with (
        sim_pad() as rig,
        PrinterSimulator(tmp_path / "paper", width=576) as printer_sim,
    ):
        printer_sim.start_tcp()
        settings = LibedgeSettings(
            devices=DevicesSettings(item_reader=rig.sim.url, printer=printer_sim.url),
            agent=AgentSettings(
                database=tmp_path / "var" / "agent.sqlite",
                api_socket=tmp_path / "run" / "agent.sock",
                api_token="wiring-token",  # type: ignore[arg-type]
                broker=BrokerSettings(url="mqtt://127.0.0.1:1"),  # no broker: central offline
            ),
        )
        with AgentService(settings):
            post = PostQueue()
            runtime = open_kiosk(settings, post)
            try:
                kiosk = runtime.controller
                assert runtime.worker.wait_idle(10)
                post.run_pending()
                assert (tmp_path / "var" / JOURNAL_NAME).exists()
                assert [b.kind for b in kiosk.view.banners] == ["offline"]
                kiosk.choose("return")
                rig.field.place(sim_tag("3100001", secured=False))
                kiosk.scan_now()
                assert post.run_until(
                    lambda: (
                        not kiosk.view.busy
                        and [line.status for line in kiosk.view.lines] == ["done"]
                    ),
                    20,
                )
                assert rig.afi(rig.field.tags()[0]) == 0x07
                assert kiosk.done()
                assert kiosk.receipt("print")
                assert printer_sim.wait_for_pages(1, 20)  # printed by the worker
                assert runtime.worker.wait_idle(10)
                post.run_pending()
                assert kiosk.view.notice is None
            finally:
                runtime.close()
