"""``/ssehub.js``'s parser and reconnect delays, run by Node, against ssehub's Python ones.

Both parsers get the same vectors — the corpus every parser test shares
(``tests.support.streams.CORPUS``) fed as it is chunked, one byte at a time and
split at seeded random points, seeded random streams of awkward lines, and the
size bound's edges — and must give the same events, the same ``last_event_id``
and ``retry``, and refuse the same oversized input.  The JS parser also records
each event's ``topic`` field (ssehub's ``?tag=topic``; the Python parser, as the
standard, ignores it): apart from that the outcomes are equal.  Node is quicker to start
than Chromium; the module uses only what both offer (``TextDecoder``).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ssehub.errors import EventTooLargeError
from ssehub.protocol import EventStreamParser, ReconnectPolicy
from tests.support.streams import BOM, CORPUS, reference_parse

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "src" / "ssehub" / "web" / "ssehub.js"
RUNNER = Path(__file__).parent / "js" / "parse_cases.mjs"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed (apt-get install nodejs)"
)


def _case(chunks: list[bytes], **options: Any) -> dict[str, Any]:
    return {"chunks": [base64.b64encode(c).decode() for c in chunks], **options}


def _python(case: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"last_event_id": case.get("lastEventId", "")}
    if "maxEventSize" in case:
        options["max_event_size"] = case["maxEventSize"]
    parser = EventStreamParser(**options)
    events: list[list[str]] = []
    error = None
    try:
        for chunk in case["chunks"]:
            events.extend([e.event, e.data, e.id] for e in parser.feed(base64.b64decode(chunk)))
        parser.eof()
    except EventTooLargeError:
        error = "too_large"
    return {
        "events": events,
        "lastEventId": parser.last_event_id,
        "retry": parser.retry,
        "error": error,
    }


def _node(
    cases: list[dict[str, Any]], delays: list[tuple[int, int | None, float]]
) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(RUNNER), str(CLIENT)],
        input=json.dumps({"cases": cases, "delays": delays}).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _split(stream: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(1, 6))))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def _awkward_stream(rng: random.Random) -> bytes:
    names = [b"data", b"event", b"id", b"retry", b"topic", b"Data", b"", b"data ", b":"]
    names.append(BOM + b"data")
    separators = [b":", b": ", b":  ", b"", b"::"]
    values = [b"", b"x", b"7", b"0099", b"+5", b"a\x00b", b"\xff", b"\xe2\x82", "é😀".encode()]
    ends = [b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n"]
    parts = [BOM] if rng.random() < 0.2 else []
    for _ in range(rng.randint(1, 14)):
        parts += [rng.choice(names), rng.choice(separators), rng.choice(values), rng.choice(ends)]
    return b"".join(parts)


def _vectors() -> dict[str, dict[str, Any]]:
    rng = random.Random(20261202)
    vectors: dict[str, dict[str, Any]] = {}
    for name, chunks in CORPUS.items():
        stream = b"".join(chunks)
        vectors[f"corpus/{name}"] = _case(chunks)
        vectors[f"bytewise/{name}"] = _case([stream[i : i + 1] for i in range(len(stream))])
        if len(stream) > 1:
            vectors[f"split/{name}"] = _case(_split(stream, rng))
        vectors[f"seeded/{name}"] = _case(chunks, lastEventId="seed-1")
    for n in range(200):
        stream = _awkward_stream(rng)
        vectors[f"random/{n}"] = _case(_split(stream, rng) if len(stream) > 1 else [stream])
    line = b"data: " + b"x" * 58
    vectors |= {
        "bound/line-exactly": _case([line + b"\n\n"], maxEventSize=64),
        "bound/line-over": _case([b"id: 1\ndata: a\n\n" + line + b"y\n\n"], maxEventSize=64),
        "bound/line-over-across-chunks": _case(
            [b"data: a\n\n", line[:30], line[30:] + b"yz\n"], maxEventSize=64
        ),
        "bound/unfinished-tail-over": _case([b"id: 2\ndata: a\n\n" + b"d" * 70], maxEventSize=64),
        "bound/data-buffer-over": _case(
            [b"data: " + b"x" * 40 + b"\n"] * 2 + [b"\n"], maxEventSize=64
        ),
        "bound/data-buffer-exactly": _case(
            [b"data: " + b"x" * 31 + b"\n"] * 2 + [b"\n"], maxEventSize=64
        ),
        "bound/none": _case([b"data: " + b"x" * 5000 + b"\n\n"], maxEventSize=None),
        "topic/per-event": _case([TAGGED]),
        "topic/bytewise": _case([TAGGED[i : i + 1] for i in range(len(TAGGED))]),
        "retry/huge": _case([b"retry: 9007199254740991\n", b"retry: 18446744073709551616\n\n"]),
        "retry/leading-zeros": _case([b"retry: 000000000000000000000000012\ndata: r\n\n"]),
    }
    return vectors


#: A tagged stream: the topic is per event (reset by a blank line, dispatched or not).
TAGGED = (
    b"topic: a\ndata: 1\n\ndata: 2\n\ntopic: b\n\ndata: 3\n\n"
    b"topic: x\ntopic: c\r\nid: 9\ndata: 4\n\ntopic:d\nevent: e\ndata\n\n"
)
TAGGED_TOPICS = ["a", "", "", "c", "d"]

VECTORS = _vectors()


#: (attempt, the server's retry in ms or None, the random draw): jitter made deterministic.
DELAYS: list[tuple[int, int | None, float]] = [
    (attempt, retry, draw)
    for attempt in (1, 2, 3, 5, 9, 40)
    for retry in (None, 0, 250, 3000, 45000)
    for draw in (0.0, 0.37, 0.999)
]


class _Draw(random.Random):
    """A random source whose ``uniform(a, b)`` is ``a + draw * (b - a)``, as JS's ``random()``."""

    def __init__(self, draw: float) -> None:
        super().__init__()
        self.draw = draw

    def uniform(self, a: float, b: float) -> float:
        return a + self.draw * (b - a)


