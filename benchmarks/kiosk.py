"""Kiosk benchmark: a 10-item stack borrowed (and returned) through the whole chain.

Everything runs here, on this machine, in one run: a private Mosquitto, the central library
system simulator (on loopback, SQLite with synchronous=FULL), the real edge agent service
(outbox, MQTT link, local HTTP API), the kiosk controller with its worker thread and intent
journal, the real FEIG driver, and the simulated FEIG reader on a pty with air time off.

checkout  from the moment ten tagged items are on the pad (the pad is read) to the moment
          all ten lines are final ("borrowed, due …"): per item CheckoutAuth asked of central
          over MQTT, an intent journalled (fsync), the tag unsecured and read back, the
          Checkout committed by the agent (fsync) and the intent resolved (fsync).
checkin   the same stack returned (CheckinAuth, secure + verify, Checkin committed).
baseline  the bare work of the reader in the same run: one inventory plus a full read of
          the same ten tags through the driver (``read_field``), and the same plus the ten
          security switches with read-back (``set_security``) — no agent, no central.

Two configurations are measured in the same run:

stock     everything as the tree ships it.
nodelay   the same, with TCP_NODELAY on the broker's sockets (``set_tcp_nodelay true``) and
          on the central simulator's MQTT socket. Small MQTT packets otherwise wait for
          Nagle's algorithm and the peer's delayed ACK (~40 ms per hop on Linux), and a
          checkout asks central once per item. The agent's own MQTT socket already sets it.

Target (software time, air time off, central on loopback): checkout p95 <= 300 ms.

The Kivy app, offscreen, each run a fresh process:

cold_start  from launching ``python`` to the first frame of the attract screen (the app, its
            kv files and fonts, the controller over in-memory ports: no reader, no agent).
rss         the kiosk process's resident memory, 30 frames after the attract screen.
baseline    the same two figures for a bare Kivy app showing one label, in the same run.

Targets: cold start <= 2 s, RSS <= 200 MB.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge_agent.client import AgentClient
from edge_agent.config import AgentSettings, BrokerSettings, LibedgeSettings, SiteSettings
from edge_agent.service import AgentService
from hardware.feig import FeigReader
from hardware.rfid_ops import read_field, set_security
from hardware.tags import SecurityConfig
from kiosk.adapters import ClientAgent, ReaderPad, SystemClock
from kiosk.config import KioskConfig
from kiosk.controller import KioskController
from kiosk.flows import FINAL, LineStatus
from kiosk.journal import IntentJournal
from kiosk.machine import State
from kiosk.workers import PostQueue, ThreadWorker
from simulators.central import CentralSimulator
from simulators.reader import FeigSimulator, RFField, SimTag
from tests.support.broker import MosquittoBroker

TARGET_P95_MS = 300.0
TARGET_COLD_START_S = 2.0
TARGET_RSS_MB = 200.0
STACK = 10
TOKEN = "bench-token"
SECURITY = SecurityConfig(secured_afi=0x07, unsecured_afi=0xC2)
SEED = """
library_id = "demo-library"
library_name = "Benchmark library"
[policy]
loan_days = 14
max_loans = 1000
[generate]
items = 200
random_seed = 7
id_prefix = "31"
[[patrons]]
patron_id = "B0001"
name = "Người đọc thử"
language = "vi"
"""


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "runs": len(ordered),
    }


class _NoDelayBroker(MosquittoBroker):
    """The tests' private Mosquitto with TCP_NODELAY on every client connection."""

    def _write_config(self) -> Path:
        config = super()._write_config()
        config.write_text(config.read_text() + "set_tcp_nodelay true\n")
        return config


