"""SIGKILL the agent process again and again while events flow: central gets each one once.

A second process appends events straight into the agent's outbox file and reports each
committed seq on a pipe; ``libedge agent run`` is started and killed with SIGKILL at random
moments (during start-up, as soon as the link is up, or after central stored some more of
the backlog). After the last kill one more agent drains what is left. Every seq the
appender saw committed must be stored by the central simulator exactly once.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker, free_port

LIBEDGE = str(Path(sys.executable).with_name("libedge"))
LIB = "demo-library"
KILLS = 22

APPENDER = """
import json, sys, signal, time
from edge_agent.outbox import SqliteOutbox
outbox = SqliteOutbox(sys.argv[1])
device = sys.argv[2]
stopping = []
# Stop between appends, never inside one: every committed seq must reach the pipe.
signal.signal(signal.SIGTERM, lambda *a: stopping.append(True))
try:
    i = 0
    while not stopping:
        i += 1
        event = outbox.append(device, "checkin", json.dumps({"type": "checkin", "item_id": f"K{i}"}))
        sys.stdout.write(f"{event.seq}\\n")
        sys.stdout.flush()
        time.sleep(0.004)  # a busy kiosk's pace, not a synchronisation
finally:
    outbox.close()
"""


class Appender:
    """The second process; ``committed`` holds every seq it reported as committed."""

    def __init__(self, database: Path, device_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(database), device_id],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.committed: list[int] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.committed.append(int(line))

    def stop(self) -> list[int]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.committed


def write_config(tmp_path: Path, broker_url: str, device_id: str) -> Path:
    config = tmp_path / "libedge.toml"
    config.write_text(
        f"""
[site]
library_id = "{LIB}"
device_id = "{device_id}"

[agent]
database = "{tmp_path / "agent.sqlite"}"
api_port = {free_port()}
api_token = "t"
resend_after_s = 2.0
inflight_window = 32

[agent.broker]
url = "{broker_url}"
reconnect_min_s = 0.1
reconnect_max_s = 0.5
"""
    )
    return config


def stored(central: CentralSimulator, device_id: str) -> int:
    """How many events central holds from the device (a count, cheaper than events())."""
    return sum(central.stats().by_device.get(device_id, {}).values())


def wait_for_line(proc: subprocess.Popen[bytes], text: str, timeout: float) -> bool:
    """Read the agent's log until a line contains ``text`` (select, no sleeping)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stderr], [], [], remaining)
        if ready:
            line = proc.stderr.readline().decode(errors="replace")
            if not line:
                return False
            if text in line:
                return True
    return False


@pytest.mark.slow
@pytest.mark.broker
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(
    fresh_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """22 SIGKILLs while events flow: central holds every committed event exactly once."""
    rng = random.Random(0xC0FFEE)
    device_id = f"kiosk-{uuid.uuid4().hex[:6]}"
    config = write_config(tmp_path, fresh_broker.url, device_id)
    central = CentralSimulator(fresh_broker.url, tmp_path / "central.sqlite", instance="c1")
    central.start()
    appender = Appender(tmp_path / "agent.sqlite", device_id)
    modes: list[str] = []
    try:
        for _ in range(KILLS):
            stored_before = stored(central, device_id)
            agent = subprocess.Popen(
                [LIBEDGE, "agent", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            mode = rng.choice(["starting", "link-up", "flowing", "flowing"])
            if mode == "starting":
                # The kill's moment is the point of this test, not a synchronisation.
                threading.Event().wait(rng.uniform(0.0, 0.6))
            else:
                assert wait_for_line(agent, "MQTT link up", 30), "the agent never connected"
                if mode == "flowing":
                    more = rng.randint(1, 400)
                    try:
                        central.wait_for(
                            lambda n=stored_before + more: stored(central, device_id) >= n,
                            timeout=5,
                        )
                    except TimeoutError:
                        mode = "flowing-slow"
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait(10)
            assert agent.stderr is not None
            agent.stderr.close()
            modes.append(mode)
        committed = appender.stop()
        assert committed == list(range(1, len(committed) + 1))
        assert len(committed) > 500
        final = subprocess.Popen(
            [LIBEDGE, "agent", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            central.wait_for(lambda: stored(central, device_id) >= len(committed), 120, "drained")
        finally:
            final.send_signal(signal.SIGTERM)
            assert final.wait(30) == 0
        events = central.events(device_id)
        assert [e.seq for e in events] == committed  # each committed event exactly once
        assert central.gaps(device_id) == []
        assert len({str(e.envelope.event_id) for e in events}) == len(committed)
        assert {"starting", "link-up"} & set(modes)
        assert any(m.startswith("flowing") for m in modes)
    finally:
        if appender.proc.poll() is None:
            appender.stop()
        central.stop()
