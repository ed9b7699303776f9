"""The gate's settings as plain values, checked across sections of the site configuration.

:func:`GateOptions.from_settings` reads ``[site]``, ``[security]``, ``[devices]`` and
``[gate]`` and refuses (:class:`~gate.errors.GateConfigError`, naming the key) what cannot
work: no readers, a turn group naming a reader that does not exist or naming one twice,
more antenna names than readers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config import LibedgeSettings
from gate.decide import Rules
from gate.errors import GateConfigError
from hardware.tags import SecurityConfig

__all__ = ["GateOptions", "ReaderSpec"]


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """One antenna: its name in events and its reader's URL."""

    name: str
    url: str
    address: int = 0xFF


@dataclass(frozen=True, slots=True)
class GateOptions:
    """Everything the gate service needs to start."""

    device_id: str
    readers: tuple[ReaderSpec, ...]
    #: Reader indexes per polling thread; readers in one group take turns.
    groups: tuple[tuple[int, ...], ...]
    security: SecurityConfig = field(default_factory=SecurityConfig)
    isil: str | None = None
    timezone: str = "UTC"
    quiet_time_s: float = 2.0
    alarm_duration_s: float = 3.0
    identify_before_alarm: bool = True
    identify_blocks: int = 8
    full_scan_every: int = 4
    reader_timeout_s: float = 0.3
    alarm_output: str | None = None
    people_counter: str | None = None
    agent_url: str = "http://127.0.0.1:8080"
    agent_token: str | None = None
    agent_max_events: int | None = None
    data_dir: Path = Path("var/gate")
    handover_max_events: int = 100_000
    visitor_interval_s: float = 3600.0
    cache_refresh_s: float = 60.0
    health_interval_s: float = 10.0

    @property
    def rules(self) -> Rules:
        """The decision rules these options imply."""
        return Rules(own_isil=self.isil, identify_first=self.identify_before_alarm)

    @classmethod
    def from_settings(cls, settings: LibedgeSettings) -> GateOptions:
        """Build and cross-check the options from a loaded configuration."""
        devices, gate, security = settings.devices, settings.gate, settings.security
        urls = devices.gate_readers
        if not urls:
            raise GateConfigError("devices.gate_readers: a gate needs at least one reader URL")
        names = list(gate.antenna_names)
        if len(names) > len(urls):
            raise GateConfigError(f"gate.antenna_names: {len(names)} names for {len(urls)} readers")
        if len(set(names)) != len(names):
            raise GateConfigError("gate.antenna_names: names must differ")
        names += [f"antenna-{i + 1}" for i in range(len(names), len(urls))]
        readers = tuple(ReaderSpec(name, url) for name, url in zip(names, urls, strict=True))
        return cls(
            device_id=settings.site.device_id,
            readers=readers,
            groups=_groups(gate.turn_groups, len(urls)),
            security=SecurityConfig(
                secured_afi=security.secured_afi,
                unsecured_afi=security.unsecured_afi,
                use_afi=security.use_afi,
                use_eas=security.use_eas,
            ),
            isil=settings.site.isil,
            timezone=settings.site.timezone,
            quiet_time_s=gate.quiet_time_s,
            alarm_duration_s=gate.alarm_duration_s,
            identify_before_alarm=gate.identify_before_alarm,
            identify_blocks=gate.identify_blocks,
            full_scan_every=gate.full_scan_every,
            reader_timeout_s=gate.reader_timeout_s,
            alarm_output=devices.alarm_output,
            people_counter=devices.people_counter,
            agent_url=gate.agent_url,
            agent_token=settings.agent.api_token.get_secret_value(),
            agent_max_events=settings.agent.outbox_max_events,
            data_dir=gate.data_dir,
            handover_max_events=gate.handover_max_events,
            visitor_interval_s=float(gate.visitor_interval_s),
            cache_refresh_s=gate.cache_refresh_s,
            health_interval_s=gate.health_interval_s,
        )


def _groups(configured: list[list[int]], count: int) -> tuple[tuple[int, ...], ...]:
    """Check the turn groups; readers in no group take turns with each other."""
    if not configured:
        return (tuple(range(count)),)
    seen: set[int] = set()
    groups: list[tuple[int, ...]] = []
    for number, group in enumerate(configured):
        if not group:
            raise GateConfigError(f"gate.turn_groups[{number}] is empty")
        for index in group:
            if not 0 <= index < count:
                raise GateConfigError(
                    f"gate.turn_groups[{number}]: reader {index} does not exist "
                    f"(devices.gate_readers has {count}, numbered from 0)"
                )
            if index in seen:
                raise GateConfigError(f"gate.turn_groups: reader {index} is in two groups")
            seen.add(index)
        groups.append(tuple(group))
    rest = tuple(i for i in range(count) if i not in seen)
    if rest:
        groups.append(rest)
    return tuple(groups)
