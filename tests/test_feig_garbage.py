"""Property tests: garbage into every FEIG parser and into the driver, only ReaderErrors out."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.feig import FeigReader
from hardware.feig import commands as cmd
from hardware.reader import FrameError, ReaderError
from tests.test_feig_fakes import CAPTURED_UID, FakeOpener, ScriptedTransport, reply_frame

PARSERS: dict[str, Callable[[bytes], object]] = {
    "inventory": cmd.parse_inventory,
    "block read": lambda data: cmd.parse_block_read(data, 0, cmd.BlockOrder.REVERSED),
    "system information": cmd.parse_system_info,
    "reader info": cmd.parse_reader_info,
}

OPERATIONS: dict[str, tuple[int, Callable[[FeigReader], object]]] = {
    "inventory": (0xB0, lambda r: r.inventory()),
    "inventory afi": (0xB0, lambda r: r.inventory(afi=0x07)),
    "read blocks": (0xB0, lambda r: r.read_blocks(CAPTURED_UID, 0, 4)),
    "write blocks": (0xB0, lambda r: r.write_blocks(CAPTURED_UID, 0, [bytes(4)])),
    "system info": (0xB0, lambda r: r.system_info(CAPTURED_UID)),
    "write afi": (0xB0, lambda r: r.write_afi(CAPTURED_UID, 0xC2)),
    "set eas": (0xB1, lambda r: r.set_eas(CAPTURED_UID)),
    "eas alarm": (0xB1, lambda r: r.eas_alarm()),
    "rf reset": (0x69, lambda r: r.rf_reset()),
    "reader info": (0x65, lambda r: r.reader_info()),
}


@given(st.sampled_from(sorted(PARSERS)), st.binary(max_size=400))
def test_reply_data_parsers_raise_only_frame_errors(name: str, data: bytes) -> None:
    """Each reply-data parser either returns a value or raises FrameError for any bytes."""
    with contextlib.suppress(FrameError):
        PARSERS[name](data)


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(OPERATIONS)),
    st.integers(0, 255),
    st.integers(0, 254),
    st.binary(max_size=120),
)
def test_driver_raises_only_reader_errors_for_any_reply(
    name: str, status: int, address: int, data: bytes
) -> None:
    """Any well-framed reply (any status, any data) yields a result or a ReaderError."""
    command, operation = OPERATIONS[name]
    port = ScriptedTransport([reply_frame(address, command, status, data)])
    reader = FeigReader("fake://r", opener=FakeOpener(port))
    with contextlib.suppress(ReaderError):
        operation(reader)


@given(st.sampled_from(sorted(OPERATIONS)), st.lists(st.binary(max_size=64), max_size=6))
def test_driver_raises_only_reader_errors_for_line_noise(name: str, chunks: list[bytes]) -> None:
    """Arbitrary bytes on the line yield a result or a ReaderError, never anything else."""
    _, operation = OPERATIONS[name]
    port = ScriptedTransport([chunks])
    reader = FeigReader("fake://r", opener=FakeOpener(port))
    with contextlib.suppress(ReaderError):
        operation(reader)
