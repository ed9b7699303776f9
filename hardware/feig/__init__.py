"""FEIG ID ISC item readers (OBID i-scan) speaking FEIG's binary ISO Host protocol.

Layered like nfcpy's chipset drivers: :mod:`.crc` (the checksum), :mod:`.frames` (framing and
a resynchronising stream decoder), :mod:`.status` (status codes and the errors they raise),
:mod:`.commands` (request data and reply parsing as pure functions), :mod:`.transport`
(what the driver needs from a port), :mod:`.driver` (:class:`FeigReader`, the I/O,
implementing :class:`hardware.reader.ItemReader`) and :mod:`.bus` (one RS-485 port shared by
the drivers of several readers).
"""

from hardware.feig.commands import BlockOrder
from hardware.feig.driver import BROADCAST, FeigReader
from hardware.feig.transport import PortOpener, Transport

__all__ = ["BROADCAST", "BlockOrder", "FeigReader", "PortOpener", "Transport"]
