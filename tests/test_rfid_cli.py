"""``libedge rfid``: in-process through edge_agent.cli.main and as the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import main
from simulators.reader import FeigSimulator, RFField, SimTag

LIBEDGE = str(Path(sys.executable).with_name("libedge"))

MODEL2_EXAMPLE = (
    "91 00 05 1C BE 99 1A 14 02 01 D0 14 02 04 B3 46 07 44 1C B6 E2 E3 35 D6 "
    "83 02 07 AC C0 9E BA A0 6F 6B 00 00"
)
MODEL3_EXAMPLE = (
    "11 01 01 31 31 32 32 33 33 34 34 00 00 00 00 00 00 00 00 51 3E 44 45 37 30 35 "
    "00 00 00 00 00 00"
)


@pytest.fixture
def field() -> RFField:
    """Two library items on the pad: one secured (shelf), one on loan."""
    return RFField(
        [
            SimTag.from_item("30001", model="2", isil="DE-Heu1", title="Truyện Kiều", secured=True),
            SimTag.from_item("30002", model="2", secured=False),
        ]
    )


@pytest.fixture(params=["pty", "tcp"])
def reader_url(request: pytest.FixtureRequest, field: RFField) -> Iterator[str]:
    """A simulated reader serving ``field`` on a pty or TCP; yields the URL to give --url."""
    with FeigSimulator(field, air_time=False) as sim:
        if request.param == "pty":
            yield sim.start_pty()
        else:
            yield f"socket://127.0.0.1:{sim.start_tcp(port=0)}"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["rfid", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_read_json_prints_the_simulated_tags_decoded(
    capsys: pytest.CaptureFixture[str], reader_url: str, field: RFField
) -> None:
    """``rfid read --json`` prints both items decoded, with their security state."""
    code, out, err = run_cli(capsys, "read", "--url", reader_url, "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    by_id = {t["item"]["primary_item_id"]: t for t in report["tags"]}
    assert set(by_id) == {"30001", "30002"}
    assert by_id["30001"]["security"] == "secured"
    assert by_id["30001"]["item"]["title"] == "Truyện Kiều"
    assert by_id["30001"]["item"]["owner_institution"] == "DE-Heu1"
    assert by_id["30002"]["security"] == "unsecured"
    assert {t["uid"] for t in report["tags"]} == {t.uid.hex().upper() for t in field.tags()}
    assert report["lost"] == []


def test_read_through_the_console_script(reader_url: str) -> None:
    """The installed ``libedge rfid read --url … --json`` prints the decoded tags."""
    done = subprocess.run(
        [LIBEDGE, "rfid", "read", "--url", reader_url, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ids = sorted(t["item"]["primary_item_id"] for t in json.loads(done.stdout)["tags"])
    assert ids == ["30001", "30002"]


def test_inventory_and_info_text(capsys: pytest.CaptureFixture[str], reader_url: str) -> None:
    """``inventory`` lists one line per UID; ``info`` names the firmware version."""
    code, out, _ = run_cli(capsys, "inventory", "--url", reader_url)
    assert code == 0
    assert len(out.strip().splitlines()) == 2
    assert all(line.startswith("E0") for line in out.splitlines())
    code, out, _ = run_cli(capsys, "info", "--url", reader_url)
    assert code == 0
    assert "firmware 3.3" in out


def test_unsecure_and_secure_switch_the_tag(
    capsys: pytest.CaptureFixture[str], reader_url: str, field: RFField
) -> None:
    """``unsecure UID`` checks the item out (AFI 0xC2, verified); ``secure`` brings it back."""
    tag = next(t for t in field.tags() if t.afi == 0x07)
    uid = tag.uid.hex().upper()
    code, out, _ = run_cli(capsys, "unsecure", "--url", reader_url, uid, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["verified"] is True
    assert (result["afi_before"], result["afi_after"]) == (0x07, 0xC2)
    assert tag.afi == 0xC2
    code, out, _ = run_cli(capsys, "secure", "--url", reader_url, uid)
    assert code == 0
    assert "secured and verified" in out
    assert tag.afi == 0x07


def test_failed_verification_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """A write that does not stick makes ``unsecure`` print NOT unsecured and exit 1."""
    tag = SimTag.from_item("40001", secured=True)
    with FeigSimulator(RFField([tag]), air_time=False) as sim:
        sim.faults.write_does_not_stick = True
        url = f"socket://127.0.0.1:{sim.start_tcp(port=0)}"
        code, out, _ = run_cli(capsys, "unsecure", "--url", url, tag.uid.hex(), "--retries", "1")
    assert code == 1
    assert "NOT unsecured" in out
    assert "expected 0xC2" in out


def test_custom_afi_values_are_used(capsys: pytest.CaptureFixture[str]) -> None:
    """--secured-afi/--unsecured-afi apply a library's own convention (Danish 0x07/0x21)."""
    tag = SimTag.from_item("40002", secured=True)
    with FeigSimulator(RFField([tag]), air_time=False) as sim:
        url = f"socket://127.0.0.1:{sim.start_tcp(port=0)}"
        code, _, _ = run_cli(
            capsys, "unsecure", "--url", url, tag.uid.hex(), "--unsecured-afi", "0x21"
        )
    assert code == 0
    assert tag.afi == 0x21


def test_decode_the_worked_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """``decode`` reads the facts doc's ISO 28560-2 and -3 examples."""
    code, out, _ = run_cli(capsys, "decode", MODEL2_EXAMPLE, "--model", "2", "--json")
    assert code == 0
    item = json.loads(out)["item"]
    assert item["primary_item_id"] == "123456789012"
    assert item["owner_institution"] == "US-InU-Mu"
    assert item["shelf_location"] == "QA268.L55"
    assert item["set_info"] == {"parts": 12, "part": 3}
    code, out, _ = run_cli(capsys, "decode", MODEL3_EXAMPLE)
    assert code == 0
    assert out.startswith("iso28560-3: item 11223344")


def test_encode_then_decode_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    """What ``encode`` prints, ``decode`` reads back to the same item."""
    code, out, _ = run_cli(
        capsys, "encode", "--model", "2", "--item", "123456", "--isil", "VN-HN01", "--json"
    )
    assert code == 0
    memory = json.loads(out)["memory"]
    code, out, _ = run_cli(capsys, "decode", memory, "--json")
    assert code == 0
    item = json.loads(out)["item"]
    assert (item["primary_item_id"], item["owner_institution"]) == ("123456", "VN-HN01")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "--url", "/dev/libedge-no-such-reader"], "cannot open reader port"),
        (["read", "--url", "serial:///dev/ttyUSB0?speed=1"], "unknown serial setting"),
        (["secure", "--url", "loop://", "E0FF"], "UID 'E0FF' has 2 bytes"),
        (["decode", "zz"], "is not hexadecimal"),
        (["decode", "00 00 00 00"], "not ISO 28560-2 or -3"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Each failure prints one line naming the problem on stderr and exits 1."""
    code, out, err = run_cli(capsys, *argv)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert err.startswith(f"libedge rfid {argv[0]}: error:")


def test_silent_reader_times_out_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    """A loopback that only echoes gives a one-line timeout message, exit 1."""
    code, _, err = run_cli(capsys, "inventory", "--url", "loop://", "--timeout", "0.1")
    assert code == 1
    assert "no reply to command 0xB0" in err
    assert "echo of the request" in err
