"""FeigReader over ``socket://`` against the simulated reader: large replies read by their header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardware.feig import FeigReader, Transport
from hardware.feig.frames import FrameDecoder, encode_request
from hardware.feig.transport import open_serial_transport
from hardware.ports import LineSettings
from simulators.reader import FeigSimulator, RFField, SimTag

TAGS = 45


@pytest.fixture
def crowded() -> Iterator[FeigSimulator]:
    """A simulated reader on TCP with 45 tags in its field (a 459-byte advanced reply)."""
    field = RFField([SimTag.from_item(f"3100{i:04d}") for i in range(TAGS)])
    sim = FeigSimulator(field)
    sim.start_tcp()
    yield sim
    sim.stop()


class CountingPort:
    """A real port that counts the driver's read calls (to see it read whole frames)."""

    def __init__(self, port: Transport) -> None:
        self.port = port
        self.reads = 0

    @property
    def timeout(self) -> float | None:
        """Read timeout in seconds."""
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.port.timeout = value

    @property
    def in_waiting(self) -> int:
        """Bytes waiting, as the real port reports them."""
        return self.port.in_waiting

    def read(self, size: int = 1, /) -> bytes:
        """Read and count."""
        self.reads += 1
        return self.port.read(size)

    def write(self, data: bytes, /) -> int | None:
        """Write through."""
        return self.port.write(data)

    def reset_input_buffer(self) -> None:
        """Discard through."""
        self.port.reset_input_buffer()

    def close(self) -> None:
        """Close through."""
        self.port.close()


def test_inventory_of_45_tags_over_tcp_arrives_within_a_short_timeout(
    crowded: FeigSimulator,
) -> None:
    """A 45-tag inventory over socket:// returns every tag, 20 times running, with a 0.3 s timeout."""
    with FeigReader(crowded.url, timeout=0.3) as reader:
        for _ in range(20):
            uids = {entry.uid for entry in reader.inventory()}
            assert len(uids) == TAGS


def test_large_reply_is_read_in_a_few_header_sized_reads(crowded: FeigSimulator) -> None:
    """The driver reads a 45-tag reply in at most 4 reads, not byte by byte."""
    ports: list[CountingPort] = []

    def opener(url: str, line: LineSettings, timeout: float) -> Transport:
        port = CountingPort(open_serial_transport(url, line, timeout))
        ports.append(port)
        return port

    with FeigReader(crowded.url, timeout=0.3, opener=opener) as reader:
        for _ in range(5):
            assert len(reader.inventory()) == TAGS
    # STX (1 byte), the rest of the header (2), the rest of the frame (1): 4 reads at most.
    assert 5 <= ports[0].reads <= 5 * 4


def test_decoder_needed_follows_the_standard_and_advanced_headers() -> None:
    """needed() is 1 when empty, the header's remainder for STX, then what LEN/ALEN still lack."""
    decoder = FrameDecoder()
    assert decoder.needed() == 1
    standard = encode_request(0x00, 0xB0, bytes(20))
    decoder.feed(standard[:5])
    assert decoder.next_frame() is None
    assert decoder.needed() == len(standard) - 5
    decoder.clear()
    advanced = encode_request(0x00, 0xB0, bytes(300))
    decoder.feed(advanced[:1])
    assert decoder.needed() == 2
    decoder.feed(advanced[1:10])
    assert decoder.next_frame() is None
    assert decoder.needed() == len(advanced) - 10
    decoder.feed(advanced[10:])
    assert decoder.next_frame() is not None
    assert decoder.needed() == 1


def test_decoder_needed_is_one_after_garbage() -> None:
    """Garbage whose length byte is out of range asks for one byte at a time, never zero."""
    decoder = FrameDecoder()
    decoder.feed(b"\x01\x03")
    assert decoder.needed() == 1
    assert decoder.next_frame() is None
    assert decoder.needed() == 1