class _Rig:
    """Broker, central, agent, pad and kiosk, started in that order."""

    def __init__(self, workdir: Path, *, nodelay: bool) -> None:
        self.workdir = workdir
        self.stack: list[Callable[[], None]] = []
        broker_class = _NoDelayBroker if nodelay else MosquittoBroker
        self.broker = broker_class(workdir / "broker", persistence=False)
        self.broker.start()
        self.stack.append(self.broker.stop)
        seed = workdir / "seed.toml"
        seed.write_text(SEED, encoding="utf-8")
        self.central = CentralSimulator(self.broker.url, workdir / "central.sqlite", seed=seed)
        self.central.start()
        self.stack.append(self.central.stop)
        if nodelay:
            # A stand-in for the simulator doing it itself (paho leaves Nagle on).
            client = self.central._client
            sock = client.socket() if client is not None else None
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        settings = LibedgeSettings(
            site=SiteSettings(library_id="demo-library", device_id="kiosk-bench"),
            agent=AgentSettings(
                database=workdir / "agent.sqlite",
                # The kiosk and its agent share the device: a unix socket, as deployed.
                api_socket=workdir / "agent.sock",
                api_token=TOKEN,  # type: ignore[arg-type]
                broker=BrokerSettings(url=self.broker.url),
            ),
        )
        self.service = AgentService(settings)
        self.service.start()
        self.stack.append(self.service.stop)
        link = self.service.link
        assert link is not None
        if not link.wait_for(lambda: link.status().connected, 20):
            raise RuntimeError("the agent did not connect to the benchmark broker")
        self.client = AgentClient(self.service.api_url, token=TOKEN)
        self.stack.append(self.client.close)
        self.field = RFField()
        self.sim = FeigSimulator(self.field, air_time=False)
        path = self.sim.start_pty()
        self.stack.append(self.sim.stop)
        self.reader = FeigReader(path, timeout=2.0)
        self.stack.append(self.reader.close)
        self.worker, self.post = ThreadWorker(), PostQueue()
        self.stack.append(self.worker.close)
        self.journal = IntentJournal(workdir / "kiosk" / "intents.sqlite")
        self.stack.append(self.journal.close)
        self.kiosk = KioskController(
            replace(KioskConfig(security=SECURITY), goodbye_s=0.0, receipt_default="none"),
            pad=ReaderPad(self.reader, SECURITY),
            agent=ClientAgent(self.client),
            clock=SystemClock(),
            journal=self.journal,
            worker=self.worker,
            post=self.post,
        )
        self.kiosk.start()
        seeded = self.central.seed.with_generated_items().items
        self.items = [i.item_id for i in seeded if not (i.not_for_loan or i.missing)]

    def close(self) -> None:
        for step in reversed(self.stack):
            step()

    def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        if not self.post.run_until(predicate, 30):
            raise RuntimeError(f"benchmark: {what} did not happen in 30 s")

    def _lines_final(self) -> bool:
        view = self.kiosk.view
        return (
            len(view.lines) == STACK
            and not view.busy
            and all(line.status in FINAL for line in view.lines)
        )

    def visit(self, action: str, tags: list[SimTag]) -> float:
        """One visit: card, action, stack on the pad; return the seconds to all lines final."""
        kiosk = self.kiosk
        if action == "borrow":
            kiosk.card_presented("B0001")
            self._wait(lambda: kiosk.view.screen == State.CHOOSE, "identification")
        kiosk.choose(action)
        self.worker.wait_idle(30)
        self.post.run_pending()
        self.field.place(*tags)
        started = time.perf_counter()
        kiosk.scan_now()
        self._wait(self._lines_final, f"{action} of {STACK} items")
        elapsed = time.perf_counter() - started
        statuses = {line.status for line in kiosk.view.lines}
        if statuses != {LineStatus.DONE}:
            raise RuntimeError(f"benchmark {action}: lines ended {sorted(statuses)}")
        kiosk.done()
        kiosk.tick()
        self.field.clear()
        return elapsed

    def baseline(self, tags: list[SimTag]) -> tuple[float, float]:
        """The reader alone: read the stack; read it and switch every tag both ways."""
        self.field.place(*tags)
        started = time.perf_counter()
        reading = read_field(self.reader, SECURITY)
        read_only = time.perf_counter() - started
        if len(reading.tags) != STACK:
            raise RuntimeError(f"baseline read {len(reading.tags)} of {STACK} tags")
        started = time.perf_counter()
        read_field(self.reader, SECURITY)
        for tag in tags:
            set_security(self.reader, tag.uid, secured=False, security=SECURITY)
        switched = time.perf_counter() - started
        for tag in tags:
            set_security(self.reader, tag.uid, secured=True, security=SECURITY)
        self.field.clear()
        return read_only, switched


def _measure(nodelay: bool, runs: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="libedge-kiosk-bench-"))
    rig = _Rig(workdir, nodelay=nodelay)
    try:
        pool = [SimTag.from_item(item_id) for item_id in rig.items[: STACK * 4]]
        stacks = [pool[i : i + STACK] for i in range(0, len(pool), STACK)]
        rig.visit("borrow", stacks[0])  # warm-up: connections, caches, code paths
        rig.visit("return", stacks[0])
        checkout, checkin, reads, switches = [], [], [], []
        for n in range(runs):
            tags = stacks[n % len(stacks)]
            checkout.append(rig.visit("borrow", tags))
            checkin.append(rig.visit("return", tags))
            read_only, switched = rig.baseline(tags)
            reads.append(read_only)
            switches.append(switched)
        out = _percentiles(checkout)
        return {
            "checkout": out,
            "checkin": _percentiles(checkin),
            "baseline_read_field": _percentiles(reads),
            "baseline_read_and_switch": _percentiles(switches),
            "meets_target": out["p95_ms"] <= TARGET_P95_MS,
        }
    finally:
        rig.close()
        shutil.rmtree(workdir, ignore_errors=True)


