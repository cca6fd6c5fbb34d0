"""``ssehub config``: print every default as TOML, or check a config file.

``ssehub config --defaults`` prints a document that ``ssehub config --check``
and ``ssehub serve --config`` accept; ``--check FILE`` prints ``ok`` (exit 0)
or one line naming the file and key (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import click

from ._output import BadUsage, OneLineCommand
from ._serve import ROOTS, SETTINGS, serve
from ._settings_model import ConfigError, build, defaults_toml, load_config, markdown_table

__all__ = ["config", "settings_table"]

#: Rows of the README table that are not settings fields.
EXTRA_ROWS = (
    (
        "--config",
        "SSEHUB_CONFIG",
        "none",
        "Read settings from this TOML file; flags and SSEHUB_* variables override it.",
    ),
)


def settings_table() -> str:
    """The README's table of ``ssehub serve`` settings, generated from the model."""
    return markdown_table(SETTINGS, EXTRA_ROWS)


@click.command(cls=OneLineCommand)
@click.option("--defaults", is_flag=True, help="Print every setting's default as a TOML file.")
@click.option("--check", "check", metavar="FILE", help="Check a TOML config file; print ok.")
@click.option("--markdown", is_flag=True, hidden=True, help="Print the README's settings table.")
def config(defaults: bool, check: str | None, markdown: bool) -> None:
    """Print the default configuration, or check a config file.

    \b
    Examples:
      ssehub config --defaults > ssehub.toml   # every setting, with comments
      ssehub config --check ssehub.toml        # ok, or one line naming the key
      ssehub serve --config ssehub.toml
    """
    if sum((defaults, check is not None, markdown)) != 1:
        raise BadUsage("give one of --defaults or --check FILE")
    if defaults:
        click.echo(defaults_toml(SETTINGS), nl=False)
    elif markdown:
        click.echo(settings_table(), nl=False)
    else:
        assert check is not None
        try:
            load_config(Path(check), SETTINGS)
            # The values as `ssehub serve --config FILE` would see them, checked together.
            with serve.make_context("serve", ["--config", check]) as ctx:
                values = {k: v for k, v in ctx.params.items() if k != "config"}
            build(ROOTS, values)
        except ConfigError as exc:
            message = str(exc)
            raise BadUsage(message if check in message else f"{check}: {message}") from None
        click.echo("ok")
