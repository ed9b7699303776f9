"""The simulated reader's JSON-lines control socket, driven over a real TCP connection."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from simulators.reader import Faults, FeigSimulator, RFField
from simulators.reader.control import ControlServer, handle_message
from tests.test_sim_reader_wire import (
    CAPTURED_UID,
    INVENTORY_REQUEST,
    NO_TAG_REPLY,
    ONE_TAG_REPLY,
    Wire,
    data_of,
)

CAPTURED = {"uid": "E0 16 80 FF 08 00 50 24", "dsfid": 0}


class Client:
    """A control client speaking JSON lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.sock.makefile("rb")

    def send_raw(self, line: bytes) -> dict[str, Any]:
        self.sock.sendall(line + b"\n")
        answer = self.reader.readline()
        assert answer.endswith(b"\n"), f"no answer line, got {answer!r}"
        decoded: dict[str, Any] = json.loads(answer)
        return decoded

    def send(self, **message: Any) -> dict[str, Any]:
        return self.send_raw(json.dumps(message).encode())

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@contextmanager
def controlled() -> Iterator[tuple[FeigSimulator, Wire, Client]]:
    """A simulator on a pty, a control server for it, a control client and a host wire."""
    field = RFField()
    with FeigSimulator(field) as sim:
        wire = Wire.pty(sim.start_pty())
        with ControlServer(field, sim.faults, sim) as server:
            client = Client(server.start())
            try:
                yield sim, wire, client
            finally:
                client.close()
                wire.close()


def test_place_list_remove_clear_while_the_reader_polls() -> None:
    """Tags placed and removed over the control socket show up in the reader's inventory."""
    with controlled() as (_sim, wire, client):
        answer = client.send(op="place", tag=CAPTURED)
        assert answer == {"ok": True, "uids": [CAPTURED_UID.hex().upper()]}
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY
        listed = client.send(op="list")
        assert [t["uid"] for t in listed["tags"]] == ["E01680FF08005024"]
        assert listed["tags"][0]["memory"] == "00" * 112
        assert client.send(op="remove", uid="E01680FF08005024") == {"ok": True}
        assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        client.send(op="place", tags=[CAPTURED, {"uid": "E004010000000001", "memory": "11 22"}])
        assert data_of(wire.exchange(INVENTORY_REQUEST))[0] == 2
        got = client.send(op="get", uid="E004010000000001")
        assert got["tag"]["memory"].startswith("1122000000")
        assert client.send(op="clear") == {"ok": True}
        assert client.send(op="list") == {"ok": True, "tags": []}


def test_place_by_item_encodes_iso28560() -> None:
    """A tag placed by item id holds the ISO 28560-2 encoding and the secured registers."""
    with controlled() as (_sim, _wire, client):
        answer = client.send(op="place", tag={"item_id": "123456789012", "uid": "E004010203040506"})
        assert answer["ok"], answer
        tag = client.send(op="get", uid="E004010203040506")["tag"]
        assert tag["memory"].startswith("11051CBE991A1400")  # PII 123456789012, integer
        assert (tag["afi"], tag["dsfid"], tag["eas"]) == (0x07, 0x06, True)


def test_fault_switches_and_counters() -> None:
    """Faults change by name or in bulk and show in the next reply; counters are reported."""
    with controlled() as (sim, wire, client):
        answer = client.send(op="fault", name="corrupt_crc", value=1.0)
        assert answer["ok"]
        assert answer["faults"]["corrupt_crc"] == 1.0
        wire.write(INVENTORY_REQUEST)
        assert wire.read_exact(6)[-2:] != NO_TAG_REPLY[-2:]
        client.send(op="fault", faults={"corrupt_crc": 0, "reply_delay": 0})
        assert wire.exchange(INVENTORY_REQUEST) == NO_TAG_REPLY
        assert sim.faults.corrupt_crc == 0.0
        counters = client.send(op="counters")["counters"]
        assert counters["frames_received"] == 2
        assert client.send(op="faults")["faults"]["corrupt_crc"] == 0.0


def test_unplug_and_replug_over_control() -> None:
    """unplug/replug ops (and the unplugged switch) move the port; replug answers the path."""
    with controlled() as (sim, _wire, client):
        assert client.send(op="unplug") == {"ok": True}
        assert not sim.plugged
        answer = client.send(op="replug")
        assert answer["ok"]
        assert answer["endpoint"] == sim.endpoint
        assert client.send(op="fault", name="unplugged", value=True)["ok"]
        assert not sim.plugged
        assert client.send(op="fault", faults={"unplugged": False})["ok"]
        assert sim.plugged


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"tag": {}}', "no 'op'"),
        (b'{"op": "dance"}', "'dance'"),
        (b'{"op": "place"}', "exactly one of 'tag' or 'tags'"),
        (b'{"op": "place", "tag": {"uid": "E004"}}', "uid must be 8 bytes"),
        (b'{"op": "place", "tag": {"uid": "zz"}}', "uid is not hex"),
        (b'{"op": "place", "tag": {"memory": "00"}}', "item_id"),
        (b'{"op": "place", "tag": {"uid": "E004010203040506", "colour": 1}}', "colour"),
        (
            b'{"op": "place", "tag": {"uid": "E004010203040506", "memory": "'
            + b"00" * 200
            + b'"}}',
            "does not fit",
        ),
        (b'{"op": "place", "tag": {"item_id": "x", "locked_blocks": [99]}}', "locked_blocks"),
        (b'{"op": "remove"}', "exactly one of 'uid' or 'uids'"),
        (b'{"op": "remove", "uid": "E0"}', "8 bytes"),
        (b'{"op": "get", "uid": "E004010203040599"}', "no tag"),
        (b'{"op": "fault", "name": "corrupt_crc", "value": 7}', "probability"),
        (b'{"op": "fault", "name": "nonsense", "value": true}', "unknown fault 'nonsense'"),
        (b'{"op": "fault", "name": "unplugged", "value": "maybe"}', "switch"),
        (b'{"op": "fault"}', "'name' and 'value'"),
        (b"\xff\xfe", "malformed JSON"),
    ],
)
def test_malformed_messages_get_an_error_naming_the_problem(line: bytes, error: str) -> None:
    """Each malformed message gets ok=false with a message naming the problem; serving goes on."""
    with controlled() as (_sim, wire, client):
        answer = client.send_raw(line)
        assert answer["ok"] is False
        assert error in answer["error"]
        assert client.send(op="place", tag=CAPTURED)["ok"]
        assert wire.exchange(INVENTORY_REQUEST) == ONE_TAG_REPLY


def test_overlong_line_closes_only_that_client() -> None:
    """A line beyond max_line gets an error and a hang-up; other clients are still served."""
    field = RFField()
    with ControlServer(field, Faults(), max_line=1000) as server:
        port = server.start()
        flooder, other = Client(port), Client(port)
        try:
            flooder.sock.sendall(b"x" * 5000)
            answer = json.loads(flooder.reader.readline())
            assert answer["ok"] is False
            assert "longer than 1000" in answer["error"]
            assert flooder.reader.readline() == b""
            assert other.send(op="list") == {"ok": True, "tags": []}
        finally:
            flooder.close()
            other.close()


def test_ops_that_need_a_simulator_say_so() -> None:
    """Without a simulator attached, counters/unplug/replug answer a clear error."""
    answer = handle_message(b'{"op": "counters"}', RFField(), Faults())
    assert answer == {
        "ok": False,
        "error": "counters: no simulator is attached to this control socket",
    }
