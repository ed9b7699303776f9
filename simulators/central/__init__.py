"""The simulated central library system: the receiving side of every device's events.

``libedge sim central`` (or :class:`CentralSimulator` from Python) consumes every device's
uplink through an MQTT v5 shared subscription, so several instances share the load:

- events are validated against :mod:`edge_agent.contract`, stored once per ``(device_id, seq)``
  in SQLite (WAL, ``synchronous=FULL``), checked for sequence gaps, applied to a circulation
  model, and acknowledged with a :class:`~edge_agent.contract.DeliveryReceipt` after the commit;
- requests are answered on the request's response topic with its correlation data, from a
  catalogue, patrons, loans, holds and fines loaded from a seed file (a default one ships here);
- retained, versioned cache updates (patron blocks, item states, loan policy) are pushed to
  every known device and re-pushed, rate-limited, when the state they reflect changes;
- staff commands can be sent to a device.

Modules: :mod:`.seed` (seed files, PINs), :mod:`.store` (database), :mod:`.ingest` (message
classification), :mod:`.pipeline` (one pass: store, then receipts; answering), :mod:`.circulation`
(what events do), :mod:`.answers` (what requests get), :mod:`.caches` (what devices keep),
:mod:`.queries` (read-only records), :mod:`.api` (queries, waiting, staff actions, commands),
:mod:`.simulator` (threads and MQTT), :mod:`.mqtt` (broker URLs, clients), :mod:`.cli`.
Errors: :mod:`.errors`.
"""

from .errors import BrokerUnavailableError, CentralError, SeedError
from .queries import (
    CentralStats,
    DeviceInfo,
    Gap,
    ItemRecord,
    RejectedMessage,
    StaffException,
    StoredEvent,
)
from .seed import Seed, load_seed
from .simulator import CentralSimulator

__all__ = [
    "BrokerUnavailableError",
    "CentralError",
    "CentralSimulator",
    "CentralStats",
    "DeviceInfo",
    "Gap",
    "ItemRecord",
    "RejectedMessage",
    "Seed",
    "SeedError",
    "StaffException",
    "StoredEvent",
    "load_seed",
]
