"""HTTP for durable streams: ``/v1/stream/{name}`` (PROTOCOL.md §5).

One endpoint for ``PUT`` (create or fork), ``POST`` (append / close),
``GET`` (catch-up, ``live=long-poll``, ``live=sse``), ``HEAD``, ``DELETE``
and ``OPTIONS`` (CORS preflight).  Header syntax is checked here (``400``
with the JSON error body of ``ssehub.server``'s table); the rules are
:class:`~._service.DurableStreams`'s; live reads are :mod:`._live`'s.

Every answer carries ``X-Content-Type-Options: nosniff`` and
``Cross-Origin-Resource-Policy: cross-origin``.  Bodies are read up to
``--max-body`` bytes (``413`` above); catch-up reads return at most
``read_bytes`` bytes (or one record), without ``Stream-Up-To-Date`` when
more follows.  Access: writes (``PUT``/``POST``/``DELETE``) need the hub's
publish grant on the stream's name, reads its subscribe rules.

Every answer is sent under the hub's write deadline (``--write-timeout``,
:class:`~ssehub.server.GuardedResponse`): a reader whose socket stays full
that long — a ``live=sse`` stream, a long-poll or catch-up answer — has its
connection reset.  ``live=sse`` streams count against ``--max-connections``
(``503 too_many_connections`` at the limit), as the hub's own streams do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from ..errors import HubError
from ..hub import Hub
from ..server import (
    AccessPolicy,
    ApiError,
    GuardedResponse,
    ServerSettings,
    counted_stream,
    error_response,
    read_body,
)
from ._jsonmode import format_messages
from ._live import LiveReads
from ._model import StreamMeta
from ._service import Answer, AppendRequest, CreateRequest, DurableStreams, Producer, Snapshot
from ._wire import format_offset, parse_expires_at, parse_offset, parse_strict_int

__all__ = ["PREFIX", "DurableStreamsAPI"]

#: Where the streams are served.
PREFIX = "/v1/stream/"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
}
_ALLOW_HEADERS = (
    "Content-Type, Authorization, If-None-Match, Stream-Seq, Stream-TTL, Stream-Expires-At, "
    "Stream-Closed, Producer-Id, Producer-Epoch, Producer-Seq, Stream-Forked-From, "
    "Stream-Fork-Offset, Stream-Fork-Sub-Offset"
)
_EXPOSE_HEADERS = (
    "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Producer-Epoch, "
    "Producer-Seq, Producer-Expected-Seq, Producer-Received-Seq, ETag, Content-Type, "
    "Stream-SSE-Data-Encoding"
)
_MAX_NAME = 1024
#: Longest Producer-Id and Stream-Seq (both are kept in the stream's metadata).
_MAX_TOKEN = 256
#: Most bytes of an oversized body read (and dropped) before answering 413.
_DRAIN_BYTES = 64 * 1024 * 1024


def _closed_flag(value: str | None) -> bool:
    """``Stream-Closed`` counts only when it is ``true`` (any case)."""
    return value is not None and value.strip().lower() == "true"


def _valid_type(value: str | None) -> str | None:
    if value is None:
        return None
    kind = value.split(";", 1)[0].strip()
    if "/" not in kind or not all(part.strip() for part in kind.split("/", 1)):
        return None
    return value.strip()


class DurableStreamsAPI:
    """The endpoint; ``streams`` decides, ``live`` waits."""

    def __init__(
        self,
        streams: DurableStreams,
        live: LiveReads,
        settings: ServerSettings,
        access: AccessPolicy,
        *,
        hub: Hub,
        read_bytes: int = 1024 * 1024,
    ) -> None:
        self.hub = hub
        self.streams = streams
        self.live = live
        self.settings = settings
        self.access = access
        self.read_bytes = read_bytes

    async def endpoint(self, request: Request) -> Response:
        try:
            response = await self._dispatch(request)
        except (ApiError, HubError) as exc:
            error = ApiError.of(exc) if isinstance(exc, HubError) else exc
            response = error_response(error.status, error.code, error.message, error.headers)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        origin = request.headers.get("origin")
        if origin and self._origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
            response.headers["Vary"] = "Origin"
        return GuardedResponse(self.hub, response)

    def _origin_allowed(self, origin: str) -> bool:
        allowed = self.settings.cors_origins
        return "*" in allowed or origin in allowed

    async def _dispatch(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not name or len(name) > _MAX_NAME or "\x00" in name:
            raise ApiError(
                400, "invalid_stream_name", f"a stream name is 1 to {_MAX_NAME} characters"
            )
        method = request.method
        if method == "OPTIONS":
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        if method in ("PUT", "POST", "DELETE"):
            await self.access.authorize_publish(request, [name])
        else:
            await self.access.subscriber(request)
        if method == "PUT":
            return await self._create(request, name)
        if method == "POST":
            return await self._append(request, name)
        if method == "DELETE":
            return self._render(await self.streams.delete(name))
        if method == "HEAD":
            return await self._head(name)
        return await self._read(request, name)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _render(answer: Answer, body: bytes = b"") -> Response:
        if answer.code:
            return error_response(answer.status, answer.code, answer.message, answer.headers)
        return Response(body, status_code=answer.status, headers=answer.headers)

    async def _body(self, request: Request) -> bytes:
        """The body, at most ``--max-body`` bytes (413 above, after draining the rest)."""
        return await read_body(request, self.settings.max_body_size, drain=_DRAIN_BYTES)

    def _source_name(self, value: str) -> str:
        """A ``Stream-Forked-From`` path (``/v1/stream/x`` or ``x``) as a stream name."""
        path = value.strip()
        root = PREFIX
        if path.startswith(root):
            return path[len(root) :]
        return path.lstrip("/")

    # -- PUT ----------------------------------------------------------------------------------

    async def _create(self, request: Request, name: str) -> Response:
        headers = request.headers
        ttl_text = headers.get("stream-ttl")
        expires_text = headers.get("stream-expires-at")
        if ttl_text is not None and expires_text is not None:
            raise ApiError(
                400, "conflicting_expiry", "send Stream-TTL or Stream-Expires-At, not both"
            )
        ttl = None
        if ttl_text is not None:
            ttl = parse_strict_int(ttl_text.strip())
            if ttl is None:
                raise ApiError(400, "invalid_ttl", "Stream-TTL is a whole number of seconds")
        expires_ts = None
        if expires_text is not None:
            expires_ts = parse_expires_at(expires_text)
            if expires_ts is None:
                raise ApiError(400, "invalid_expires_at", "Stream-Expires-At is an RFC 3339 time")
        forked_from = headers.get("stream-forked-from")
        fork_offset = headers.get("stream-fork-offset")
        sub_text = headers.get("stream-fork-sub-offset")
        fork_position = None
        fork_sub = None
        if forked_from is None and (fork_offset is not None or sub_text is not None):
            raise ApiError(
                400, "fork_header_alone", "Stream-Fork-* headers need Stream-Forked-From"
            )
        if fork_offset is not None:
            fork_position = parse_offset(fork_offset.strip())
            if fork_position is None:
                raise ApiError(400, "invalid_fork_offset", "Stream-Fork-Offset is not an offset")
        if sub_text is not None:
            fork_sub = parse_strict_int(sub_text.strip())
            if fork_sub is None:
                raise ApiError(400, "invalid_fork_sub_offset", "Stream-Fork-Sub-Offset is a count")
        body = await self._body(request)
        create = CreateRequest(
            content_type=_valid_type(headers.get("content-type")),
            ttl=ttl,
            expires_at=expires_text,
            expires_ts=expires_ts,
            closed=_closed_flag(headers.get("stream-closed")),
            body=body,
            forked_from=self._source_name(forked_from) if forked_from is not None else None,
            fork_offset=fork_offset.strip() if fork_offset is not None else None,
            fork_position=fork_position,
            fork_sub=fork_sub,
        )
        answer = await self.streams.create(name, create)
        response = self._render(answer)
        if answer.status == 201:
            response.headers["Location"] = str(request.url.replace(query=""))
        return response

    # -- POST ---------------------------------------------------------------------------------

    async def _append(self, request: Request, name: str) -> Response:
        headers = request.headers
        producer = self._producer(headers)
        body = await self._body(request)
        stream_seq = headers.get("stream-seq")
        if stream_seq is not None and len(stream_seq) > _MAX_TOKEN:
            raise ApiError(
                400, "invalid_stream_seq", f"Stream-Seq is at most {_MAX_TOKEN} characters"
            )
        append = AppendRequest(
            content_type=_valid_type(headers.get("content-type"))
            if headers.get("content-type")
            else None,
            body=body,
            closed=_closed_flag(headers.get("stream-closed")),
            stream_seq=stream_seq,
            producer=producer,
        )
        if append.content_type is None and headers.get("content-type") and body:
            raise ApiError(400, "invalid_content_type", "Content-Type is not a media type")
        return self._render(await self.streams.append(name, append))

    @staticmethod
    def _producer(headers: Mapping[str, str]) -> Producer | None:
        values = [headers.get(key) for key in ("producer-id", "producer-epoch", "producer-seq")]
        if all(value is None for value in values):
            return None
        if any(value is None for value in values):
            raise ApiError(
                400,
                "incomplete_producer",
                "send Producer-Id, Producer-Epoch and Producer-Seq together",
            )
        producer_id, epoch_text, seq_text = (str(value) for value in values)
        if not producer_id or len(producer_id) > _MAX_TOKEN:
            raise ApiError(
                400, "invalid_producer_id", f"Producer-Id is 1 to {_MAX_TOKEN} characters"
            )
        epoch = parse_strict_int(epoch_text.strip())
        seq = parse_strict_int(seq_text.strip())
        if epoch is None or seq is None:
            raise ApiError(
                400,
                "invalid_producer",
                "Producer-Epoch and Producer-Seq are integers from 0 to 2^53-1",
            )
        return Producer(producer_id, epoch, seq)

    # -- HEAD ---------------------------------------------------------------------------------

    async def _head(self, name: str) -> Response:
        found = await self.streams.lookup(name)
        if isinstance(found, Answer):
            return Response(status_code=found.status, headers={"Cache-Control": "no-store"})
        meta = found.meta
        headers = {
            "Content-Type": meta.content_type,
            "Stream-Next-Offset": format_offset(meta.tail),
            "Cache-Control": "no-store",
            "ETag": self._etag(meta, "-1", meta.tail, meta.closed),
        }
        if meta.closed:
            headers["Stream-Closed"] = "true"
        if meta.ttl is not None:
            headers["Stream-TTL"] = str(meta.ttl)
        if meta.expires_at is not None:
            headers["Stream-Expires-At"] = meta.expires_at
        return Response(status_code=200, headers=headers)

    @staticmethod
    def _etag(meta: StreamMeta, start: str, end: int, closed: bool) -> str:
        tag = hashlib.blake2s(meta.id.encode(), digest_size=6).hexdigest()
        return f'"{tag}:{start}:{format_offset(end)}{":c" if closed else ""}"'

    # -- GET ----------------------------------------------------------------------------------

    async def _read(self, request: Request, name: str) -> Response:
        query = request.query_params
        offsets = query.getlist("offset")
        if len(offsets) > 1:
            raise ApiError(400, "invalid_offset", "send one offset")
        offset = offsets[0] if offsets else None
        live = query.get("live")
        if live is not None and live not in ("long-poll", "sse"):
            raise ApiError(400, "invalid_live", "live is long-poll or sse")
        if offset is not None and offset not in ("-1", "now") and parse_offset(offset) is None:
            raise ApiError(400, "invalid_offset", "offset is -1, now or an offset this server gave")
        if live is not None and offset is None:
            raise ApiError(400, "missing_offset", f"live={live} needs an offset")
        found = await self.streams.lookup(name)
        if isinstance(found, Answer):
            return self._render(found)
        await self.streams.touch(found)
        meta = found.meta
        start = (
            meta.start
            if offset in (None, "-1")
            else meta.tail
            if offset == "now"
            else parse_offset(offset)
        )
        assert start is not None
        if start < meta.start:
            raise ApiError(410, "offset_gone", "this offset is older than the retained data")
        if start > meta.tail:
            raise ApiError(400, "invalid_offset", "this offset is past the stream's tail")
        cursor = query.get("cursor")
        if live == "sse":
            # Counted against --max-connections like every stream (503 at the limit).
            return counted_stream(self.hub, self.settings, self.live.sse(found, start, cursor))
        if offset == "now" and live is None:
            headers = {
                "Content-Type": meta.content_type,
                "Stream-Next-Offset": format_offset(meta.tail),
                "Stream-Up-To-Date": "true",
                "Cache-Control": "no-store",
            }
            if meta.closed:
                headers["Stream-Closed"] = "true"
            return Response(b"[]" if meta.is_json else b"", headers=headers)
        if live == "long-poll":
            outcome = await self.live.long_poll(found, start)
            if isinstance(outcome, Answer):
                return self._render(outcome)
            if isinstance(outcome, int):
                now_meta = await self.streams.store.load(name)
                closed = now_meta is not None and now_meta.closed and now_meta.tail == outcome
                headers = {
                    "Stream-Next-Offset": format_offset(outcome),
                    "Stream-Up-To-Date": "true",
                    "Cache-Control": "no-store",
                }
                if closed:
                    headers["Stream-Closed"] = "true"
                else:
                    headers["Stream-Cursor"] = self.live.cursor(cursor)
                return Response(status_code=204, headers=headers)
            found = outcome
        return await self._catch_up(
            request, found, offset or "-1", start, cursor if live else None, live is not None
        )

    async def _catch_up(
        self,
        request: Request,
        snapshot: Snapshot,
        offset: str,
        start: int,
        cursor: str | None,
        live: bool,
    ) -> Response:
        meta = snapshot.meta
        records = await self.streams.store.read(meta.id, start, self.read_bytes)
        end = records[-1][0] if records else start
        if end < start:
            end = start
        up_to_date = end >= meta.tail
        closed = meta.closed and up_to_date
        headers = {
            "Content-Type": meta.content_type,
            "Stream-Next-Offset": format_offset(end),
            "ETag": self._etag(meta, offset, end, closed),
            "Cache-Control": "private, max-age=60, stale-while-revalidate=300",
        }
        if up_to_date:
            headers["Stream-Up-To-Date"] = "true"
        if closed:
            headers["Stream-Closed"] = "true"
        elif live:
            headers["Stream-Cursor"] = self.live.cursor(cursor)
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers={"ETag": headers["ETag"]})
        chunks = [data for _, data in records]
        body = format_messages(chunks) if meta.is_json else b"".join(chunks)
        return Response(body, status_code=200, headers=headers)
