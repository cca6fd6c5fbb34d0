"""A response that wraps another one the hub sends on its own terms.

The wrappers (``_admission`` counting a stream,
:class:`~ssehub.server.GuardedResponse` timing its writes) answer with the
wrapped response's status and share its header list when it has one, so
``headers`` set on either, before it is sent, are sent.
"""

from __future__ import annotations

from starlette.responses import Response

from ..hub import Hub

__all__ = ["WrappedResponse"]


class WrappedResponse(Response):
    """Holds ``hub`` and ``response``; subclasses decide how ``response`` is sent."""

    def __init__(self, hub: Hub, response: Response) -> None:
        self._hub = hub
        self._response = response
        self.status_code = response.status_code
        self.background = None
        raw_headers = getattr(response, "raw_headers", None)
        if raw_headers is not None:  # responses that build their headers late have none yet
            self.raw_headers = raw_headers
