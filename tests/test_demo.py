"""``libedge demo`` end to end: an unattended run with an offline period, and Ctrl-C.

Both run the real console script in a subprocess: a private Mosquitto, the central simulator
with its dashboard, the kiosk site (the Kivy kiosk app, offscreen) and the gate site as child
processes. The run is short (the issue
asks for ``--duration 60``; the behaviour is the same, only the counts are smaller).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

LIBEDGE = str(Path(sys.executable).with_name("libedge"))


def _summary(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("summary ")]
    assert lines, output[-3000:]
    result: dict[str, Any] = json.loads(lines[-1][len("summary ") :])
    return result


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (e.g. the demo's work directory)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def _no_display() -> dict[str, str]:
    """The environment without a display: the kiosk window is offscreen, as on a CI runner."""
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def _assert_real_png(path: Path) -> None:
    """A whole PNG of the kiosk's 1280x800 screen with something drawn on it."""
    from PIL import Image

    assert path.stat().st_size > 10_000, path  # a blank 1280x800 PNG is ~4 kB
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1280, 800)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 10, f"{path} is nearly one colour"


def test_unattended_run_with_an_offline_period(tmp_path: Path) -> None:
    """A short headless run exits 0 and its summary matches what the sites did, with no gaps.

    The kiosk site shows the real Kivy app, offscreen: its screenshots are real screens.
    """
    workdir = tmp_path / "demo"
    argv = [LIBEDGE, "demo", "--headless", "--port", "0", "--workdir", str(workdir)]
    argv += ["--duration", "24", "--offline-at", "6", "--offline-for", "5", "--gap", "0.5"]
    argv += ["--screenshot-every", "4"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, env=_no_display()
    )
    # The summary ends stdout; stderr holds central's log lines.
    output = proc.stdout[-4000:] + proc.stderr[-1000:]
    assert proc.returncode == 0, output
    shots = workdir / "kiosk" / "screenshots"
    assert f"[kiosk] kiosk window offscreen: screenshots in {shots}" in proc.stdout
    _assert_real_png(shots / "kiosk-latest.png")
    # The first view of each kind of screen is kept too, the first one drawn for real.
    kept = {p.name for p in shots.glob("kiosk-*-*.png")}
    assert {"kiosk-attract-vi.png", "kiosk-choose-vi.png", "kiosk-checkout-vi.png"} <= kept
    for name in ("kiosk-attract-vi.png", "kiosk-checkout-vi.png"):
        _assert_real_png(shots / name)
    summary = _summary(output)
    kinds = summary["events_by_kind"]
    for kind in ("checkout", "checkin", "refusal", "gate_alarm", "visitor_count"):
        assert kinds.get(kind, 0) > 0, kinds
    assert summary["open_gaps"] == 0, summary
    assert summary["missing"] == 0
    assert summary["failures"] == []
    # The offline period happened, a backlog built up, and it drained once the broker was back.
    assert summary["offline_period"] is True
    assert max(summary["peak_backlog"].values()) > 0, summary["peak_backlog"]
    assert summary["drained_after_s"] is not None, summary
    kiosk, gate = summary["sites"]["kiosk"], summary["sites"]["gate"]
    assert kiosk["final"] is True
    assert kiosk["backlog"] == 0, summary
    assert gate["backlog"] == 0, summary
    # Central stored exactly what the kiosk did (only the kiosk lends and returns).
    assert kinds["checkout"] == kiosk["lent"], summary
    assert kinds["checkin"] == kiosk["returned"], summary
    assert kinds["refusal"] == kiosk["refused"] + kiosk["refused_cards"], summary
    assert gate["passages"] > 0
    assert gate["incomplete_passages"] == 0
    assert summary["alarms"] == kinds["gate_alarm"], summary
    assert len(summary["alarm_items"]) >= summary["alarms"]
    # Every child's output is there, prefixed with its name.
    assert re.search(r"^\[kiosk\] visit \d+: P\d+ ", proc.stdout, re.MULTILINE)
    assert re.search(r"^\[gate-traffic\] reader: socket://", proc.stdout, re.MULTILINE)
    assert re.search(r"^\[gate\] .*gate gate-1 stopped", proc.stdout, re.MULTILINE)
    assert "offline period: broker stopped" in proc.stdout
    assert _processes_mentioning(str(workdir)) == []


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put("")  # end of output


def test_one_sigint_stops_everything_and_leaves_no_process(tmp_path: Path) -> None:
    """SIGINT to a demo running without end stops the broker and both sites; nothing is left."""
    workdir = tmp_path / "demo"
    argv = [LIBEDGE, "demo", "--headless", "--port", "0", "--workdir", str(workdir), "--gap", "0.5"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_no_display()
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines))
    pump.start()
    seen: list[str] = []
    pids: set[int] = set()
    try:
        ready: set[str] = set()
        while ready != {"[kiosk] ready: kiosk site", "[gate-traffic] ready", "gate"}:
            line = lines.get(timeout=60)
            assert line or proc.poll() is None, "\n".join(seen[-40:])
            seen.append(line)
            match = re.search(r"\(pid (\d+)\)", line)
            if match and line.startswith("[demo]"):
                pids.add(int(match.group(1)))
            if line in ("[kiosk] ready: kiosk site", "[gate-traffic] ready"):
                ready.add(line)
            if line.startswith("[demo] started gate ("):
                ready.add("gate")
        # The broker, the kiosk site, and the gate's walkers, agent and gate agent.
        assert len(pids) == 5
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0, "\n".join(seen[-40:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        pump.join(10)
        proc.stdout.close()
    while not lines.empty():  # the pump has finished: what is left is the rest of the output
        seen.append(lines.get_nowait())
    text = "\n".join(seen)
    assert "signal received: stopping everything" in text
    for child in ("kiosk", "gate-traffic", "gate-agent", "gate"):
        assert f"[demo] stopped {child}: exit status 0" in text
    assert _summary(text)["open_gaps"] == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived the demo"
    assert _processes_mentioning(str(workdir)) == []
