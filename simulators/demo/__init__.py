"""``libedge demo``: the whole library in one command, supervised, with a summary at the end.

Modules: :mod:`.cli` (the command), :mod:`.runner` (start, timeline, stop), :mod:`.broker`
(a private Mosquitto), :mod:`.supervisor` (child processes with prefixed output),
:mod:`.site` (a site's process), :mod:`.kiosk_site` and :mod:`.gate_site` (what runs in
them), :mod:`.common` (what both sites share) and :mod:`.summary`.
"""
