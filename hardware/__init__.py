"""Device protocol code: item readers, patron-card readers, scanners, printers, gate outputs.

This package imports nothing of libedge's other packages and nothing of UI or MQTT: it moves
bytes to and from devices and turns them into typed values. Every device is opened from a URL
so that real hardware and a simulator differ only by a configuration string.
"""
