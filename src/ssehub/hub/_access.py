"""Topic selectors and grants: who may publish to, or read private events of, a topic.

The token model is Mercure's (draft-08 and its authorization docs); the hub
only sees the result, a :class:`TopicGrant` — a set of selectors, each of
which either matches a topic or does not.  Selector kinds:

* ``*`` — every topic.
* ``exact`` — the topic string itself.
* ``urlpattern`` — a bounded subset of WHATWG URL Pattern syntax: ``*``
  matches any run of characters (``/`` included), ``:name`` one or more
  characters up to the next ``/`` (a ``:`` starting no name, as in
  ``https:``, is literal); everything else is literal (``\\`` escapes
  the next character).  Regular-expression groups ``(…)``, modifiers and
  ``{…}`` groups are refused: such a selector grants nothing.
* ``template`` — the legacy ``mercure`` claim's URI templates (RFC 6570,
  level 1/2): ``{name}`` matches one or more characters up to the next ``/``,
  ``{+name}`` any run of characters.  A selector without braces is exact.

Matching never builds a regular expression from user input: a selector is
compiled into at most :data:`MAX_PARTS` parts, and a topic is matched by a
set-of-positions simulation in O(parts × len(topic)) steps — linear in the
topic for a bounded selector, whatever the input.  Selectors longer than
:data:`MAX_SELECTOR_LENGTH` are refused.

A grant is a value object, cheap to test per event: the hub checks a
subscriber's grant against every *private* event's topic, live and on replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALL_TOPICS",
    "MAX_PARTS",
    "MAX_SELECTOR_LENGTH",
    "NO_GRANT",
    "InvalidSelectorError",
    "Selector",
    "TopicGrant",
]

#: The longest selector accepted, in characters.
MAX_SELECTOR_LENGTH = 1024
#: Most parts (literals and wildcards) one selector compiles to.
MAX_PARTS = 64

_ANY = 0  # any run of characters, "/" included (possibly empty)
_SEGMENT = 1  # one or more characters other than "/"


class InvalidSelectorError(ValueError):
    """A selector this hub can't interpret (it then grants nothing)."""


Part = str | int


def _compile_urlpattern(text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    literal: list[str] = []
    i, n = 0, len(text)

    def flush() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            literal.append(text[i + 1])
            i += 2
            continue
        if c == "*":
            flush()
            parts.append(_ANY)
            i += 1
            continue
        if c == ":":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            if j == i + 1:  # "https:" — a ':' starting no name is literal
                literal.append(c)
                i += 1
                continue
            if j < n and text[j] in "?+*":
                raise InvalidSelectorError("URL pattern modifiers are not supported")
            flush()
            parts.append(_SEGMENT)
            i = j
            continue
        if c in "(){}?+":
            raise InvalidSelectorError(f"URL pattern syntax {c!r} is not supported")
        literal.append(c)
        i += 1
    flush()
    return tuple(parts)


def _compile_template(text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    i, n = 0, len(text)
    while i < n:
        open_at = text.find("{", i)
        if open_at < 0:
            parts.append(text[i:])
            break
        if open_at > i:
            parts.append(text[i:open_at])
        close_at = text.find("}", open_at)
        if close_at < 0:
            raise InvalidSelectorError("unclosed '{' in a URI template")
        name = text[open_at + 1 : close_at]
        reserved = name.startswith("+")
        name = name.lstrip("+")
        if not name or not all(ch.isalnum() or ch in "_." for ch in name):
            raise InvalidSelectorError(f"unsupported URI template expression {{{name}}}")
        parts.append(_ANY if reserved else _SEGMENT)
        i = close_at + 1
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class Selector:
    """One compiled selector; build with :meth:`exact`, :meth:`urlpattern` or :meth:`template`."""

    text: str
    parts: tuple[Part, ...]
    everything: bool = False

    @classmethod
    def exact(cls, text: str) -> Selector:
        _check_length(text)
        return cls(text, (text,))

    @classmethod
    def urlpattern(cls, text: str) -> Selector:
        _check_length(text)
        if text == "*":
            return cls(text, (), everything=True)
        return cls(text, _bounded(_compile_urlpattern(text)))

    @classmethod
    def template(cls, text: str) -> Selector:
        """A legacy ``mercure`` claim selector: ``*``, a URI template, or exact."""
        _check_length(text)
        if text == "*":
            return cls(text, (), everything=True)
        return cls(text, _bounded(_compile_template(text)))

    def matches(self, topic: str) -> bool:
        """Whether ``topic`` is selected (O(parts × len(topic)))."""
        if self.everything:
            return True
        parts = self.parts
        if len(parts) == 1 and isinstance(parts[0], str):
            return topic == parts[0]
        return _match(parts, topic)


def _check_length(text: str) -> None:
    if len(text) > MAX_SELECTOR_LENGTH:
        raise InvalidSelectorError(f"selector over {MAX_SELECTOR_LENGTH} characters")


def _bounded(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    if len(parts) > MAX_PARTS:
        raise InvalidSelectorError(f"selector over {MAX_PARTS} parts")
    return parts or ("",)


def _match(parts: tuple[Part, ...], topic: str) -> bool:
    """Simulate the selector over the set of reachable positions in ``topic``."""
    n = len(topic)
    reachable = [0]  # sorted, distinct positions
    for part in parts:
        if not reachable:
            return False
        if isinstance(part, str):
            size = len(part)
            reachable = [p + size for p in reachable if topic.startswith(part, p)]
        elif part == _ANY:
            reachable = list(range(reachable[0], n + 1))
        else:  # _SEGMENT: one or more non-"/" characters from each position
            out: list[int] = []
            last = -1
            for p in reachable:
                stop = topic.find("/", p)
                stop = n if stop < 0 else stop
                for q in range(max(p + 1, last + 1), stop + 1):
                    out.append(q)
                last = max(last, stop)
            reachable = out
    return bool(reachable) and reachable[-1] == n


@dataclass(frozen=True, slots=True)
class TopicGrant:
    """A set of selectors; a topic is granted when any selector matches it."""

    selectors: tuple[Selector, ...] = ()

    @classmethod
    def of(cls, selectors: Iterable[Selector]) -> TopicGrant:
        return cls(tuple(selectors))

    @property
    def everything(self) -> bool:
        return any(s.everything for s in self.selectors)

    def allows(self, topic: str) -> bool:
        return any(s.matches(topic) for s in self.selectors)

    def allows_all(self, topics: Iterable[str]) -> bool:
        return all(self.allows(t) for t in topics)


#: The grant of an anonymous client: nothing.
NO_GRANT = TopicGrant()
#: A grant of every topic.
ALL_TOPICS = TopicGrant((Selector("*", (), everything=True),))
