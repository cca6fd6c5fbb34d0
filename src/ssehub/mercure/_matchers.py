"""Topic matchers of a subscription, and the rules topics and ids must follow.

Both dialects of the Mercure protocol are read from one query string:

* 1.0 (draft-08): ``match`` / ``match_exact`` (exact, byte for byte) and
  ``match_urlpattern`` (WHATWG URL Pattern, evaluated by the ``urlpattern``
  wheel — Rust's ``regex`` engine, linear time; relative patterns and topics
  are resolved against the hub's URL).  Any other name in the ``match``
  namespace (case-insensitive prefix) is refused: ``400``.
* 0.x (draft-07): ``topic`` — ``*`` (every topic), an RFC 6570 URI template
  (``{name}`` one path segment, ``{+name}`` any run), or an exact string;
  templates are matched, never expanded, by ``ssehub.hub.Selector.template``
  (compiled to bounded parts, linear time).

The value ``*`` selects every topic whatever the matcher type.  Values must be
UTF-8 without control or format characters (:func:`check_text`), at most
:data:`MAX_MATCHER_LENGTH` characters, and a request may carry at most
:data:`MAX_MATCHERS` of them.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import urlpattern

from ..hub import InvalidSelectorError, Selector
from ..server import ApiError

__all__ = [
    "HUB_PATH",
    "MAX_MATCHERS",
    "MAX_MATCHER_LENGTH",
    "Matcher",
    "addresses_hub",
    "check_text",
    "parse_matchers",
]

#: The hub's path: topics under it are the hub's own (subscription events).
HUB_PATH = "/.well-known/mercure"
#: Most matchers one subscription request may carry.
MAX_MATCHERS = 100
#: Longest matcher value, in characters.
MAX_MATCHER_LENGTH = 1024

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def check_text(value: str, what: str) -> str:
    """``value`` unless it holds a C0/C1 control, DEL or a format (Cf) character (400)."""
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F or unicodedata.category(ch) in ("Cf", "Cs"):
            raise ApiError(400, "invalid_mercure_request", f"{what} holds a control character")
    return value


@dataclass(frozen=True, slots=True)
class Matcher:
    """One topic matcher: its type (``exact``, ``urlpattern``, ``template``), value and test."""

    match_type: str
    match: str
    test: Callable[[str], bool]

    def matches_any(self, topics: Iterable[str]) -> bool:
        test = self.test
        return any(test(t) for t in topics)


def _everything(topic: str) -> bool:
    return True


def _exact(value: str) -> Callable[[str], bool]:
    def test(topic: str) -> bool:
        return topic == value

    return test


def _urlpattern(value: str, base: str) -> Callable[[str], bool]:
    try:
        pattern = urlpattern.URLPattern(value, base)
    except (ValueError, TypeError) as exc:
        raise ApiError(
            400, "invalid_mercure_request", f"not a URL pattern: {str(exc)[:100]}"
        ) from exc

    def test(topic: str) -> bool:
        try:
            return bool(pattern.test(topic, base))
        except (ValueError, TypeError):  # a topic that is no URL reference never matches
            return False

    return test


def _template(value: str) -> Callable[[str], bool]:
    if value == "*":
        return _everything
    try:
        return Selector.template(value).matches
    except InvalidSelectorError as exc:
        raise ApiError(400, "invalid_mercure_request", f"topic selector: {exc}") from exc


def parse_matchers(params: Iterable[tuple[str, str]], hub_url: str) -> list[Matcher]:
    """The matchers of a subscribe query (``params`` as form pairs); ``400`` for a bad one."""
    found: dict[tuple[str, str], Matcher] = {}
    for name, value in params:
        if name == "topic":
            kind = "template"
        elif name.lower().startswith("match"):
            if name in ("match", "match_exact"):
                kind = "exact"
            elif name == "match_urlpattern":
                kind = "urlpattern"
            else:
                raise ApiError(
                    400, "invalid_mercure_request", f"unknown matcher parameter {name[:40]!r}"
                )
        else:
            continue
        check_text(value, "a topic matcher")
        if len(value) > MAX_MATCHER_LENGTH:
            raise ApiError(
                400, "invalid_mercure_request", f"matcher over {MAX_MATCHER_LENGTH} characters"
            )
        if (kind, value) in found:
            continue
        if len(found) >= MAX_MATCHERS:
            raise ApiError(400, "invalid_mercure_request", f"over {MAX_MATCHERS} matchers")
        test: Callable[[str], bool]
        if value == "*":
            test = _everything
        elif kind == "exact":
            test = _exact(value)
        elif kind == "urlpattern":
            test = _urlpattern(value, hub_url)
        else:
            test = _template(value)
        if kind == "template" and "{" not in value:
            kind = "exact"  # a 0.x selector without braces is an exact topic
        found[kind, value] = Matcher(kind, value, test)
    return list(found.values())


def _normal_path(path: str) -> str:
    """``path`` with unreserved percent-escapes decoded and dot-segments removed."""
    out: list[str] = []
    i = 0
    while i < len(path):
        if path[i] == "%" and i + 2 < len(path):
            decoded = unquote(path[i : i + 3])
            if len(decoded) == 1 and decoded in _UNRESERVED:
                out.append(decoded)
                i += 3
                continue
        out.append(path[i])
        i += 1
    text = "".join(out)
    normal = posixpath.normpath(text) if text else text
    if text.endswith("/") and not normal.endswith("/"):
        normal += "/"
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal


def addresses_hub(topic: str, hub_url: str) -> bool:
    """Whether ``topic``, resolved against the hub's URL, names a path of the hub itself."""
    try:
        path = urlsplit(urljoin(hub_url, topic)).path
    except ValueError:
        return False
    path = _normal_path(path)
    return path == HUB_PATH or path.startswith(HUB_PATH + "/")
