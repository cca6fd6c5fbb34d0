"""The cost of token verification: publishes/s with and without a token.

``python -m benchmarks.bench_auth [--events N] [--repeat N]``

Two measurements:

* **verify**: ``TokenVerifier.verify`` in process (verifications/s) on Mercure
  1.0 tokens all different (each one's signature is checked: the cost of a
  token seen for the first time) — HS256 with a shared secret, and RS256
  (2048-bit), ES256 and EdDSA (Ed25519) with a PEM public key (``--jwt-key
  @PATH``), keys made fresh by ``cryptography`` — and on one token again and
  again (remembered after its first check, see ``ssehub.server._tokens``).
* **publish**: a real ``ssehub serve --store memory`` on a free port, one
  keep-alive httpx client publishing ``--events`` small JSON events one after
  the other — with no key (anonymous, loopback), then with ``--jwt-key`` and
  an ``Authorization: Bearer`` header on every publish: the same token every
  time, and a different token every time.  Best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.tokens import key_pair  # the test kit's fresh RS256/ES256/EdDSA keys

from ssehub.server import TokenVerifier, mint_token

KEY = "bench-secret-long-enough-for-every-hs-algorithm-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tokens(signing: str | bytes, algorithm: str, count: int) -> list[str]:
    """``count`` different tokens (their ``iat``/``exp`` differ) granting publish on bench/*."""
    base = time.time()
    return [
        mint_token(signing, publish=["bench/*"], ttl=3600, algorithm=algorithm, now=base - i)
        for i in range(count)
    ]


def _verify_rate(n: int, algorithm: str = "HS256", *, same_token: bool = False) -> float:
    if algorithm == "HS256":
        verifier = TokenVerifier(key=KEY)
        signing: str | bytes = KEY
    else:
        pair = key_pair(algorithm)
        signing = pair.private_pem
        with tempfile.TemporaryDirectory() as folder:
            pem = Path(folder) / "public.pem"
            pem.write_bytes(pair.public_pem)
            verifier = TokenVerifier(key=f"@{pem}", algorithms=[algorithm])
    tokens = _tokens(signing, algorithm, 1 if same_token else n)

    async def run() -> float:
        start = time.perf_counter()
        for i in range(n):
            await verifier.verify(tokens[i % len(tokens)])
        return n / (time.perf_counter() - start)

    return asyncio.run(run())


def _publish_rate(events: int, repeat: int, *, tokens: str = "") -> float:
    """Publishes/s; ``tokens`` is ``""`` (no key), ``"same"`` or ``"fresh"`` (one per publish)."""
    port = _free_port()
    args = [sys.executable, "-m", "ssehub", "serve", "--store", "memory", "--no-demos"]
    args += ["--port", str(port), "--log-level", "warning"]
    signed = _tokens(KEY, "HS256", events if tokens == "fresh" else 1) if tokens else []
    if tokens:
        args += ["--jwt-key", KEY]
    proc = subprocess.Popen(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            best = 0.0
            for _ in range(repeat):
                start = time.perf_counter()
                for i in range(events):
                    token = signed[i % len(signed)] if signed else None
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    answer = client.post(
                        "/topics/bench/1", json={"data": f"event {i}"}, headers=headers
                    )
                    if answer.status_code != 201:
                        raise SystemExit(f"publish refused: {answer.status_code} {answer.text}")
                best = max(best, events / (time.perf_counter() - start))
            return best
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    n = options.events
    verify = {alg: _verify_rate(n, alg) for alg in ("HS256", "RS256", "ES256", "EdDSA")}
    remembered = _verify_rate(n * 5, same_token=True)
    anonymous = _publish_rate(n, options.repeat)
    same = _publish_rate(n, options.repeat, tokens="same")
    fresh = _publish_rate(n, options.repeat, tokens="fresh")
    for alg, rate in verify.items():
        label = f"verify, {alg}" + (" (secret):" if alg == "HS256" else " (PEM key):")
        print(f"{label:<32}{rate:10.0f} tokens/s ({1e6 / rate:.1f} µs each)")
    label = "verify, HS256, remembered:"
    print(f"{label:<32}{remembered:10.0f} tokens/s ({1e6 / remembered:.1f} µs each)")
    print(f"{'publish, no key:':<32}{anonymous:10.0f} events/s")
    for name, rate in (("same token", same), ("a new token each", fresh)):
        label = f"publish, {name}:"
        print(f"{label:<32}{rate:10.0f} events/s ({rate / anonymous:.0%})")


if __name__ == "__main__":
    main()
