"""The edge agent: durable outbox, MQTT link to the central system, offline caches, local API.

It also owns what every process on a site shares: the event contract (``edge_agent.contract``),
the site configuration schema (``edge_agent.config``) and logging (``edge_agent.logs``).
"""
