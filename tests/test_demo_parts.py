"""Parts of ``libedge demo`` on their own: options, progress lines, supervisor, broker, help."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from simulators.demo.broker import DemoBroker
from simulators.demo.gate_site import GateSite
from simulators.demo.runner import DemoOptions, Progress
from simulators.demo.summary import Summary
from simulators.demo.supervisor import Supervisor


def test_outage_is_scheduled_inside_the_duration() -> None:
    """The offline period starts a third of the way in and never outlives a short run."""
    at, length = DemoOptions(duration_s=60).outage() or (0.0, 0.0)
    assert at == pytest.approx(21.0)
    assert length == pytest.approx(12.0)
    assert DemoOptions(duration_s=10, offline_at_s=2, offline_for_s=3).outage() == (2, 3)
    assert DemoOptions(duration_s=60, broker_url="mqtt://127.0.0.1:1").outage() is None
    assert DemoOptions(duration_s=60, offline_for_s=0).outage() is None


def test_an_open_ended_demo_shows_its_outage_within_the_first_minute() -> None:
    """`make demo` runs until Ctrl-C: a first look of a minute sees the outage and the drain."""
    outage = DemoOptions().outage()
    assert outage is not None
    at, length = outage
    assert at + length <= 45  # leaves time for the backlog to drain inside the minute


def test_progress_tracks_peak_backlog_and_drain() -> None:
    """Report lines during the outage raise the peak; all sites at zero after it mark the drain."""
    progress = Progress()
    progress.on_line("kiosk", 'report {"site": "kiosk", "backlog": 3}')
    assert progress.peak_backlog == {}
    progress.offline_since = 1.0
    progress.on_line("kiosk", 'report {"site": "kiosk", "backlog": 7}')
    progress.on_line("gate", 'report {"site": "gate", "backlog": 2}')
    progress.on_line("gate", 'report {"site": "gate", "backlog": 9}')
    progress.restored_at = 2.0
    progress.on_line("kiosk", 'report {"site": "kiosk", "backlog": 0}')
    assert progress.drained_after_s is None  # the gate still holds nine
    progress.on_line("gate", 'report {"site": "gate", "backlog": 3}')
    assert progress.drained_after_s is None  # more than the traffic keeps in flight
    progress.on_line("gate", 'report {"site": "gate", "backlog": 2}')
    assert progress.peak_backlog == {"kiosk": 7, "gate": 9}
    assert progress.drained_after_s is not None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_progress_ignores_garbled_lines(line: str) -> None:
    """Any text a child prints is taken without error; only well-formed reports are counted."""
    progress = Progress()
    progress.on_line("x", line)
    progress.on_line("x", "report " + line)
    for values in progress.latest.values():
        assert isinstance(values["backlog"], int | str | float | bool)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_gate_site_takes_any_traffic_output(line: str) -> None:
    """Whatever gate-traffic prints, reading it never fails; only well-formed lines count."""
    supervisor = Supervisor(lambda _name, _line: None)
    site = GateSite(supervisor, Path("/nonexistent"), "mqtt://127.0.0.1:1", 0.5)
    for text in (line, "summary: " + line, "reader: " + line, "people: " + line):
        site.on_line("gate-traffic", text)
    assert isinstance(site.traffic_summary, dict)
    site.on_line("gate", "reader: socket://127.0.0.1:1")  # another child: ignored
    assert "socket://127.0.0.1:1" not in site.readers


def test_gate_site_reads_urls_and_summary() -> None:
    """gate-traffic's reader and people URLs and its final summary are picked up."""
    site = GateSite(Supervisor(lambda _name, _line: None), Path("/nonexistent"), "mqtt://x:1", 1)
    site.on_line("gate-traffic", "reader: socket://127.0.0.1:7001")
    site.on_line("gate-traffic", "reader: socket://127.0.0.1:7002")
    site.on_line("gate-traffic", "people: tcp://127.0.0.1:7003")
    site.on_line("gate-traffic", 'summary: {"passages": 4, "expected_alarms": 1}')
    assert site.readers == ["socket://127.0.0.1:7001", "socket://127.0.0.1:7002"]
    assert site.people == "tcp://127.0.0.1:7003"
    assert site.traffic_summary == {"passages": 4, "expected_alarms": 1}


def test_gate_config_names_the_simulated_devices(tmp_path: Path) -> None:
    """The gate's site configuration loads and names the readers, counter and the agent's port."""
    from edge_agent.config import load_config

    site = GateSite(Supervisor(lambda _name, _line: None), tmp_path, "mqtt://127.0.0.1:1883", 1)
    site.on_line("gate-traffic", "reader: socket://127.0.0.1:7001")
    site.on_line("gate-traffic", "reader: socket://127.0.0.1:7002")
    site.on_line("gate-traffic", "people: tcp://127.0.0.1:7003")
    settings = load_config(site.write_config())
    assert settings.devices.gate_readers == ["socket://127.0.0.1:7001", "socket://127.0.0.1:7002"]
    assert settings.devices.people_counter == "tcp://127.0.0.1:7003"
    assert settings.devices.alarm_output == "sim:"
    assert settings.gate.agent_url == f"http://127.0.0.1:{site.api_port}"
    assert settings.agent.api_port == site.api_port
    assert settings.agent.broker.url == "mqtt://127.0.0.1:1883"


