"""The gate's settings as plain values, checked across sections of the site configuration.

:func:`GateOptions.from_settings` reads ``[site]``, ``[security]``, ``[devices]`` and
``[gate]`` and refuses (:class:`~gate.errors.GateConfigError`, naming the key) what cannot
work: no readers, a turn group naming a reader that does not exist or naming one twice,
more antenna names or bus addresses than readers, and readers sharing one port (an RS-485
bus, given by repeating its URL) without an address each or outside one turn group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config import LibedgeSettings
from gate.decide import Rules
from gate.errors import GateConfigError
from hardware.ports import LineSettings, PortURLError, parse_line_settings
from hardware.tags import SecurityConfig

__all__ = ["ANY_READER", "GateOptions", "ReaderSpec"]


#: The FEIG bus address every reader answers to (any reader).
ANY_READER = 0xFF


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """One antenna: its name in events, its reader's URL and its reader's bus address."""

    name: str
    url: str
    address: int = ANY_READER


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
        addresses = list(devices.gate_reader_addresses)
        if len(addresses) > len(urls):
            raise GateConfigError(
                f"devices.gate_reader_addresses: {len(addresses)} addresses for {len(urls)} readers"
            )
        addresses += [ANY_READER] * (len(urls) - len(addresses))
        readers = tuple(
            ReaderSpec(name, url, address)
            for name, url, address in zip(names, urls, addresses, strict=True)
        )
        groups = _groups(gate.turn_groups, len(urls))
        _check_buses(readers, groups)
        return cls(
            device_id=settings.site.device_id,
            readers=readers,
            groups=groups,
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


def _check_buses(readers: tuple[ReaderSpec, ...], groups: tuple[tuple[int, ...], ...]) -> None:
    """Readers that repeat a URL share one port (an RS-485 bus): check they can.

    Only the addressed reader answers on a bus, so each needs an address of its own (255
    would make all of them answer at once); and the bus carries one exchange at a time, so
    they must take turns in one group. A port named twice with different line settings is a
    mistake either way.
    """
    group_of = {index: number for number, group in enumerate(groups) for index in group}
    for port, indexes in _ports(readers).items():
        urls = {readers[i].url for i in indexes}
        if len(urls) > 1:
            raise GateConfigError(
                f"devices.gate_readers: readers {_listed(indexes)} name the port {port!r} "
                f"with different settings ({', '.join(sorted(urls))}); readers on one bus "
                "repeat one URL"
            )
        if len(indexes) < 2:
            continue
        broadcast = [i for i in indexes if readers[i].address == ANY_READER]
        if broadcast:
            raise GateConfigError(
                f"devices.gate_reader_addresses: readers {_listed(indexes)} share {port!r}, so "
                f"each needs its own bus address (0..254); reader {broadcast[0]} has none (255)"
            )
        seen: dict[int, int] = {}
        for index in indexes:
            other = seen.setdefault(readers[index].address, index)
            if other != index:
                raise GateConfigError(
                    f"devices.gate_reader_addresses: readers {other} and {index} on {port!r} "
                    f"both have bus address {readers[index].address}"
                )
        if len({group_of[i] for i in indexes}) > 1:
            raise GateConfigError(
                f"gate.turn_groups: readers {_listed(indexes)} share {port!r}, which carries one "
                "exchange at a time; put them in one turn group"
            )


def _ports(readers: tuple[ReaderSpec, ...]) -> dict[str, list[int]]:
    """Reader indexes by the port their URL names (a serial URL's device, else the URL)."""
    ports: dict[str, list[int]] = {}
    for index, reader in enumerate(readers):
        try:
            port, _ = parse_line_settings(reader.url, LineSettings())
        except PortURLError as exc:
            raise GateConfigError(f"devices.gate_readers[{index}]: {exc}") from exc
        ports.setdefault(port, []).append(index)
    return ports


def _listed(indexes: list[int]) -> str:
    return ", ".join(str(i) for i in indexes)
