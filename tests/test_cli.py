"""The libedge command: version, config show, contract export, and every command module loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_agent import cli
from simulators import cli as sim_cli

ROOT = Path(__file__).resolve().parent.parent
LIBEDGE = Path(sys.executable).with_name("libedge")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIBEDGE), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_version_is_the_installed_distribution() -> None:
    """`libedge --version` prints the package version and exits 0."""
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"libedge {cli.libedge_version()}"
    assert cli.libedge_version() != "unknown"


def test_version_does_not_load_heavy_modules() -> None:
    """Commands are loaded lazily: asking for the version imports neither Kivy nor FastAPI."""
    code = (
        "import sys, edge_agent.cli as c\n"
        "try:\n    c.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kivy', 'fastapi', 'paho')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip().endswith("[]")


def test_config_show_masks_secrets() -> None:
    """`libedge config show --config config/example.toml` prints TOML with secrets masked."""
    proc = run("config", "show", "--config", str(ROOT / "config" / "example.toml"))
    assert proc.returncode == 0, proc.stderr
    assert 'device_id = "kiosk-1"' in proc.stdout
    assert 'api_token = "**********"' in proc.stdout
    assert "change-me" not in proc.stdout


def test_config_show_reports_bad_configuration(tmp_path: Path) -> None:
    """A bad file gives a one-line error naming the key and a non-zero exit, not a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[gate]\nquiet_time_s = -1\n")
    proc = run("config", "show", "--config", str(bad))
    assert proc.returncode == 2
    assert "gate.quiet_time_s" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_contract_export_writes_schemas_and_asyncapi(tmp_path: Path) -> None:
    """`libedge contract export DIR` leaves JSON Schemas and an AsyncAPI 3.0 document in DIR."""
    proc = run("contract", "export", str(tmp_path / "x"))
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (tmp_path / "x").iterdir())
    assert "asyncapi.yaml" in files
    assert "envelope.schema.json" in files
    assert yaml.safe_load((tmp_path / "x" / "asyncapi.yaml").read_text())["asyncapi"] == "3.0.0"


def test_unknown_command_is_an_error() -> None:
    """An unknown command exits non-zero with argparse's message."""
    proc = run("fly")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


@pytest.mark.parametrize(
    "module", sorted(set(cli.COMMANDS.values()) | set(sim_cli.SIMULATORS.values()))
)
def test_every_command_module_loads(module: str) -> None:
    """Every module a command table names exists and provides HELP, configure and run."""
    command = cli.load_command(module)
    assert command.HELP.strip()


def test_missing_command_module_is_reported() -> None:
    """A table entry that names a missing module fails with a clear error, not a traceback."""
    with pytest.raises(cli.CommandLoadError, match="cannot be imported"):
        cli.load_command("edge_agent.no_such_module")
