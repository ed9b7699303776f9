"""A simulated FEIG ID ISC reader (ISO Host protocol, ISO 15693 tags) on a pty or TCP socket.

The simulator replaces the reader at the transport: the driver opens the pty path (or a
``socket://`` URL) as it would open ``/dev/ttyUSB0``, and every byte it sends is parsed and
answered the way a real reader answers it, byte-exact with captured traffic. Tags are virtual
ISO 15693 chips with real memory; tests move them in and out of the antenna field from Python,
from a JSON-lines control socket, or from a scenario file, and fault switches (off by default)
reproduce what goes wrong in the field.

Written independently of ``hardware.feig`` (own framing, own CRC), so that a bug shared by
driver and simulator cannot hide. Modules: ``frames`` (CRC, parsing, framing), ``model`` and
``tag_commands`` (the command set), ``tags`` (SimTag, RFField), ``items`` (ISO 28560 content via
``hardware.tags``), ``faults``, ``ports`` (pty, TCP), ``server`` (FeigSimulator), ``specs``,
``control`` (control socket), ``scenario`` (scenario files), ``cli`` (``libedge sim reader``).
"""

from simulators.reader.faults import Faults
from simulators.reader.model import AirTiming
from simulators.reader.server import FeigSimulator
from simulators.reader.tags import RFField, SimTag, TagState

__all__ = ["AirTiming", "Faults", "FeigSimulator", "RFField", "SimTag", "TagState"]
