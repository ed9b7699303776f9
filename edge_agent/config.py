"""The site configuration: one TOML file plus ``LIBEDGE_…`` environment variables.

Every process on a kiosk or gate reads the same file; each takes its own section. The models
live here, in the lowest layer that may know about sites, so that kiosk and gate import them
without importing each other (``hardware`` takes plain values and knows nothing of this file).

Precedence, highest first: environment variables, the TOML file, the defaults below.
Nested keys use a double underscore in the environment: ``LIBEDGE_AGENT__API_PORT=8081``
sets ``[agent] api_port``. Unknown keys are errors, so a typo is reported, not ignored.

Every device endpoint is a URL, so real hardware and a simulator differ by a string:
``serial:///dev/ttyUSB0?baud=38400&parity=E``, ``socket://127.0.0.1:7001``, ``nfc:usb``,
``nfc:udp:127.0.0.1:54321``, ``tcp://192.168.1.50:9100``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "AgentSettings",
    "BrokerSettings",
    "ConfigError",
    "DevicesSettings",
    "GateSettings",
    "KioskSettings",
    "LibedgeSettings",
    "OfflinePolicy",
    "SecuritySettings",
    "SiteSettings",
    "default_config_path",
    "load_config",
]

#: Identifiers that appear in MQTT topics and broker ACLs: no '/', '+', '#' or spaces.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Ident = Annotated[str, Field(pattern=IDENT_PATTERN)]
Byte = Annotated[int, Field(ge=0, le=0xFF)]
Language = Literal["vi", "en"]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file, the key and the reason."""


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SiteSettings(_Section):
    """Which library and which device this is."""

    library_id: Ident = Field("demo-library", description="The library's id in topics and ACLs.")
    library_name: str = Field("Thư viện libedge", description="Shown on screens and receipts.")
    isil: str | None = Field(
        None,
        description="The library's ISIL (ISO 15511), e.g. 'VN-HaNL'; tags of others are foreign.",
    )
    device_id: Ident = Field("kiosk-1", description="This device's id; also its MQTT username.")
    device_kind: Literal["kiosk", "gate", "staff"] = "kiosk"
    timezone: str = Field("Asia/Ho_Chi_Minh", description="For due dates and hourly statistics.")


class SecuritySettings(_Section):
    """How this library's tags say 'secured' (on the shelf) or 'on loan'."""

    secured_afi: Byte = Field(0x07, description="AFI of an item that must not leave.")
    unsecured_afi: Byte = Field(0xC2, description="AFI of an item on loan.")
    use_afi: bool = Field(True, description="Switch and check AFI on checkout/checkin.")
    use_eas: bool = Field(False, description="Switch and check the NXP EAS bit as well.")

    @field_validator("unsecured_afi")
    @classmethod
    def _distinct(cls, value: int, info: Any) -> int:
        if value == info.data.get("secured_afi"):
            raise ValueError("must differ from secured_afi, or the gate cannot tell them apart")
        return value


