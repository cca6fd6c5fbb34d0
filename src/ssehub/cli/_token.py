"""``ssehub token``: mint an access token for development with the configured key.

The key and algorithm are read like ``ssehub serve`` reads them (``--jwt-key``
or ``SSEHUB_JWT_KEY``; ``--jwt-alg`` or ``SSEHUB_JWT_ALG``), so the token
minted here is accepted by a hub started in the same environment.  For an
asymmetric algorithm, ``--jwt-key @PATH`` names the PEM *private* key.
The token is printed alone on stdout.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..server import mint_token
from ._params import Duration

__all__ = ["token"]


@click.command()
@click.option(
    "--publish",
    "publish",
    multiple=True,
    metavar="SELECTOR",
    help="Grant publish on these topics ('*': all; 'chat/*' a URL pattern). Repeatable.",
)
@click.option(
    "--subscribe",
    "subscribe",
    multiple=True,
    metavar="SELECTOR",
    help="Grant subscribe (private events) on these topics. Repeatable.",
)
@click.option("--ttl", type=Duration(), default="1h", show_default=True, help="Lifetime (exp).")
@click.option(
    "--jwt-key",
    envvar="SSEHUB_JWT_KEY",
    show_envvar=True,
    required=True,
    metavar="KEY",
    help="HS secret, or @PATH to a PEM private key.",
)
@click.option(
    "--jwt-alg",
    envvar="SSEHUB_JWT_ALG",
    show_envvar=True,
    default="HS256",
    show_default=True,
    metavar="ALG",
    help="Signing algorithm (the first of a comma-separated list).",
)
@click.option("--issuer", envvar="SSEHUB_JWT_ISSUER", metavar="ISS", help="The 'iss' claim.")
@click.option(
    "--audience",
    envvar="SSEHUB_JWT_AUDIENCE",
    multiple=True,
    metavar="AUD",
    help="The 'aud' claim (repeatable).",
)
@click.option(
    "--legacy", is_flag=True, help="Use the legacy 'mercure' claim instead of Mercure 1.0."
)
def token(
    publish: tuple[str, ...],
    subscribe: tuple[str, ...],
    ttl: float,
    jwt_key: str,
    jwt_alg: str,
    issuer: str | None,
    audience: tuple[str, ...],
    legacy: bool,
) -> None:
    """Mint an access token, e.g. --publish 'chat/*' --subscribe '*' --ttl 1h."""
    key: str | bytes = jwt_key
    if jwt_key.startswith("@"):
        key = Path(jwt_key[1:]).read_text(encoding="utf-8")
    algorithm = jwt_alg.split(",")[0].strip()
    if algorithm.lower() == "none":
        raise click.BadParameter("'none' is never allowed", param_hint="--jwt-alg")
    click.echo(
        mint_token(
            key,
            publish=publish,
            subscribe=subscribe,
            ttl=ttl,
            algorithm=algorithm,
            issuer=issuer,
            audience=audience,
            legacy=legacy,
        )
    )
