"""``ssehub serve``: run the hub.

Every option but ``--config`` is derived from the settings dataclasses
(:class:`~ssehub.server.ServerSettings`, which contains the hub's
``HubConfig`` and ``Retention``, and :class:`~ssehub.demos.DemoSettings`):
add a field there and it is a flag, an ``SSEHUB_*`` variable and a config-file
key here.  Precedence: flag > environment > ``--config`` file > default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..demos import DemoSettings, demos_by_default
from ..server import Plugin, ServerSettings
from ._output import BadUsage, OneLineCommand
from ._settings_model import ConfigError, build, click_options, load_config, settings_of

__all__ = ["ROOTS", "SETTINGS", "serve"]

#: The settings roots of ``ssehub serve``: the TOML tables ``[server]`` and ``[demos]``.
ROOTS: dict[str, type[Any]] = {"server": ServerSettings, "demos": DemoSettings}
SETTINGS = settings_of(ROOTS)


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Eager: read ``--config FILE`` into click's ``default_map`` before any other option."""
    if value is not None:
        try:
            ctx.default_map = {**(ctx.default_map or {}), **load_config(Path(value), SETTINGS)}
        except ConfigError as exc:
            raise BadUsage(str(exc)) from None
    return value


def _serve(config: str | None, **values: Any) -> None:
    """Run the hub: topics, durable history, exact resume, demos.

    \b
    Examples:
      ssehub serve                                  # http://127.0.0.1:8004, history in ./ssehub.db
      ssehub serve --host 0.0.0.0 --store memory    # nothing kept on disk, no demos
      ssehub serve --store redis://localhost:6379/0 # share topics with other nodes
      ssehub serve --tail /var/log/syslog           # the /logs demo follows that file
      ssehub serve --config ssehub.toml             # see `ssehub config --defaults`
    \b
    Then:
      curl -N http://localhost:8004                 # the seed's demo stream
      curl -N http://localhost:8004/topics/news     # subscribe to a topic
      curl -d 'hello' http://localhost:8004/topics/news   # publish to it
    """
    from ..errors import HubError
    from ..hub import parse_store_url
    from ..server import AccessPolicy, check_store, check_tls, check_workers, run

    try:
        built = build(ROOTS, values)
    except ConfigError as exc:
        where = f" (with --config {config})" if config else ""
        raise BadUsage(f"{exc}{where}") from None
    server: ServerSettings = built["server"]
    demos: DemoSettings = built["demos"]
    try:
        parse_store_url(server.store)
    except ValueError as exc:
        raise BadUsage(f"--store: {exc}") from exc
    try:
        check_workers(server)
        check_tls(server)
        AccessPolicy(server)  # keys, algorithms and PEM files are checked here, once
    except ValueError as exc:
        raise BadUsage(str(exc)) from None
    try:
        check_store(server)
    except HubError as exc:
        raise click.ClickException(f"cannot open the store {server.store!r}: {exc}") from exc
    plugins: list[Plugin] = []
    if demos.enabled if demos.enabled is not None else demos_by_default(server.host):
        from ..demos import DemosPlugin

        plugins.append(DemosPlugin(demos))
    if server.mercure:
        from ..mercure import MercurePlugin

        plugins.append(MercurePlugin())
    from ..durable import DurableStreamsPlugin

    plugins.append(DurableStreamsPlugin())  # /v1/stream/{name}, on the hub's store
    run(server, plugins=plugins)


serve = OneLineCommand(
    "serve",
    callback=_serve,
    help=_serve.__doc__,
    context_settings={"show_default": True},
    params=[
        click.Option(
            ["--config"],
            type=click.Path(),
            is_eager=True,
            expose_value=True,
            callback=_load_config,
            envvar="SSEHUB_CONFIG",
            show_envvar=True,
            metavar="FILE",
            help="Read settings from this TOML file (see `ssehub config --defaults`); "
            "flags and SSEHUB_* variables override it.",
        ),
        *click_options(SETTINGS),
    ],
)
