"""The simulator's exception tree, in one place.

``CentralError``          base of everything the simulator raises on purpose
  ``SeedError``           a seed file cannot be read or is invalid (names file and entry)
  ``BrokerUnavailableError``   the broker refused or did not answer within the start timeout

Messages that arrive over MQTT never raise: they are classified, counted and logged (see
:mod:`simulators.central.ingest`), because one bad device must not stop the service.
"""

from __future__ import annotations

__all__ = ["BrokerUnavailableError", "CentralError", "SeedError"]


class CentralError(RuntimeError):
    """Something the simulated central system cannot do; the message says what and why."""


class SeedError(CentralError, ValueError):
    """A seed file is unreadable or invalid."""


class BrokerUnavailableError(CentralError):
    """The MQTT broker refused the simulator or could not be reached in time."""
