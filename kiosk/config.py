"""The kiosk controller's settings, taken from the site configuration (plus a few timings).

:meth:`KioskConfig.from_settings` reads the ``[kiosk]``, ``[site]``, ``[security]`` and
``[devices]`` sections of :class:`~edge_agent.config.LibedgeSettings`; the timings below are
not in the file because the defaults suit every library we know of, and tests shorten them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from edge_agent.config import LibedgeSettings, OfflinePolicy
from hardware.scanner import CardNumberRule
from hardware.tags import SecurityConfig

__all__ = ["KioskConfig"]

ReceiptDefault = Literal["print", "email", "none", "ask"]


@dataclass(frozen=True, slots=True)
class KioskConfig:
    """Everything the controller needs to know about this kiosk and this library."""

    library_name: str = "libedge"
    home_isil: str | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    languages: tuple[str, ...] = ("vi", "en")
    default_language: str = "vi"
    inactivity_timeout_s: float = 120.0
    pin_required: bool = False
    #: Letter keys on the card-number keypad (card numbers with letters).
    card_keypad_letters: bool = False
    staff_pin: SecretStr = field(default_factory=lambda: SecretStr("0000"))
    receipt_default: ReceiptDefault = "ask"
    offline: OfflinePolicy = field(default_factory=OfflinePolicy)
    card_rule: CardNumberRule = field(default_factory=CardNumberRule)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    #: How often the pad is read while items are expected, and on the attract screen.
    scan_interval_s: float = 0.3
    attract_scan_interval_s: float = 1.0
    #: How often the agent's link state is refreshed for the offline banner.
    status_interval_s: float = 15.0
    #: How often unresolved intents are retried while the kiosk is idle.
    recovery_interval_s: float = 60.0
    goodbye_s: float = 5.0
    notice_s: float = 8.0
    countdown_from_s: float = 30.0
    max_wrong_pins: int = 3

    def __post_init__(self) -> None:
        if self.default_language not in self.languages:
            raise ValueError(
                f"default language {self.default_language!r} is not among {self.languages}"
            )
        if self.inactivity_timeout_s <= 0:
            raise ValueError("inactivity_timeout_s must be positive")

    @classmethod
    def from_settings(cls, settings: LibedgeSettings) -> KioskConfig:
        """The kiosk's settings from the site configuration."""
        kiosk, site, security = settings.kiosk, settings.site, settings.security
        languages = tuple(dict.fromkeys(kiosk.languages)) or (kiosk.default_language,)
        if kiosk.default_language not in languages:
            languages = (kiosk.default_language, *languages)
        return cls(
            library_name=site.library_name,
            home_isil=site.isil,
            timezone=ZoneInfo(site.timezone),
            languages=languages,
            default_language=kiosk.default_language,
            inactivity_timeout_s=float(kiosk.inactivity_timeout_s),
            pin_required=kiosk.pin_required,
            card_keypad_letters=kiosk.card_keypad_letters,
            staff_pin=kiosk.staff_pin,
            receipt_default=kiosk.receipt_default,
            offline=kiosk.offline,
            card_rule=CardNumberRule(
                pattern=settings.devices.card_number_pattern,
                check_digit=settings.devices.card_check_digit,
            ),
            security=SecurityConfig(
                secured_afi=security.secured_afi,
                unsecured_afi=security.unsecured_afi,
                use_afi=security.use_afi,
                use_eas=security.use_eas,
            ),
        )
