"""A broker that enforces identities: per-device passwords, the committed ACL, TLS, client certs."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.config import BrokerSettings
from edge_agent.link import AgentLink, LinkConfigError, LinkOptions
from edge_agent.link.broker import BrokerAddress
from edge_agent.outbox import EventState, MemoryOutbox, SqliteOutbox
from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker, TlsFiles

ACL = Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "acl.conf"
LIB = "demo-library"
PASSWORDS = {"kiosk-a": "pa-secret", "kiosk-b": "pb-secret", "central": "pc-secret"}
Factory = Callable[..., MosquittoBroker]


def link_for(
    url: str,
    outbox: MemoryOutbox | SqliteOutbox,
    device_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    cert: tuple[Path, Path] | None = None,
    **options: float,
) -> AgentLink:
    broker = BrokerSettings(
        url=url,
        username=username,
        password=password,  # type: ignore[arg-type]
        ca_file=ca_file,
        cert_file=cert[0] if cert else None,
        key_file=cert[1] if cert else None,
        reconnect_min_s=0.2,
        reconnect_max_s=1.6,
    )
    settings = {"window": 8, "resend_after_s": 5.0, **options}
    return AgentLink(LinkOptions(LIB, device_id, "kiosk", **settings), broker, outbox)  # type: ignore[arg-type]


def events(outbox: MemoryOutbox | SqliteOutbox, device_id: str, *kinds: str) -> None:
    for kind in kinds:
        payload = (
            {"type": "checkin", "item_id": "31000001"}
            if kind == "checkin"
            else {
                "type": "checkout",
                "patron_id": "P0007",
                "item_id": "31000002",
                "due_date": "2030-01-01",
            }
        )
        outbox.append(device_id, kind, json.dumps(payload))


@pytest.mark.broker
def test_per_device_credentials_and_the_acl_let_each_device_deliver_only_its_own(
    broker_factory: Factory, tmp_path: Path
) -> None:
    """kiosk-a delivers with its password; with kiosk-b's identity it is refused and says so."""
    secured = broker_factory(passwords=PASSWORDS, acl_file=ACL, persistence=False)
    central = CentralSimulator(
        secured.url,
        tmp_path / "central.sqlite",
        instance="c1",
        username="central",
        password="pc-secret",
    )
    central.start()
    own = MemoryOutbox()
    events(own, "kiosk-a", "checkin", "checkin")
    honest = link_for(secured.url, own, "kiosk-a", password="pa-secret")  # username = device id
    forged_outbox = MemoryOutbox()
    events(forged_outbox, "kiosk-b", "checkin")
    # Device A's credentials, but claiming to be kiosk-b: every topic is B's subtree.
    forger = link_for(
        secured.url, forged_outbox, "kiosk-b", username="kiosk-a", password="pa-secret"
    )
    honest.start()
    forger.start()
    try:
        assert honest.wait_for(lambda: own.stats().counts[EventState.CONFIRMED] == 2, 20)
        assert forger.wait_for(lambda: forger.status().problem_kind == "refused", 20)
        problem = forger.status().problem or ""
        assert "status on libedge/v1/demo-library/kiosk-b/up/status" in problem
        assert "ACL" in problem
        # Its events are kept for when the configuration is fixed, not dead-lettered.
        assert forged_outbox.stats().counts[EventState.PENDING] == 1
        assert forged_outbox.stats().counts[EventState.DEAD] == 0
        assert [e.seq for e in central.events("kiosk-a")] == [1, 2]
        assert central.events("kiosk-b") == []
    finally:
        forger.stop()
        honest.stop()
        central.stop()


@pytest.mark.broker
def test_an_event_on_a_topic_the_acl_refuses_is_dead_lettered_and_the_rest_flow(
    broker_factory: Factory, tmp_path: Path
) -> None:
    """With an ACL that refuses checkouts, that event is dead-lettered with the reason."""
    acl = tmp_path / "acl.conf"
    acl.write_text(
        "pattern write libedge/v1/+/%u/up/status\n"
        "pattern write libedge/v1/+/%u/up/event/checkin\n"
        "pattern read libedge/v1/+/%u/down/#\n"
    )
    secured = broker_factory(passwords=PASSWORDS, acl_file=acl, persistence=False)
    outbox = MemoryOutbox()
    events(outbox, "kiosk-a", "checkin", "checkout", "checkin", "checkin")
    link = link_for(secured.url, outbox, "kiosk-a", password="pa-secret", window=1)
    link.start()
    try:
        assert link.wait_for(lambda: outbox.stats().counts[EventState.DEAD] == 1, 30)
        (dead,) = outbox.dead_letters()
        assert dead.seq == 2
        assert dead.kind == "checkout"
        reason = dead.dead_reason or ""
        assert "up/event/checkout" in reason
        assert "Not authorized" in reason or "closed the connection" in reason
        assert link.status().last_refusal == reason
        assert link.wait_for(lambda: outbox.stats().counts[EventState.SENT] == 3, 30)
    finally:
        link.stop()


