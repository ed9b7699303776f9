"""Simulated gate traffic: visitors carrying tagged items through simulated gate readers.

``libedge sim gate-traffic`` starts the readers of a gate (FEIG simulators on TCP or ptys,
one or two per lane) and a simulated people counter, prints their URLs for the gate's
configuration, waits for the gate to poll, then walks visitors through: the people counter
sees each one, their tags enter the readers' fields, are read from 1 to 20 times and leave.
The gate agent runs unmodified against it. What a correct gate must alarm for is known in
advance and written to a truth file.

Modules: :mod:`.catalog` (the items and what they are), :mod:`.plan` (the passages,
reproducible from a seed), :mod:`.engine` (lanes, read counting, the runner), :mod:`.cli`
(the command, whose three names this package re-exports for ``libedge sim``; the rest is
imported from the modules, so listing the simulators stays cheap).
"""

from simulators.gate_traffic.cli import HELP, configure, run

__all__ = ["HELP", "configure", "run"]