def test_progress_rejects_reports_without_a_backlog() -> None:
    """A report without the fields the summary needs is not counted."""
    progress = Progress()
    progress.on_line("gate", 'report {"site": "gate"}')
    progress.on_line("gate", 'report {"site": "gate", "backlog": "many"}')
    progress.on_line("gate", "report [1, 2]")
    assert progress.latest == {}


def test_summary_is_not_ok_with_open_gaps_or_failures() -> None:
    """Open gaps or a failed child make the summary fail; its JSON line says why."""
    base = {
        "events_by_kind": {"checkout": 2},
        "alarms": 0,
        "alarm_items": [],
        "duplicates_dropped": 0,
        "open_gaps": 0,
        "missing": 0,
        "gaps_filled": 0,
        "rejected": 0,
        "sites": {},
        "peak_backlog": {},
        "drained_after_s": None,
        "offline": False,
    }
    assert Summary(**base).ok  # type: ignore[arg-type]
    gapped = Summary(**{**base, "open_gaps": 1, "missing": 4})  # type: ignore[arg-type]
    failed = Summary(**base, failures=["kiosk exited with status 1"])  # type: ignore[arg-type]
    assert not gapped.ok
    assert not failed.ok
    last = failed.text().splitlines()[-1]
    assert last.startswith("summary ")
    assert json.loads(last[8:])["failures"] == ["kiosk exited with status 1"]
    assert "FAILED: kiosk exited with status 1" in failed.text()


class _Lines:
    """Collects (name, line) pairs from a supervisor and lets a test wait for one."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, name: str, line: str) -> None:
        with self.cond:
            self.seen.append((name, line))
            self.cond.notify_all()

    def wait(self, line: str) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(seen == line for _, seen in self.seen), 10)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_supervisor_prefixes_output_and_kills_a_child_that_ignores_sigterm(
    tmp_path: Path,
) -> None:
    """Output is prefixed with the child's name; a child ignoring SIGTERM is killed after the wait."""
    lines = _Lines()
    log = (tmp_path / "out.txt").open("w", encoding="utf-8")
    supervisor = Supervisor(lines, out=log)
    stubborn = (
        "import signal, sys, threading\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('waiting', flush=True)\n"
        "threading.Event().wait()\n"
    )
    polite = "import threading\nprint('hello', flush=True)\nthreading.Event().wait()\n"
    try:
        child = supervisor.start("stubborn", [sys.executable, "-c", stubborn])
        other = supervisor.start("polite", [sys.executable, "-c", polite])
        assert lines.wait("waiting")
        assert lines.wait("hello")
        assert supervisor.failed() == []
        statuses = supervisor.stop_all(timeout=1.0)
    finally:
        log.close()
    assert statuses == {"polite": -signal.SIGTERM, "stubborn": -signal.SIGKILL}
    assert _gone(child.pid)
    assert _gone(other.pid)
    text = (tmp_path / "out.txt").read_text(encoding="utf-8")
    assert "[stubborn] waiting" in text
    assert "[polite] hello" in text


def test_a_child_is_asked_to_stop_once(tmp_path: Path) -> None:
    """Repeated stop requests send one SIGTERM: a second could kill a child while it exits."""
    lines = _Lines()
    counting = (
        "import signal, sys, threading\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('term', flush=True))\n"
        "print('up', flush=True)\n"
        "threading.Event().wait()\n"
    )
    with (tmp_path / "out.txt").open("w", encoding="utf-8") as log:
        supervisor = Supervisor(lines, out=log)
        child = supervisor.start("counting", [sys.executable, "-c", counting])
        assert lines.wait("up")
        child.terminate()
        child.terminate()
        assert lines.wait("term")
        # It ignores the request: killed after the wait, its output all read by then.
        assert supervisor.stop_all(timeout=1.0) == {"counting": -signal.SIGKILL}
    assert [line for _, line in lines.seen].count("term") == 1


def test_supervisor_reports_a_child_that_died_early(tmp_path: Path) -> None:
    """A child that exits on its own is listed as failed, with its status."""
    lines = _Lines()
    with (tmp_path / "out.txt").open("w", encoding="utf-8") as log:
        supervisor = Supervisor(lines, out=log)
        child = supervisor.start("short", [sys.executable, "-c", "raise SystemExit(3)"])
        child.proc.wait(10)
        assert [c.name for c in supervisor.failed()] == ["short"]
        assert supervisor.stop_all() == {"short": 3}


