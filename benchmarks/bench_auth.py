"""The cost of token verification: publishes/s with and without a token.

``python -m benchmarks.bench_auth [--events N] [--repeat N]``

Two measurements:

* **verify**: ``TokenVerifier.verify`` on one Mercure 1.0 token, in process
  (verifications/s): the cost each authorized request pays — HS256 with a
  shared secret, and RS256 (2048-bit), ES256 and EdDSA (Ed25519) with a PEM
  public key (``--jwt-key @PATH``), keys made fresh by ``cryptography``.
* **publish**: a real ``ssehub serve --store memory`` on a free port, one
  keep-alive httpx client publishing ``--events`` small JSON events one after
  the other — once with no key (anonymous, loopback), once with ``--jwt-key``
  and an ``Authorization: Bearer`` header on every publish.  Best of ``--repeat``.
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


def _verify_rate(n: int, algorithm: str = "HS256") -> float:
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
    token = mint_token(signing, publish=["bench/*"], subscribe=["*"], ttl=3600, algorithm=algorithm)

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await verifier.verify(token)
        return n / (time.perf_counter() - start)

    return asyncio.run(run())


def _publish_rate(events: int, repeat: int, *, with_token: bool) -> float:
    port = _free_port()
    args = [sys.executable, "-m", "ssehub", "serve", "--store", "memory", "--no-demos"]
    args += ["--port", str(port), "--log-level", "warning"]
    headers = {}
    if with_token:
        args += ["--jwt-key", KEY]
        token = mint_token(KEY, publish=["bench/*"], ttl=3600)
        headers["Authorization"] = f"Bearer {token}"
    proc = subprocess.Popen(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
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
                    answer = client.post("/topics/bench/1", json={"data": f"event {i}"})
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
    verify = _verify_rate(options.events * 5)
    asymmetric = {alg: _verify_rate(options.events, alg) for alg in ("RS256", "ES256", "EdDSA")}
    anonymous = _publish_rate(options.events, options.repeat, with_token=False)
    tokened = _publish_rate(options.events, options.repeat, with_token=True)
    print(f"verify (HS256, at+jwt):     {verify:10.0f} tokens/s ({1e6 / verify:.1f} µs each)")
    for alg, rate in asymmetric.items():
        label = f"verify ({alg}, PEM key):"
        print(f"{label:<28}{rate:10.0f} tokens/s ({1e6 / rate:.1f} µs each)")
    print(f"publish, no key:            {anonymous:10.0f} events/s")
    print(f"publish, token every time:  {tokened:10.0f} events/s ({tokened / anonymous:.0%})")


if __name__ == "__main__":
    main()
