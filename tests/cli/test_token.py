"""``ssehub token`` mints a development token the hub accepts (issue 11)."""

from __future__ import annotations

from click.testing import CliRunner

from ssehub.cli import cli
from ssehub.server import TokenVerifier
from tests.support.tokens import SECRET


async def test_a_minted_token_grants_what_was_asked_and_the_hub_verifies_it() -> None:
    result = CliRunner().invoke(
        cli,
        ["token", "--publish", "chat/*", "--subscribe", "*", "--ttl", "1h"],
        env={"SSEHUB_JWT_KEY": SECRET},
    )
    assert result.exit_code == 0, result.output
    claims = await TokenVerifier(key=SECRET).verify(result.output.strip())
    assert claims.publish.allows("chat/42")
    assert not claims.publish.allows("news")
    assert claims.subscribe.allows("anything/at/all")
    assert claims.expires_at is not None


async def test_a_legacy_token_uses_the_mercure_claim() -> None:
    result = CliRunner().invoke(
        cli, ["token", "--legacy", "--publish", "books/{id}", "--jwt-key", SECRET]
    )
    assert result.exit_code == 0, result.output
    claims = await TokenVerifier(key=SECRET).verify(result.output.strip())
    assert claims.publish.allows("books/1")
    assert not claims.publish.allows("books/1/2")


def test_alg_none_is_refused() -> None:
    result = CliRunner().invoke(cli, ["token", "--jwt-key", SECRET, "--jwt-alg", "none"])
    assert result.exit_code == 2