def test_broker_restarts_on_the_same_port(tmp_path: Path) -> None:
    """The demo's Mosquitto stops (port closed) and starts again on the same port."""
    broker = DemoBroker(tmp_path / "broker")
    broker.start()
    try:
        port = broker.port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        broker.stop()
        assert not broker.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        broker.start()
        assert broker.port == port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert broker.url == f"mqtt://127.0.0.1:{port}"
    finally:
        broker.stop()


def test_help_explains_the_broker_choice(capsys: pytest.CaptureFixture[str]) -> None:
    """``libedge demo --help`` says why Mosquitto is the default and how to give another broker."""
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "Mosquitto" in out
    assert "amqtt" in out
    assert "--broker" in out
    assert "--duration" in out


def test_negative_duration_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A negative duration is an error naming the option, before anything starts."""
    assert main(["demo", "--duration", "-1"]) == 2
    assert "--duration" in capsys.readouterr().out


#: A parent that starts one child through the Supervisor, says the child's pid, and waits.
_PARENT = """
import sys, threading
from simulators.demo.supervisor import Supervisor

child = "import threading; print('child up', flush=True); threading.Event().wait()"
supervisor = Supervisor(lambda name, line: print(f"line {name} {line}", flush=True))
started = supervisor.start("sleeper", [sys.executable, "-c", child])
print(f"pid {started.pid}", flush=True)
threading.Event().wait()
"""


#: A parent that starts the demo's private Mosquitto, says its pid, and waits.
_BROKER_PARENT = """
import sys, threading
from pathlib import Path
from simulators.demo.broker import DemoBroker

broker = DemoBroker(Path(sys.argv[1]))
broker.start()
print(f"pid {broker.pid}", flush=True)
print("line sleeper child up", flush=True)
threading.Event().wait()
"""


def _dies_with_its_killed_parent(script: str, *args: str) -> None:
    """Run ``script``; once it reports its child up, SIGKILL it; the child must exit too."""
    import select
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    parent = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout is not None
    child_pid = None
    try:
        for line in parent.stdout:  # ends when the parent does: no unbounded wait on a hang
            if line.startswith("pid "):
                child_pid = int(line.split()[1])
            if line.strip() == "line sleeper child up":
                break
        assert child_pid is not None
        # A descriptor for the child taken while it surely runs: it becomes readable when the
        # child exits, even though the child is not this test's to wait for.
        pidfd = os.pidfd_open(child_pid)
        try:
            parent.kill()
            parent.wait(10)
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            assert poller.poll(10_000), f"child {child_pid} outlived its killed parent"
        finally:
            os.close(pidfd)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        parent.stdout.close()
        if child_pid is not None and not _gone(child_pid):
            os.kill(child_pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_supervisor() -> None:
    """SIGKILL to the process that started a child through Supervisor makes the child exit."""
    _dies_with_its_killed_parent(_PARENT)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_private_broker_dies_with_a_killed_demo(tmp_path: Path) -> None:
    """The demo's Mosquitto is behind the same guard: a SIGKILLed demo leaves no broker."""
    _dies_with_its_killed_parent(_BROKER_PARENT, str(tmp_path / "broker"))


def test_orphan_guard_runs_the_command_unchanged(tmp_path: Path) -> None:
    """Behind the guard the child is the command itself: its pid, argv, environment, status."""
    import subprocess

    from simulators.demo.supervisor import orphan_guard

    script = "import os, sys; print(os.getpid(), sys.argv[1:], os.environ['X_DEMO']); sys.exit(4)"
    proc = subprocess.Popen(
        orphan_guard([sys.executable, "-c", script, "a b", "c"]),
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "X_DEMO": "kept"},
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 4
    assert out.split(" ", 1) == [str(proc.pid), "['a b', 'c'] kept\n"]


def test_kiosk_window_options_reach_the_kiosk_site(tmp_path: Path) -> None:
    """--kiosk-window and --screenshot-every are handed to the kiosk site's process."""
    from simulators.demo.runner import _kiosk_argv

    argv = _kiosk_argv(
        "mqtt://127.0.0.1:1",
        tmp_path,
        DemoOptions(kiosk_window="off", screenshot_every_s=2.5),
    )
    assert argv[argv.index("--window") + 1] == "off"
    assert argv[argv.index("--screenshot-every") + 1] == "2.5"
    assert argv[argv.index("--workdir") + 1] == str(tmp_path / "kiosk")


def test_kiosk_window_on_needs_a_display(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a display, --kiosk-window on is refused before anything starts; auto is not."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["demo", "--kiosk-window", "on"]) == 2
    assert "needs a display" in capsys.readouterr().out
    assert main(["demo", "--screenshot-every", "-1"]) == 2
    assert "--screenshot-every" in capsys.readouterr().out