class DevicesSettings(_Section):
    """Device endpoints, each a URL (hardware or simulator alike). Empty means 'not fitted'."""

    item_reader: str | None = Field(
        None, description="ISO 15693 pad reader, e.g. serial:///dev/ttyUSB0?baud=38400&parity=E"
    )
    item_reader_address: Byte = Field(0xFF, description="FEIG bus address (255 = any reader).")
    card_reader: str | None = Field(None, description="NFC patron-card reader, e.g. nfc:usb")
    scanner: str | None = Field(None, description="Barcode scanner, e.g. serial:///dev/ttyACM0")
    card_number_pattern: str = Field(
        r"^[0-9A-Za-z]{4,20}$", description="Regular expression a patron card number must match."
    )
    card_check_digit: Literal["none", "luhn", "mod10", "gs1", "mod11"] = Field(
        "none", description="luhn (= mod10, Codabar library cards), gs1, or ISO 7064 mod11."
    )
    printer: str | None = Field(
        None, description="ESC/POS receipt printer, e.g. tcp://10.0.0.9:9100"
    )
    printer_width_mm: Literal[58, 80] = 80
    gate_readers: list[str] = Field(
        default_factory=list, description="Gate antennas' reader URLs; pedestal pairs take turns."
    )
    gate_reader_addresses: list[Byte] = Field(
        default_factory=list,
        description="FEIG bus address of each gate reader, in the order of gate_readers "
        "(default 255 = any reader). Readers on one RS-485 bus share a URL and need addresses "
        "of their own.",
    )
    alarm_output: str | None = Field(
        None, description="Alarm light/buzzer, e.g. gpio:17,27 or sim:"
    )
    people_counter: str | None = Field(None, description="Beam-pair people counter input.")

    @field_validator("card_number_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class BrokerSettings(_Section):
    """How the edge agent reaches the MQTT broker in front of the central system."""

    url: str = Field("mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/]+$")
    username: str | None = Field(
        None, description="Defaults to the device id when a password is set."
    )
    password: SecretStr | None = None
    ca_file: Path | None = Field(None, description="CA certificate that signed the broker's.")
    cert_file: Path | None = Field(None, description="Client certificate (CN = device id).")
    key_file: Path | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        le=2**32 - 1,
        description="MQTT v5 Session Expiry Interval: the broker keeps receipts for this long.",
    )
    reconnect_min_s: float = Field(
        0.5, gt=0, description="First reconnect delay; doubles (with jitter) on each failure."
    )
    reconnect_max_s: float = Field(60.0, gt=0, description="Longest reconnect delay.")


class AgentSettings(_Section):
    """The edge agent: outbox, delivery, caches, local API."""

    database: Path = Field(Path("var/agent.sqlite"), description="The outbox and caches.")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    api_host: str = Field("127.0.0.1", description="Loopback by default: the API is for this site.")
    api_port: int = Field(8080, ge=0, le=65535)
    api_socket: Path | None = Field(None, description="Serve on a unix socket instead of TCP.")
    api_token: SecretStr = Field(
        SecretStr("change-me"), description="Bearer token for every request that changes state."
    )
    outbox_max_events: int = Field(
        200_000, ge=100, description="Unconfirmed events before refusal."
    )
    retention_days: float = Field(7.0, gt=0, description="Confirmed events are pruned after this.")
    inflight_window: int = Field(
        64, ge=1, le=65535, description="QoS 1 messages in flight at once."
    )
    resend_after_s: float = Field(30.0, gt=0, description="Re-send an event unconfirmed this long.")
    request_timeout_s: float = Field(3.0, gt=0, description="Then the kiosk is told 'offline'.")
    receipt_window: int = Field(
        2000,
        ge=1,
        description="Events sent but not yet confirmed by central before sending pauses.",
    )
    status_interval_s: float = Field(
        60.0, gt=0, description="How often the retained device status is refreshed."
    )


class OfflinePolicy(_Section):
    """What the kiosk may do while the central system is unreachable."""

    allow_checkout: bool = True
    allow_checkin: bool = True
    max_items_per_patron: int = Field(5, ge=0)
    loan_days: int = Field(14, ge=1)
    admit_without_pin_check: bool = Field(
        True,
        description="Offline a PIN cannot be checked. With kiosk.pin_required, true admits a "
        "patron on the card alone (within these limits); false turns patrons away until the "
        "central system answers again.",
    )


class KioskSettings(_Section):
    """The self-service kiosk."""

    languages: list[Language] = Field(default_factory=lambda: list(get_args(Language)))
    default_language: Language = "vi"
    inactivity_timeout_s: int = Field(120, ge=15, description="Koha's default is 120 s.")
    pin_required: bool = False
    card_keypad_letters: bool = Field(
        False,
        description="Letter keys (ABC) on the keypad where a patron types a card number, for "
        "libraries whose card numbers have letters (student ids such as B20DCCN001).",
    )
    staff_pin: SecretStr = Field(SecretStr("0000"), description="Opens staff mode; change it.")
    receipt_default: Literal["print", "email", "none", "ask"] = "ask"
    fullscreen: bool = True
    agent_url: str = Field("http://127.0.0.1:8080", description="The local edge agent's API.")
    offline: OfflinePolicy = Field(default_factory=OfflinePolicy)


