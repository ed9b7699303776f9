"""The gate's options from a site file: reader addresses, and readers that share one bus.

Readers that repeat a URL share its port (an RS-485 bus). Such readers need bus addresses
of their own and one turn group; a port named twice with different line settings is a
mistake. Every refusal names the configuration key and the readers concerned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config
from gate.errors import GateConfigError
from gate.options import ANY_READER, GateOptions

BUS = "serial:///dev/ttyUSB0?baud=38400&parity=E"


def options(tmp_path: Path, devices: str, gate: str = "") -> GateOptions:
    """Load a site file with these [devices] and [gate] lines and build the gate's options."""
    path = tmp_path / "site.toml"
    path.write_text(f"[devices]\n{devices}\n[gate]\n{gate}\n", encoding="utf-8")
    return GateOptions.from_settings(load_config(path))


def test_addresses_go_with_readers_in_order_and_default_to_any_reader(tmp_path: Path) -> None:
    """Given addresses apply in order; readers without one answer at 255 (any reader)."""
    got = options(
        tmp_path,
        'gate_readers = ["socket://10.0.0.5:10001", "socket://10.0.0.6:10001"]\n'
        "gate_reader_addresses = [3]",
    )
    assert [(r.url, r.address) for r in got.readers] == [
        ("socket://10.0.0.5:10001", 3),
        ("socket://10.0.0.6:10001", ANY_READER),
    ]


def test_readers_on_one_bus_with_their_own_addresses_are_accepted(tmp_path: Path) -> None:
    """Two readers repeating one URL at addresses 1 and 2, in the default single group."""
    got = options(tmp_path, f'gate_readers = ["{BUS}", "{BUS}"]\ngate_reader_addresses = [1, 2]')
    assert [(r.url, r.address) for r in got.readers] == [(BUS, 1), (BUS, 2)]
    assert got.groups == ((0, 1),)


@pytest.mark.parametrize(
    ("devices", "gate", "expected"),
    [
        (
            f'gate_readers = ["{BUS}", "{BUS}"]\ngate_reader_addresses = [1]',
            "",
            r"devices\.gate_reader_addresses: readers 0, 1 share '/dev/ttyUSB0'.*reader 1 has none",
        ),
        (
            f'gate_readers = ["{BUS}", "{BUS}"]\ngate_reader_addresses = [4, 4]',
            "",
            r"readers 0 and 1 on '/dev/ttyUSB0' both have bus address 4",
        ),
        (
            f'gate_readers = ["{BUS}", "{BUS}"]\ngate_reader_addresses = [1, 2]',
            "turn_groups = [[0], [1]]",
            r"gate\.turn_groups: readers 0, 1 share '/dev/ttyUSB0'.*one turn group",
        ),
        (
            f'gate_readers = ["{BUS}", "serial:///dev/ttyUSB0?baud=9600"]\n'
            "gate_reader_addresses = [1, 2]",
            r"",
            r"devices\.gate_readers: readers 0, 1 name the port '/dev/ttyUSB0' with different",
        ),
        (
            'gate_readers = ["socket://10.0.0.5:10001"]\ngate_reader_addresses = [1, 2]',
            "",
            r"devices\.gate_reader_addresses: 2 addresses for 1 readers",
        ),
        (
            'gate_readers = ["serial:///dev/ttyUSB0?baud=fast"]',
            "",
            r"devices\.gate_readers\[0\]: .*baud must be a whole number",
        ),
    ],
    ids=["no-address", "same-address", "two-groups", "two-settings", "too-many", "bad-url"],
)
def test_what_cannot_work_on_a_bus_is_refused_by_name(
    tmp_path: Path, devices: str, gate: str, expected: str
) -> None:
    """Each mistake is refused with the key and the readers it concerns."""
    with pytest.raises(GateConfigError, match=expected):
        options(tmp_path, devices, gate)


def test_an_address_above_255_is_refused_by_the_loader(tmp_path: Path) -> None:
    """The configuration itself refuses an address that is not a byte, naming the key."""
    with pytest.raises(ConfigError, match="gate_reader_addresses"):
        options(
            tmp_path, 'gate_readers = ["socket://10.0.0.5:10001"]\ngate_reader_addresses = [256]'
        )
