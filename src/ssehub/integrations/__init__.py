"""Integrations with other people's protocols and frameworks, on the hub's stores.

- :mod:`ssehub.integrations.mcp`: :class:`~ssehub.integrations.mcp.HubEventStore`,
  an ``EventStore`` for the ``mcp`` SDK's Streamable HTTP transport
  (``pip install 'ssehub[mcp]'``).
"""
