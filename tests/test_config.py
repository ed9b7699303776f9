"""Site configuration: the example file is complete, errors name the key, the environment overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge_agent.config import ConfigError, LibedgeSettings, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.toml"


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _field_paths(annotation, f"{prefix}{name}.")
        else:
            out.append((prefix.rstrip("."), name))
    return out


def test_example_file_loads_and_documents_every_option() -> None:
    """config/example.toml is valid and mentions every option (set, or commented out when unset)."""
    settings = load_config(EXAMPLE)
    assert settings.site.device_id == "kiosk-1"
    text = EXAMPLE.read_text(encoding="utf-8")
    sections = {m.group(1): m.start() for m in re.finditer(r"^\[([a-z_.]+)\]", text, re.M)}
    for section, key in _field_paths(LibedgeSettings):
        assert section in sections, f"[{section}] missing from example.toml"
        start = sections[section]
        following = [pos for pos in sections.values() if pos > start]
        body = text[start : min(following, default=len(text))]
        assert re.search(rf"^#? ?{key} = ", body, re.M), f"{section}.{key} is not documented"


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIBEDGE_SECTION__KEY beats the file, and is validated like the file."""
    monkeypatch.setenv("LIBEDGE_AGENT__API_PORT", "8181")
    monkeypatch.setenv("LIBEDGE_SITE__DEVICE_ID", "gate-2")
    settings = load_config(EXAMPLE)
    assert (settings.agent.api_port, settings.site.device_id) == (8181, "gate-2")
    monkeypatch.setenv("LIBEDGE_AGENT__API_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"agent\.api_port"):
        load_config(EXAMPLE)


def test_errors_name_file_key_and_reason(tmp_path: Path) -> None:
    """A typo, a wrong type and a bad URL are each reported with their dotted key."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[agent]\napi_port = "abc"\noutbox_max = 3\n[agent.broker]\nurl = "http://x"\n'
        "[security]\nsecured_afi = 300\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    message = str(info.value)
    assert message.startswith(str(bad))
    for key in (
        "agent.api_port",
        "agent.outbox_max: unknown key",
        "agent.broker.url",
        "security.secured_afi",
    ):
        assert key in message


def test_secrets_never_appear_in_errors_or_output(tmp_path: Path) -> None:
    """A secret with a wrong type is named but its value is not shown; masked() hides all secrets."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[kiosk]\nstaff_pin = 98765\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "kiosk.staff_pin" in str(info.value)
    assert "98765" not in str(info.value)
    good = tmp_path / "good.toml"
    good.write_text(
        '[kiosk]\nstaff_pin = "98765"\n[agent]\napi_token = "tok-123"\n[agent.broker]\npassword = "pw-456"\n'
    )
    shown = str(load_config(good).masked())
    for secret in ("98765", "tok-123", "pw-456"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("content", "reason"),
    [("[site\nx=1", "not valid TOML"), (None, "no such configuration file")],
)
def test_unreadable_files_are_reported(tmp_path: Path, content: str | None, reason: str) -> None:
    """Broken TOML and a missing file each get their own clear message."""
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=reason):
        load_config(path)


def test_same_afi_for_secured_and_on_loan_is_refused(tmp_path: Path) -> None:
    """A gate cannot work if both states use one AFI, so that configuration is refused."""
    path = tmp_path / "c.toml"
    path.write_text("[security]\nsecured_afi = 7\nunsecured_afi = 7\n")
    with pytest.raises(ConfigError, match=r"security\.unsecured_afi: .*must differ"):
        load_config(path)
