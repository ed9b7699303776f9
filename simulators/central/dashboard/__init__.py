"""The staff dashboard served by the central simulator: a plain page that updates live.

Devices with online/offline state and outbox depth, a live feed of events (checkouts,
returns, alarms naming the item), visitors and checkouts per hour as bar charts, and the
sequence gaps and duplicates central has seen. FastAPI serves the page, a JSON snapshot and a
server-sent-event stream (:mod:`.app`); what is shown is computed in :mod:`.views`.
"""

from .app import DashboardError, DashboardServer, create_app
from .views import DashboardSource, snapshot

__all__ = ["DashboardError", "DashboardServer", "DashboardSource", "create_app", "snapshot"]
