"""The edge agent's local HTTP API: :func:`edge_agent.api.app.create_app`.

``models`` holds the request/response bodies and imports no web framework (the client
uses it); ``app`` is the FastAPI application; ``metrics`` renders ``/metrics``.
"""
