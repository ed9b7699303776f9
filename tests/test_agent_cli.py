"""``libedge agent run`` as a real process: clean stop on SIGTERM, Last Will on SIGKILL, status."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.client import AgentClient
from edge_agent.contract import Checkin, DeviceStatus, decode
from tests.support.broker import MosquittoBroker, free_port
from tests.support.mqtt import MqttProbe

LIBEDGE = str(Path(sys.executable).with_name("libedge"))
TOKEN = "cli-token"


def write_config(tmp_path: Path, broker_url: str, device_id: str, port: int) -> Path:
    config = tmp_path / "libedge.toml"
    config.write_text(
        f"""
[site]
library_id = "lib"
device_id = "{device_id}"

[agent]
database = "{tmp_path / "agent.sqlite"}"
api_port = {port}
api_token = "{TOKEN}"

[agent.broker]
url = "{broker_url}"
reconnect_min_s = 0.1
reconnect_max_s = 1.0
"""
    )
    return config


@dataclass
class AgentProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: list[str]

    def read_until(self, text: str, timeout: float = 20.0) -> str:
        """Read the agent's log lines until one contains ``text`` (no sleeping: select)."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"agent never logged {text!r}; log: {self.log[-20:]}")
            ready, _, _ = select.select([self.proc.stderr], [], [], remaining)
            if not ready:
                continue
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line:
                raise AssertionError(f"agent exited before logging {text!r}: {self.log[-20:]}")
            self.log.append(line)
            if text in line:
                return line


def start_agent(config: Path, port: int) -> AgentProcess:
    proc = subprocess.Popen(
        [LIBEDGE, "agent", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    agent = AgentProcess(proc, f"http://127.0.0.1:{port}", [])
    agent.read_until("MQTT link up")
    return agent


@pytest.fixture
def device_id() -> str:
    return f"kiosk-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def status_watch(broker: MosquittoBroker, device_id: str) -> Iterator[MqttProbe]:
    probe = MqttProbe(broker.url)
    probe.connect()
    probe.subscribe(f"libedge/v1/lib/{device_id}/up/status")
    yield probe
    probe.close()


def next_status(probe: MqttProbe) -> DeviceStatus:
    return decode(DeviceStatus, probe.get(timeout=15).payload)


@pytest.mark.broker
def test_sigterm_stops_the_agent_cleanly_with_an_offline_status(
    broker: MosquittoBroker, tmp_path: Path, device_id: str, status_watch: MqttProbe
) -> None:
    """On SIGTERM the agent publishes 'offline' itself, logs that it stopped and exits 0."""
    port = free_port()
    agent = start_agent(write_config(tmp_path, broker.url, device_id, port), port)
    try:
        assert next_status(status_watch).online is True
        with AgentClient(agent.url, token=TOKEN) as client:
            assert client.append(Checkin(item_id="X")).seq == 1
        agent.proc.send_signal(signal.SIGTERM)
        agent.read_until("edge agent stopped")
        assert agent.proc.wait(15) == 0
        while (status := next_status(status_watch)).online:
            pass
        assert status.details.outbox_unconfirmed == 1  # not confirmed: nobody is central here
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
        assert agent.proc.stderr is not None
        agent.proc.stderr.close()


@pytest.mark.broker
def test_sigkill_leaves_the_last_will_saying_offline(
    broker: MosquittoBroker, tmp_path: Path, device_id: str, status_watch: MqttProbe
) -> None:
    """A killed agent sends no status; the broker publishes its Last Will (online false)."""
    port = free_port()
    agent = start_agent(write_config(tmp_path, broker.url, device_id, port), port)
    try:
        assert next_status(status_watch).online is True
        os.kill(agent.proc.pid, signal.SIGKILL)
        agent.proc.wait(10)
        will = next_status(status_watch)
        assert will.online is False
        assert will.device_id == device_id
    finally:
        assert agent.proc.stderr is not None
        agent.proc.stderr.close()


@pytest.mark.broker
def test_agent_status_prints_the_staff_view_and_json(
    broker: MosquittoBroker,
    tmp_path: Path,
    device_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`libedge agent status` shows the link and the queue; --json is machine-readable."""
    port = free_port()
    config = write_config(tmp_path, broker.url, device_id, port)
    agent = start_agent(config, port)
    try:
        with AgentClient(agent.url, token=TOKEN) as client:
            client.append(Checkin(item_id="X"))
            client.append(Checkin(item_id="Y"))
        assert main(["agent", "status", "--config", str(config)]) == 0
        text = capsys.readouterr().out
        assert f"device          {device_id}" in text
        assert "link            UP" in text
        assert "waiting         2" in text
        assert main(["agent", "status", "--config", str(config), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["unconfirmed"] == 2
        assert data["link"]["connected"] is True
        assert data["dead_letters"] == []
    finally:
        agent.proc.send_signal(signal.SIGTERM)
        agent.proc.wait(15)
        assert agent.proc.stderr is not None
        agent.proc.stderr.close()
    assert main(["agent", "status", "--config", str(config)]) == 1
    assert "cannot reach the agent" in capsys.readouterr().err


def test_agent_run_reports_a_bad_configuration_and_a_taken_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration error exits 2 naming the key; a port in use exits 1 saying so."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[agent]\napi_port = "many"\n')
    assert main(["agent", "run", "--config", str(bad)]) == 2
    assert "agent.api_port" in capsys.readouterr().err
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = write_config(tmp_path, "mqtt://127.0.0.1:1", "kiosk-x", port)
        result = subprocess.run(
            [LIBEDGE, "agent", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}: cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