class GateSettings(_Section):
    """The security gate."""

    quiet_time_s: float = Field(2.0, gt=0, description="A pass ends after this long unseen.")
    visitor_interval_s: int = Field(
        3600, ge=10, description="Visitor counts are sent this often (seconds, at least 10)."
    )
    agent_url: str = Field(
        "http://127.0.0.1:8080",
        description="The local edge agent: its API (http://…), or its database file "
        "(sqlite:///var/agent.sqlite) when the gate hands events over through the file.",
    )
    alarm_duration_s: float = Field(
        3.0, gt=0, le=60, description="Light and sound stay on this long after the last trigger."
    )
    identify_before_alarm: bool = Field(
        True,
        description="Read a secured tag the gate does not know before alarming (tens of ms), "
        "so foreign items, patron cards and loans whose tag could not be switched stay silent; "
        "false alarms from the AFI/EAS alone (fastest).",
    )
    identify_blocks: int = Field(
        8, ge=1, le=64, description="Blocks read first to identify a tag (the rest only if needed)."
    )
    full_scan_every: int = Field(
        4,
        ge=0,
        description="Every Nth poll also lists unsecured tags, so an item the cache says is "
        "back on the shelf is caught (0: never). With use_eas every poll lists all tags.",
    )
    reader_timeout_s: float = Field(
        0.3, gt=0, le=5, description="Longest wait for one reader reply before it counts as lost."
    )
    turn_groups: list[list[int]] = Field(
        default_factory=list,
        description="Readers (indexes into devices.gate_readers) that take turns because their "
        "fields overlap; each group is polled by its own thread. Empty: all readers take turns.",
    )
    antenna_names: list[str] = Field(
        default_factory=list,
        description="Names for devices.gate_readers in events (default antenna-1, antenna-2, …).",
    )
    data_dir: Path = Field(
        Path("var/gate"), description="The gate's hand-over queue and health file."
    )
    handover_max_events: int = Field(
        100_000, ge=100, description="Events kept for the agent before the queue reports full."
    )
    cache_refresh_s: float = Field(
        60.0, gt=0, description="How often the item states are fetched from the edge agent."
    )
    health_interval_s: float = Field(
        10.0, gt=0, description="How often the health snapshot is written and reported."
    )


class LibedgeSettings(BaseSettings):
    """All sections of a site's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="LIBEDGE_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    site: SiteSettings = Field(default_factory=SiteSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    devices: DevicesSettings = Field(default_factory=DevicesSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    kiosk: KioskSettings = Field(default_factory=KioskSettings)
    gate: GateSettings = Field(default_factory=GateSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Let the environment override the file (the file's values arrive as init values)."""
        return (env_settings, init_settings)

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, every secret shown as '**********'."""
        return self.model_dump(mode="json")


#: Sections the ``config`` environment variable LIBEDGE_CONFIG may point a file at.
CONFIG_ENV = "LIBEDGE_CONFIG"
SYSTEM_CONFIG = Path("/etc/libedge/libedge.toml")


def default_config_path() -> Path | None:
    """The file to read when none is given: $LIBEDGE_CONFIG, else /etc/libedge/libedge.toml."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


#: Keys whose values never appear in an error message or a log line.
_SECRET_KEYS = frozenset({"password", "api_token", "staff_pin"})


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_config(path: Path | str | None = None) -> LibedgeSettings:
    """Read the configuration file (if any) and the environment; ConfigError names the key."""
    file = Path(path) if path is not None else default_config_path()
    data: dict[str, Any] = {}
    source = "the environment"
    if file is not None:
        source = str(file)
        try:
            with file.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"{file}: no such configuration file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from exc
    try:
        return LibedgeSettings(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(err["loc"])
            got = err.get("input")
            detail = err["msg"]
            if err["type"] == "extra_forbidden":
                detail = "unknown key (check the spelling against config/example.toml)"
            elif err["loc"] and str(err["loc"][-1]) in _SECRET_KEYS:
                detail = f"{detail} (value not shown: it is a secret)"
            elif not isinstance(got, dict):
                detail = f"{detail} (got {got!r})"
            problems.append(f"{where}: {detail}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from exc
