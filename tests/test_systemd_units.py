"""The systemd units in deploy/systemd: each runs a real ``libedge`` command with options the
command line accepts, on an example configuration that exists and agrees with the unit's
directories, and (where ``systemd-analyze`` exists) passes ``systemd-analyze verify``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from edge_agent import cli
from edge_agent.config import load_config
from tests.test_config_examples import ENV_FILE, SECRETS, read_env_file

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
EXAMPLES = ROOT / "config"
LIBEDGE = "/opt/libedge/.venv/bin/libedge"
#: systemd's %S in a system unit: the root of StateDirectory=.
STATE_ROOT = PurePosixPath("/var/lib")
RUNTIME_ROOT = PurePosixPath("/run")

#: Unit -> the command it runs; a template's instance names the configuration file.
EXPECTED = {
    "libedge-agent@.service": ("agent", "run"),
    "libedge-kiosk.service": ("kiosk", "run"),
    "libedge-gate.service": ("gate", "run"),
}
#: The agent instances the kiosk and gate units depend on.
INSTANCES = ("pi-kiosk", "pi-gate")


@dataclass(frozen=True)
class Unit:
    """A unit file as sections of (key, value) pairs; a key may repeat, as systemd allows."""

    name: str
    sections: dict[str, list[tuple[str, str]]]

    def all(self, section: str, key: str) -> list[str]:
        """Every value of ``key`` in ``section``, in order."""
        return [v for k, v in self.sections.get(section, []) if k == key]

    def one(self, section: str, key: str) -> str:
        """The single value of ``key``; fails when it is missing or repeated."""
        values = self.all(section, key)
        assert len(values) == 1, f"{self.name}: [{section}] {key} = {values}"
        return values[0]

    def words(self, section: str, key: str) -> list[str]:
        """Every space-separated word of every value of ``key`` (After=, Wants=, …)."""
        return [word for value in self.all(section, key) for word in value.split()]

    def instance(self, name: str) -> Unit:
        """A template's unit for one instance (``%i`` replaced)."""
        assert self.name.endswith("@.service"), self.name
        return Unit(
            self.name.replace("@.", f"@{name}."),
            {
                section: [(k, v.replace("%i", name)) for k, v in pairs]
                for section, pairs in self.sections.items()
            },
        )


def parse_unit(path: Path) -> Unit:
    """A tiny unit-file parser: [Section], key=value, comments; no line continuations used."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path.name}:{number}: continuation lines not expected"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not key=value: {raw!r}"
        assert current is not None, f"{path.name}:{number}: a key before any [Section]"
        current.append((key.strip(), value.strip()))
    return Unit(path.name, sections)


def units() -> dict[str, Unit]:
    """Every unit in deploy/systemd, with each agent instance the other units use."""
    found = {p.name: parse_unit(p) for p in sorted(UNITS.glob("*.service"))}
    for name in INSTANCES:
        found[f"libedge-agent@{name}.service"] = found["libedge-agent@.service"].instance(name)
    return found


def parse_exec_start(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, argparse.Namespace]:
    """Run the real ``libedge`` dispatcher on ``argv``, stopping at the command's ``run``."""
    seen: list[argparse.Namespace] = []
    command = argv[0]
    module = cli.load_command(cli.COMMANDS[command])

    def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(module, "run", record)
    assert cli.main(argv) == 0
    assert len(seen) == 1, f"libedge {shlex.join(argv)} did not reach the command"
    return command, seen[0]


def example_for(config: str) -> Path:
    """The example in config/ that a unit's /etc/libedge/NAME.toml is installed from."""
    path = PurePosixPath(config)
    assert path.parent == PurePosixPath("/etc/libedge"), config
    return EXAMPLES / path.name


def test_the_units_are_the_expected_ones() -> None:
    """An agent template, a kiosk and a gate unit, and the environment file."""
    assert {p.name for p in UNITS.glob("*.service")} == set(EXPECTED)
    assert ENV_FILE.exists()