#: The app process of the cold-start measurement (run with ``python -c``, so that nothing of
#: this module's imports — agent, broker, central — is loaded into it).
APP_CHILD = """
import os, sys, tempfile, time
from pathlib import Path
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_NO_CONSOLELOG"] = "1"
from kiosk.app.kivy_config import configure_kivy
configure_kivy(windowed=True)  # what "libedge kiosk run" sets (the bare app too)
from kivy.app import App
from kivy.clock import Clock

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return -1.0

def watch(app, shown):
    frames = [0]
    def frame(_dt):
        if not shown():
            return
        frames[0] += 1
        if frames[0] == 1:
            print("shown", time.time(), flush=True)
        elif frames[0] == 30:
            print("rss", rss_mb(), flush=True)
            app.stop()
    Clock.schedule_interval(frame, 0)

if sys.argv[1] == "bare":
    from kivy.uix.label import Label
    class Bare(App):
        def load_kv(self, filename=None):
            return None  # defined in "-c" code: no source file to find a kv file beside
        def build(self):
            watch(self, lambda: True)
            return Label(text="Xin chào")
    Bare().run()
else:
    from kiosk.adapters import SystemClock
    from kiosk.app.main import KioskApp
    from kiosk.config import KioskConfig
    from kiosk.controller import KioskController
    from kiosk.fakes import FakePatron, MemoryAgent, MemoryPad
    from kiosk.journal import IntentJournal
    from kiosk.machine import State
    from kiosk.workers import ThreadWorker

    class Runtime:
        def __init__(self, post):
            self.worker = ThreadWorker()
            self.journal = IntentJournal(Path(tempfile.mkdtemp()) / "intents.sqlite")
            self.controller = KioskController(
                KioskConfig(library_name="Thư viện"),
                pad=MemoryPad(),
                agent=MemoryAgent([FakePatron("B0001", "Người đọc")]),
                clock=SystemClock(),
                journal=self.journal,
                worker=self.worker,
                post=post,
            )
            self.controller.start()
        def close(self):
            self.worker.close()
            self.journal.close()

    app = KioskApp(Runtime)
    watch(app, lambda: app.manager is not None and app.manager.current == State.ATTRACT.value)
    app.run()
"""


def _app_once(mode: str) -> tuple[float, float]:
    """One fresh process: (seconds from launch to the first frame shown, RSS in MB)."""
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    launched = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", APP_CHILD, mode],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    figures = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    if proc.returncode != 0 or "shown" not in figures or "rss" not in figures:
        raise RuntimeError(f"app benchmark ({mode}) failed: {proc.stderr[-2000:]}")
    return float(figures["shown"]) - launched, float(figures["rss"])


def _app_figures(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("kiosk", "bare"):
        starts, rss = [], []
        for _ in range(runs):
            start, mb = _app_once(mode)
            starts.append(start)
            rss.append(mb)
        out[mode] = {
            "cold_start": _percentiles(starts),
            "rss_mb_max": round(max(rss), 1),
            "rss_mb_median": round(statistics.median(rss), 1),
        }
    kiosk = out["kiosk"]
    out["meets_target"] = (
        kiosk["cold_start"]["max_ms"] <= TARGET_COLD_START_S * 1000
        and kiosk["rss_mb_max"] <= TARGET_RSS_MB
    )
    return out


def run(quick: bool) -> dict[str, Any]:
    """Borrow and return a 10-item stack repeatedly; p50/p95 beside the reader's own time."""
    runs = 6 if quick else 30
    return {
        "what": f"{STACK}-item stack, items on the pad -> all lines final, air time off",
        "target_p95_ms": TARGET_P95_MS,
        "stock": _measure(nodelay=False, runs=runs),
        "nodelay": _measure(nodelay=True, runs=runs),
        "app": {
            "what": "Kivy app offscreen: launch -> attract screen drawn; RSS 30 frames later",
            "target_cold_start_s": TARGET_COLD_START_S,
            "target_rss_mb": TARGET_RSS_MB,
            **_app_figures(3 if quick else 10),
        },
    }
