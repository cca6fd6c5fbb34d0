"""Settings of a hub server: process and HTTP, containing the hub's own config.

:class:`ServerSettings` holds what the server itself uses (address, store,
HTTP limits, CORS, logging) and *contains* the hub's :class:`~ssehub.hub.HubConfig`
and :class:`~ssehub.hub.Retention` — the same objects, not re-typed copies —
so each default is written once, in the dataclass that uses it.

Conventions: durations are float seconds (``unit: duration``); ``retry``
values are integer milliseconds as on the wire (``unit: ms``); sizes are
bytes; ``None`` in an optional number means "unbounded" and is written ``0``
on the command line and in a config file.

Every field carries its command-line ``metadata`` (see :func:`option`):
``ssehub serve``'s options, its ``SSEHUB_*`` environment variables, its TOML
config file and the README's table are all derived from these dataclasses,
so adding a field adds its flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hub import DEFAULT_STORE, HubConfig, Retention

__all__ = ["ServerSettings", "Settings", "option"]


def option(
    help: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    unit: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    path: bool = False,
    split: str | None = None,
) -> dict[str, Any]:
    """A settings field's command-line metadata.

        ``flag`` defaults to ``--<field-name>`` (underscores as dashes) and ``env``
        to ``SSEHUB_<FLAG>``; ``unit`` is ``duration`` (parsed as ``500ms``,
        ``15s``, ``24h``…) or ``ms``; ``path`` marks file names (an environment
        variable then lists several separated by ``:``); ``split`` is a separator
    that a repeatable option's values are also split on.  The same keys may be
        written as a plain dict where ``ssehub.server`` can't be imported (the hub).
    """
    meta: dict[str, Any] = {"help": help}
    for key, value in (
        ("flag", flag),
        ("env", env),
        ("unit", unit),
        ("min", minimum),
        ("max", maximum),
        ("choices", choices),
        ("metavar", metavar),
        ("split", split),
    ):
        if value is not None:
            meta[key] = value
    if path:
        meta["path"] = True
    return meta


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything ``ssehub serve`` can be told about the hub itself (demos aside)."""

    host: str = field(
        default="127.0.0.1",
        metadata=option("Interface to listen on (0.0.0.0 for every interface)."),
    )
    port: int = field(default=8004, metadata=option("TCP port.", minimum=0, maximum=65535))
    admin_port: int | None = field(
        default=None,
        metadata=option(
            "Serve the admin surface (/metrics, the dashboard and its stats feed) on this "
            "port of 127.0.0.1 only, with no token; the main port then serves none of it. "
            "Off by default (admin tokens on the main port).",
            maximum=65535,
        ),
    )
    store: str = field(
        default=DEFAULT_STORE,
        metadata=option(
            "History store: sqlite:PATH (durable), memory (lost on restart), or "
            "redis://HOST:PORT/DB (shared by several nodes).",
            metavar="STORE",
        ),
    )
    workers: str = field(
        default="1",
        metadata=option(
            "Processes serving the port, each with its own event loop: a number, or auto "
            "(one per core).  Needs a store processes share (sqlite:PATH or redis://).",
            metavar="N|auto",
        ),
    )
    max_body_size: int = field(
        default=1024 * 1024,
        metadata=option(
            "Largest publish body, in bytes (413 above it).", flag="--max-body", minimum=1
        ),
    )
    max_connections: int = field(
        default=20_000,
        metadata=option(
            "Most connections open at once, every connection counted; more get 503 with "
            "Retry-After. Lowered at start to fit the open-file limit (ulimit -n).",
            minimum=1,
        ),
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "Allow this origin by CORS (repeatable, or comma-separated; '*' for any). "
            "Off by default.",
            flag="--cors-origin",
            env="SSEHUB_CORS_ORIGINS",
            metavar="ORIGIN",
            split=",",
        ),
    )
    jwt_key: str | None = field(
        default=None,
        metadata=option(
            "Verify access tokens with this key: an HS secret, or @PATH to a PEM public key. "
            "With a key (or --jwks-url) every publish needs a token.",
            metavar="KEY",
        ),
    )
    jwt_algorithms: tuple[str, ...] = field(
        default=("HS256",),
        metadata=option(
            "JWT algorithm accepted (repeatable or comma-separated; 'none' never is).",
            flag="--jwt-alg",
            metavar="ALG",
            split=",",
        ),
    )
    jwks_url: str | None = field(
        default=None,
        metadata=option("Verify access tokens with the keys of this JWKS URL.", metavar="URL"),
    )
    jwt_issuer: str | None = field(
        default=None,
        metadata=option("Required 'iss' of Mercure 1.0 (at+jwt) tokens.", metavar="ISS"),
    )
    jwt_audience: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "Accepted 'aud' of Mercure 1.0 (at+jwt) tokens (repeatable).",
            metavar="AUD",
            split=",",
        ),
    )
    cookie_name: str = field(
        default="ssehub_access_token",
        metadata=option("Cookie an access token is read from when no Authorization header is."),
    )
    anonymous_subscribe: bool = field(
        default=True,
        metadata=option("Let clients without a token subscribe (they get public events only)."),
    )
    allow_anonymous_publish: bool = field(
        default=False,
        metadata=option(
            "Let clients without a token publish on a non-loopback --host when no key is "
            "configured (on loopback they always may; with a key they never may)."
        ),
    )
    allowed_hosts: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "Serve only requests whose Host is this name (repeatable; '*' for any). "
            "Default: the loopback names on a loopback --host, any otherwise.",
            flag="--allowed-host",
            metavar="HOST",
            split=",",
        ),
    )
    log_level: str = field(
        default="info",
        metadata=option(
            "Log verbosity.", choices=("critical", "error", "warning", "info", "debug")
        ),
    )
    access_log: bool = field(default=False, metadata=option("Log every request."))
    max_header_bytes: int = field(
        default=64 * 1024,
        metadata=option("Most bytes in one request's line and headers (431 above it).", minimum=1),
    )
    max_header_count: int = field(
        default=100,
        metadata=option("Most header fields in one request (431 above it).", minimum=1),
    )
    header_timeout: float = field(
        default=10.0,
        metadata=option(
            "A request's line and headers must arrive within this long (408); a new "
            "connection that sends nothing is closed.",
            unit="duration",
        ),
    )
    idle_timeout: float = field(
        default=5.0,
        metadata=option(
            "A kept-alive connection with no new request is closed after this long.",
            unit="duration",
        ),
    )
    mercure: bool = field(
        default=True,
        metadata=option(
            "Serve the Mercure protocol at /.well-known/mercure (ssehub serve's plug-in)."
        ),
    )
    mercure_subscriptions: bool = field(
        default=False,
        metadata=option(
            "Announce Mercure subscriptions (private events of type 'mercure') and serve "
            "/.well-known/mercure/subscriptions."
        ),
    )
    certfile: str | None = field(
        default=None,
        metadata=option(
            "Serve HTTPS with this PEM certificate chain (with --keyfile): HTTP/2 by ALPN, "
            "HTTP/1.1 for older clients.",
            metavar="FILE",
        ),
    )
    keyfile: str | None = field(
        default=None,
        metadata=option("The unencrypted PEM private key of --certfile.", metavar="FILE"),
    )
    dev_cert: bool = field(
        default=False,
        metadata=option(
            "Serve HTTPS with a throwaway self-signed certificate for localhost and "
            "127.0.0.1, made in the user's cache folder (its path is logged). Local use only."
        ),
    )
    long_poll_timeout: float = field(
        default=30.0,
        metadata=option(
            "A Durable Streams long-poll (/v1/stream/…?live=long-poll) waits this long for "
            "data before answering 204; an SSE read sends a keep-alive this often.",
            unit="duration",
        ),
    )
    durable_max_bytes: int | None = field(
        default=None,
        metadata=option(
            "Bytes of history kept per Durable Stream: older records are dropped and reads "
            "from before them answer 410 (0 = unbounded).",
        ),
    )
    hub: HubConfig = field(default_factory=HubConfig)
    retention: Retention = field(default_factory=Retention)


#: The name this class had before the split (kept for imports).
Settings = ServerSettings
