"""The ``ssehub`` command line: ``serve``, ``listen``, ``publish``, ``bench``, ``config``,
``token``.

Exit codes (documented in ``ssehub --help``): 0 success, 1 a runtime failure
(hub unreachable, stream ended for good), 2 bad arguments (click's usage
error), 130 interrupted by Ctrl+C.
"""

from __future__ import annotations

import click

from .. import __version__

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ssehub")
def cli() -> None:
    """ssehub: Server-Sent Events hub, client and tools.

    \b
    Exit codes: 0 ok, 1 runtime failure (e.g. hub unreachable), 2 bad usage,
    130 interrupted.
    """


def main() -> None:
    """Entry point of the ``ssehub`` console script."""
    cli(prog_name="ssehub")


def _register() -> None:
    from ._bench import bench
    from ._config import config
    from ._listen import listen
    from ._publish import publish
    from ._serve import serve
    from ._token import token

    cli.add_command(serve)
    cli.add_command(listen)
    cli.add_command(publish)
    cli.add_command(bench)
    cli.add_command(config)
    cli.add_command(token)


_register()
