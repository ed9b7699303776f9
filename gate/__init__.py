"""The RFID security-gate agent: detects items leaving without checkout and counts visitors.

Modules, lowest first:

``errors``      the gate's exception tree
``decide``      the rules: may this item leave? (a pure function)
``passes``      reads of one tag merged into a pass, ended by the quiet time
``knowledge``   tag facts by UID, and the snapshot of the agent's item states
``identify``    reader work beyond the inventory: probe the security state, read the tag
``timing``      a reader port that notes when each reply arrived (alarm latency)
``clock``       whether the system clock is synchronised (events carry clock_trusted)
``core``        the hot path: passes, decisions and the alarm output
``poller``      one thread per group of readers that take turns
``episodes``    alarms of one visitor grouped and named into one GateAlarm event
``visitors``    people-counter crossings summed per interval
``agent``       the edge agent, over its HTTP API or its database file
``handover``    the gate's own durable queue of events not yet accepted by the agent
``health``      the health snapshot (health.json, StatusDetails)
``options``     the site configuration as the gate needs it
``service``     :class:`GateService`, which wires the above
``cli``         ``libedge gate run|status``
"""
