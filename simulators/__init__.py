"""Simulated devices and the central library system, at the transport.

Each simulator speaks the same bytes as the real thing (on a pty, a TCP or UDP socket, or MQTT),
so libedge's real drivers run against it unchanged. Simulators are written independently of the
drivers: they never import the drivers' framing or CRC code, so a shared bug cannot hide.
"""