@pytest.fixture(scope="module")
def node_results() -> dict[str, Any]:
    names = sorted(VECTORS)
    result = _node([VECTORS[n] for n in names], DELAYS)
    return {
        "outcomes": dict(zip(names, result["outcomes"], strict=True)),
        "delays": result["delays"],
    }


@pytest.fixture(scope="module")
def node_outcomes(node_results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    outcomes: dict[str, dict[str, Any]] = node_results["outcomes"]
    return outcomes


def test_js_reconnect_delays_are_the_python_policys(node_results: dict[str, Any]) -> None:
    """Server retry first, then x2 per failure up to 30 s, the growth jittered ("equal")."""
    policy = ReconnectPolicy()
    expected = [
        policy.next_delay(attempt, retry, _Draw(draw)) * 1000 for attempt, retry, draw in DELAYS
    ]
    assert node_results["delays"] == pytest.approx(expected)


def _standard(outcome: dict[str, Any]) -> dict[str, Any]:
    """An outcome without the ``topic`` extension, as the standard's parser gives it."""
    assert len(outcome["topics"]) == len(outcome["events"])
    return {key: value for key, value in outcome.items() if key != "topics"}


@pytest.mark.parametrize("name", sorted(n for n in VECTORS if not n.startswith("random/")))
def test_js_parser_matches_the_python_parser(name: str, node_outcomes: dict[str, Any]) -> None:
    assert _standard(node_outcomes[name]) == _python(VECTORS[name])


def test_js_parser_matches_the_python_parser_on_random_streams(
    node_outcomes: dict[str, Any],
) -> None:
    names = [n for n in VECTORS if n.startswith("random/")]
    differ = [n for n in names if _standard(node_outcomes[n]) != _python(VECTORS[n])]
    assert differ == [], [(n, VECTORS[n], node_outcomes[n]) for n in differ[:3]]


def test_js_parser_follows_the_standard_on_the_whole_corpus(node_outcomes: dict[str, Any]) -> None:
    for name, chunks in CORPUS.items():
        reference = reference_parse(b"".join(chunks))
        outcome = node_outcomes[f"corpus/{name}"]
        assert [tuple(e) for e in outcome["events"]] == reference.events, name
        assert outcome["lastEventId"] == reference.last_event_id, name


@pytest.mark.parametrize("name", ["topic/per-event", "topic/bytewise"])
def test_js_parser_gives_each_event_its_own_topic_field(
    name: str, node_outcomes: dict[str, Any]
) -> None:
    """A ``topic:`` line names the event being built; a blank line forgets it, no dispatch."""
    outcome = node_outcomes[name]
    assert outcome["topics"] == TAGGED_TOPICS
    assert [e[1] for e in outcome["events"]] == ["1", "2", "3", "4", ""]


def test_random_streams_with_topic_lines_are_among_the_vectors(
    node_outcomes: dict[str, Any],
) -> None:
    """The seeded random streams hold ``topic`` fields too, so the comparison covers them."""
    random = [node_outcomes[n] for n in VECTORS if n.startswith("random/")]
    assert any(any(outcome["topics"]) for outcome in random)
