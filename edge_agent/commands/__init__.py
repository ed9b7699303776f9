"""Command modules of the ``libedge`` CLI that belong to the edge agent's layer."""