@pytest.mark.broker
def test_a_wrong_password_is_reported_and_retried_with_growing_delays(
    broker_factory: Factory,
) -> None:
    """Refused credentials are named as such and retried with backoff, not in a tight loop."""
    secured = broker_factory(passwords=PASSWORDS, acl_file=ACL, persistence=False)
    link = link_for(secured.url, MemoryOutbox(), "kiosk-a", password="not-the-password")
    started = time.monotonic()
    link.start()
    try:
        assert link.wait_for(lambda: link.connection.attempts >= 4, 20)
        elapsed = time.monotonic() - started
        status = link.status()
        assert status.problem_kind == "auth"
        assert not status.connected
        assert "refused the credentials of user 'kiosk-a'" in (status.problem or "")
        # Delays before attempts 2..4 are at least 0.1 + 0.2 + 0.4 s (half of 0.2, 0.4, 0.8).
        assert elapsed >= 0.7
        assert link.connection.backoff.ceiling() > 0.2
    finally:
        link.stop()
    assert "not-the-password" not in secured.log_tail(200)


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def make_pki(directory: Path) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate for kiosk-a."""
    p = {name: directory / name for name in ("ca.key", "ca.crt", "server.key", "server.crt")}
    p |= {
        name: directory / name for name in ("kiosk-a.key", "kiosk-a.crt", "rogue.key", "rogue.crt")
    }
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", p["ca.key"], "-out", p["ca.crt"], "-days", "2",
            "-subj", "/CN=libedge test CA")  # fmt: skip
    openssl("req", "-x509", *ec, "-keyout", p["rogue.key"], "-out", p["rogue.crt"], "-days", "2",
            "-subj", "/CN=rogue CA")  # fmt: skip
    for name, cn, ext in (
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("kiosk-a", "kiosk-a", "extendedKeyUsage=clientAuth"),
    ):
        csr = directory / f"{name}.csr"
        extfile = directory / f"{name}.ext"
        extfile.write_text(ext + "\n")
        openssl("req", "-new", *ec, "-keyout", p[f"{name}.key"], "-out", csr, "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", csr, "-CA", p["ca.crt"], "-CAkey", p["ca.key"],
                "-CAcreateserial", "-out", p[f"{name}.crt"], "-days", "2", "-extfile", extfile)  # fmt: skip
    return p


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.broker
def test_tls_with_a_test_ca_delivers_and_an_untrusted_broker_is_reported(
    broker_factory: Factory, pki: dict[str, Path], tmp_path: Path
) -> None:
    """Over mqtts:// with the CA configured events reach central; with another CA: a TLS problem."""
    tls = TlsFiles(pki["ca.crt"], pki["server.crt"], pki["server.key"])
    secured = broker_factory(passwords=PASSWORDS, acl_file=ACL, tls=tls, persistence=False)
    assert secured.url.startswith("mqtts://")
    central = CentralSimulator(
        secured.url,
        tmp_path / "central.sqlite",
        instance="c1",
        username="central",
        password="pc-secret",
        ca_file=pki["ca.crt"],
    )
    central.start()
    outbox = MemoryOutbox()
    events(outbox, "kiosk-a", "checkin", "checkin", "checkin")
    link = link_for(secured.url, outbox, "kiosk-a", password="pa-secret", ca_file=pki["ca.crt"])
    untrusting = link_for(
        secured.url, MemoryOutbox(), "kiosk-b", password="pb-secret", ca_file=pki["rogue.crt"]
    )
    link.start()
    untrusting.start()
    try:
        assert link.wait_for(lambda: outbox.stats().counts[EventState.CONFIRMED] == 3, 20)
        assert "(TLS)" in link.status().broker
        assert untrusting.wait_for(lambda: untrusting.status().problem_kind == "tls", 20)
        assert "certificate not accepted" in (untrusting.status().problem or "")
        assert [e.seq for e in central.events("kiosk-a")] == [1, 2, 3]
    finally:
        untrusting.stop()
        link.stop()
        central.stop()


@pytest.mark.broker
def test_a_client_certificate_is_the_device_identity(
    broker_factory: Factory, pki: dict[str, Path]
) -> None:
    """With require_certificate and use_identity_as_username the CN is the ACL user."""
    tls = TlsFiles(
        pki["ca.crt"],
        pki["server.crt"],
        pki["server.key"],
        require_certificate=True,
        use_identity_as_username=True,
    )
    secured = broker_factory(acl_file=ACL, tls=tls, persistence=False)
    outbox = MemoryOutbox()
    events(outbox, "kiosk-a", "checkin", "checkin")
    link = link_for(
        secured.url,
        outbox,
        "kiosk-a",
        ca_file=pki["ca.crt"],
        cert=(pki["kiosk-a.crt"], pki["kiosk-a.key"]),
    )
    link.start()
    try:
        # The broker acknowledged the status and both events: the ACL matched CN = kiosk-a.
        assert link.wait_for(lambda: outbox.stats().counts[EventState.SENT] == 2, 20)
        assert link.status().connected
        assert link.status().problem is None
    finally:
        link.stop()


def test_unusable_tls_files_and_urls_are_refused_when_the_link_is_built(tmp_path: Path) -> None:
    """A missing CA file, a key without a certificate and a wrong URL raise LinkConfigError."""
    with pytest.raises(LinkConfigError, match="ca_file"):
        link_for("mqtts://127.0.0.1:8883", MemoryOutbox(), "kiosk-a", ca_file=tmp_path / "nope.crt")
    with pytest.raises(LinkConfigError, match="cert_file"):
        link_for(
            "mqtts://127.0.0.1:8883",
            MemoryOutbox(),
            "kiosk-a",
            cert=(tmp_path / "missing.crt", tmp_path / "missing.key"),
        )
    for url, problem in (
        ("http://127.0.0.1", "scheme"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "[Pp]ort out of range"),
    ):
        with pytest.raises(LinkConfigError, match=problem):
            BrokerAddress.parse(url)
    assert BrokerAddress.parse("mqtts://broker.example") == BrokerAddress(
        "broker.example", 8883, True
    )
