"""Topic matchers and the hub's reserved namespace, without a server.

Issue 13: the matching rules of both dialects (URL Pattern, URI templates,
exact, ``*``), the ``match`` namespace, the value constraints, and the
reserved-namespace test that resolves a topic against the hub's URL.
"""

from __future__ import annotations

import time

import pytest

from ssehub.mercure._matchers import MAX_MATCHERS, Matcher, addresses_hub, parse_matchers
from ssehub.server import ApiError

BASE = "https://hub.example/.well-known/mercure"


def matcher(name: str, value: str) -> Matcher:
    (found,) = parse_matchers([(name, value)], BASE)
    return found


@pytest.mark.parametrize(
    ("name", "value", "topic", "expected"),
    [
        ("match", "https://a.example/x", "https://a.example/x", True),
        ("match", "https://a.example/x", "https://a.example/X", False),
        ("match_exact", "*", "anything at all", True),
        ("match_urlpattern", "https://a.example/books/:id", "https://a.example/books/1", True),
        ("match_urlpattern", "https://a.example/books/:id", "https://a.example/books/1/x", False),
        ("match_urlpattern", "https://a.example/books/*", "https://a.example/books/1/x", True),
        ("match_urlpattern", "https://a.example/books/:id", "not a url}", False),
        ("match_urlpattern", "/.well-known/mercure/s/*", "/.well-known/mercure/s/a/b", True),
        ("topic", "https://a.example/books/{id}", "https://a.example/books/1", True),
        ("topic", "https://a.example/books/{id}", "https://a.example/books/1/2", False),
        ("topic", "https://a.example/{+path}", "https://a.example/books/1/2", True),
        ("topic", "plain", "plain", True),
        ("topic", "*", "x", True),
    ],
)  # fmt: skip
def test_each_matcher_type_selects_what_its_dialect_says(
    name: str, value: str, topic: str, expected: bool
) -> None:
    assert matcher(name, value).test(topic) is expected


@pytest.mark.parametrize(
    "params",
    [
        [("matchtype", "x")],
        [("Match", "x")],
        [("match_regexp", "x")],
        [("match", "a\x7fb")],
        [("match", "a\u202eb")],
        [("match", "x" * 1025)],
        [("match_urlpattern", "https://a.example/(")],
        [("topic", "{unclosed")],
        [("match", f"t{i}") for i in range(MAX_MATCHERS + 1)],
    ],
)
def test_a_bad_matcher_is_400(params: list[tuple[str, str]]) -> None:
    with pytest.raises(ApiError) as caught:
        parse_matchers(params, BASE)
    assert caught.value.status == 400


def test_other_parameters_are_not_matchers_and_duplicates_count_once() -> None:
    found = parse_matchers([("last_event_id", "x"), ("match", "a"), ("match", "a")], BASE)
    assert [(m.match_type, m.match) for m in found] == [("exact", "a")]


def test_a_hostile_url_pattern_is_matched_in_linear_time() -> None:
    pattern = "https://a.example/" + "".join(f":p{i}-*-" for i in range(10)) + "x"
    test = matcher("match_urlpattern", pattern).test
    began = time.perf_counter()
    test("https://a.example/" + "-" * 20_000 + "!")
    assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize(
    ("topic", "reserved"),
    [
        ("/.well-known/mercure", True),
        ("/.well-known/mercure/subscriptions/x", True),
        ("https://elsewhere.example/.well-known/mercure/x", True),
        ("/.well-known/%6Dercure/x", True),
        ("/a/../.well-known/mercure/x", True),
        ("/.well-known/./mercure", True),
        ("/.well-known/mercure-not", False),
        ("/.well-known/%2Fmercure", False),
        ("urn:uuid:1", False),
        ("plain-topic", False),
    ],
)
def test_the_reserved_namespace_is_judged_on_the_resolved_normalised_path(
    topic: str, reserved: bool
) -> None:
    assert addresses_hub(topic, BASE) is reserved