@pytest.mark.parametrize(
    "name",
    [*(n for n in EXPECTED if "@." not in n), *(f"libedge-agent@{i}.service" for i in INSTANCES)],
)
def test_exec_start_is_a_libedge_command_on_an_example(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ExecStart parses with the real argparse parsers and names an existing example."""
    unit = units()[name]
    argv = shlex.split(unit.one("Service", "ExecStart"))
    assert argv[0] == LIBEDGE, "libedge is installed in /opt/libedge/.venv"
    template = "libedge-agent@.service" if "@" in name else name
    command, args = parse_exec_start(argv[1:], monkeypatch)
    assert (command, args.action) == EXPECTED[template]
    assert args.config is not None, "the unit must name its configuration file"
    assert example_for(str(args.config)).exists(), f"no example for {args.config}"


@pytest.mark.parametrize("name", ["libedge-kiosk.service", "libedge-gate.service"])
def test_device_units_follow_their_agent_and_share_its_file(name: str) -> None:
    """The kiosk and gate start after the agent instance that reads the same file."""
    found = units()
    unit = found[name]
    argv = shlex.split(unit.one("Service", "ExecStart"))
    config = argv[argv.index("--config") + 1]
    agents = [w for w in unit.words("Unit", "Wants") if w.startswith("libedge-agent@")]
    assert len(agents) == 1, agents
    assert agents[0] in unit.words("Unit", "After")
    agent = found[agents[0]]
    assert f"--config {config}" in agent.one("Service", "ExecStart")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_service_settings(name: str) -> None:
    """Type, stop signal and time, restarts, user, secrets file, hardening."""
    unit = units()[name]
    service = "Service"
    # libedge does not implement sd_notify: Type=notify would time out at every start.
    assert unit.one(service, "Type") in ("simple", "exec")
    assert unit.one(service, "KillSignal") == "SIGTERM"
    assert unit.one(service, "Restart") == "always"
    assert unit.one(service, "User") == "libedge"
    assert unit.one(service, "EnvironmentFile") == "/etc/libedge/libedge.env"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert unit.one(service, key) == value, key
    assert "libedge" in unit.words(service, "StateDirectory")
    stop_s = int(unit.one(service, "TimeoutStopSec"))
    if name.startswith("libedge-agent@"):
        # The agent's clean stop waits up to 10 s each for the API and the link.
        assert stop_s >= 30
        assert "network-online.target" in unit.words("Unit", "After")
        assert "network-online.target" in unit.words("Unit", "Wants")
    else:
        # Devices must stay reachable: these settings would close /dev to the service.
        for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
            assert not unit.all(service, key), f"{name}: {key} hides the hardware"
        assert "dialout" in unit.words(service, "SupplementaryGroups")


def _state_dirs(unit: Unit) -> list[PurePosixPath]:
    return [STATE_ROOT / d for d in unit.words("Service", "StateDirectory")]


def _under(path: PurePosixPath | Path, roots: list[PurePosixPath]) -> bool:
    return any(PurePosixPath(path).is_relative_to(root) for root in roots)


@pytest.mark.parametrize("instance", INSTANCES)
def test_configuration_paths_lie_in_the_units_directories(
    instance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ProtectSystem=strict a service writes only its state and runtime directories."""
    monkeypatch.setenv(SECRETS[("agent", "api_token")], "test-token")
    found = units()
    agent = found[f"libedge-agent@{instance}.service"]
    settings = load_config(EXAMPLES / f"{instance}.toml")
    assert _under(settings.agent.database, _state_dirs(agent))
    runtime = [RUNTIME_ROOT / d for d in agent.words("Service", "RuntimeDirectory")]
    assert settings.agent.api_socket is not None
    assert _under(settings.agent.api_socket, runtime)
    if instance == "pi-gate":
        assert _under(settings.gate.data_dir, _state_dirs(found["libedge-gate.service"]))


def test_kiosk_unit_display_and_escpos_cache() -> None:
    """KMS/DRM through SDL2, and python-escpos's cache in a directory that exists."""
    unit = units()["libedge-kiosk.service"]
    env = dict(w.split("=", 1) for w in unit.words("Service", "Environment"))
    assert env["SDL_VIDEODRIVER"] == "kmsdrm"
    for variable in ("ESCPOS_CAPABILITIES_PICKLE_DIR", "KIVY_HOME"):
        assert env[variable].startswith("%S/"), variable
        directory = PurePosixPath(env[variable].replace("%S", str(STATE_ROOT)))
        # python-escpos opens its pickle inside the directory without creating it.
        assert directory in _state_dirs(unit), f"{variable}: not a StateDirectory"
    groups = unit.words("Service", "SupplementaryGroups")
    assert {"video", "render", "input"} <= set(groups)


def test_kiosk_reload_sends_the_signal_the_kiosk_reloads_on() -> None:
    """``systemctl reload`` sends SIGHUP to the kiosk's main process (kiosk.cli)."""
    from kiosk.cli import RELOAD_SIGNAL

    unit = units()["libedge-kiosk.service"]
    signal_name = RELOAD_SIGNAL.name.removeprefix("SIG")
    assert unit.words("Service", "ExecReload") == ["/bin/kill", f"-{signal_name}", "$MAINPID"]


def test_env_file_is_what_the_units_read() -> None:
    """The env template sets only LIBEDGE_ secrets and documents its mode."""
    values = read_env_file(ENV_FILE)
    assert values
    assert all(name.startswith("LIBEDGE_") for name in values)
    assert "0600" in ENV_FILE.read_text(encoding="utf-8")


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts every unit with no warning at all."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (containers usually lack systemd)")
    found = [
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    ]
    assert found, "systemd-analyze is installed without systemd's own units"
    system_units = found[0]
    # An image of the device: our units where they are installed, systemd's own units (for
    # network-online.target, getty@.service, …) and an executable at the ExecStart path.
    root = tmp_path / "root"
    installed = root / "etc" / "systemd" / "system"
    installed.mkdir(parents=True)
    for path in UNITS.glob("*.service"):
        shutil.copy(path, installed / path.name)
    shutil.copytree(system_units, root / system_units.relative_to("/"), symlinks=True)
    # verify checks only that each Exec program is an executable file; what ExecStart runs is
    # checked by test_exec_start_is_a_libedge_command_on_an_example. The kiosk's ExecReload
    # runs the system's /bin/kill (procps, on every Raspberry Pi OS).
    for program in (LIBEDGE, "/bin/kill"):
        stub = root / program.lstrip("/")
        stub.parent.mkdir(parents=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    names = ["libedge-kiosk.service", "libedge-gate.service"]
    names += [f"libedge-agent@{i}.service" for i in INSTANCES]
    proc = subprocess.run(
        [analyze, "verify", f"--root={root}", "--man=no", *(str(installed / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # verify exits 0 on many warnings (an unknown key is "ignoring"); any output is a fault.
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, output
    assert not output
