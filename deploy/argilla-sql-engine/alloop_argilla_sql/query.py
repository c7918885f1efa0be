"""Argilla's search semantics over record documents, in plain Python.

A record document is what argilla-server's Elasticsearch engine indexes, as a dict:
``id``, ``external_id``, ``status``, ``inserted_at``, ``updated_at``, ``fields`` (name ->
text), ``metadata`` (name -> value), ``responses`` (a list of ``{id, status, user_id,
<question>: value}``), ``suggestions`` (question -> ``{type, agent, score, value}``).

This module holds no argilla-server import, so its semantics are tested without a server:
filters (:class:`Terms`, :class:`Range`, :class:`And`) on scopes (:class:`Scope`), sorting with
missing values last (as Elasticsearch does), and the ``simple_query_string`` text query with
Elasticsearch's defaults: terms are ANDed, ``|`` means OR, ``-`` negates, ``"..."`` is a
phrase, a trailing ``*`` is a prefix, parentheses group; text is lowercased and split on
non-word characters, like the standard analyzer.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Doc = dict[str, Any]

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lowercased word tokens (the standard analyzer, near enough)."""
    return _TOKEN.findall(text.lower())


# ---- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a filter or a sort looks at.

    ``entity`` is ``record`` (``property``: id, external_id, status, inserted_at, updated_at),
    ``metadata`` (``name``), ``suggestion`` (``name``: the question, ``property``: value, score,
    agent, type) or ``response`` (``name``: a question, or ``property``: status; ``user_id``:
    only that user's responses).
    """

    entity: Literal["record", "metadata", "suggestion", "response"]
    name: str | None = None
    property: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class Terms:
    scope: Scope
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    scope: Scope
    ge: float | None = None
    le: float | None = None


@dataclass(frozen=True)
class And:
    filters: tuple[Filter, ...]


Filter = Terms | Range | And


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _term_match(value: Any, values: tuple[str, ...]) -> bool:
    wanted = set(values)
    return any(_term(v) in wanted for v in _as_list(value))


def _term(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def _in_range(value: Any, ge: float | None, le: float | None) -> bool:
    for v in _as_list(value):
        try:
            number = float(v)
        except (TypeError, ValueError):
            continue
        if (ge is None or number >= ge) and (le is None or number <= le):
            return True
    return False


def _value_at(doc: Doc, scope: Scope) -> Any:
    if scope.entity == "record":
        return doc.get(str(scope.property))
    if scope.entity == "metadata":
        return (doc.get("metadata") or {}).get(str(scope.name))
    if scope.entity == "suggestion":
        suggestion = (doc.get("suggestions") or {}).get(str(scope.name))
        return None if suggestion is None else suggestion.get(str(scope.property))
    raise ValueError(f"no single value for scope {scope}")


def _responses(doc: Doc, user_id: str | None) -> list[dict[str, Any]]:
    found = doc.get("responses") or []
    if user_id is None:
        return list(found)
    return [r for r in found if str(r.get("user_id")) == user_id]


def _response_status_match(doc: Doc, scope: Scope, values: tuple[str, ...]) -> bool:
    """Argilla's response status filter; ``pending`` means no response (of that user)."""
    wanted = set(values)
    if "pending" in wanted:
        wanted.discard("pending")
        if not _responses(doc, scope.user_id):
            return True
        if not wanted:
            return False
    return any(str(r.get("status")) in wanted for r in _responses(doc, scope.user_id))


def matches(doc: Doc, filter_: Filter) -> bool:
    """Whether ``doc`` passes ``filter_``."""
    if isinstance(filter_, And):
        return all(matches(doc, f) for f in filter_.filters)
    scope = filter_.scope
    if scope.entity == "response":
        if scope.name is None:
            if scope.property != "status" or not isinstance(filter_, Terms):
                raise ValueError(f"cannot filter responses on {scope}")
            return _response_status_match(doc, scope, filter_.values)
        # One response must satisfy the condition (and belong to the user, when given).
        for response in _responses(doc, scope.user_id):
            value = response.get(scope.name)
            if isinstance(filter_, Terms) and _term_match(value, filter_.values):
                return True
            if isinstance(filter_, Range) and _in_range(value, filter_.ge, filter_.le):
                return True
        return False
    value = _value_at(doc, scope)
    if isinstance(filter_, Terms):
        return _term_match(value, filter_.values)
    return _in_range(value, filter_.ge, filter_.le)


# ---- sorting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    scope: Scope
    descending: bool = False


def _sort_value(doc: Doc, scope: Scope, descending: bool) -> Any:
    if scope.entity == "response":
        key = scope.name or scope.property or ""
        values = [r.get(key) for r in _responses(doc, scope.user_id) if r.get(key) is not None]
        numbers = [float(v) for v in values if isinstance(v, (int, float))]
        if numbers:
            return sum(numbers) / len(numbers)  # Elasticsearch's nested sort mode "avg"
        texts = sorted(str(v) for v in values)
        if not texts:
            return None
        return texts[-1] if descending else texts[0]
    value = _value_at(doc, scope)
    if isinstance(value, list):
        items = [v for v in value if v is not None]
        if not items:
            return None
        return max(items) if descending else min(items)
    return value


def sort_docs(docs: list[Doc], orders: Sequence[Order]) -> list[Doc]:
    """Stable multi-key sort; documents without a value go last whatever the direction."""
    result = list(docs)
    for order in reversed(orders):
        present = [(d, _sort_value(d, order.scope, order.descending)) for d in result]
        with_value = [(d, v) for d, v in present if v is not None]
        without = [d for d, v in present if v is None]
        with_value.sort(key=lambda item: _sortable(item[1]), reverse=order.descending)
        result = [d for d, _ in with_value] + without
    return result


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def user_order(doc_id: str, user_id: str) -> float:
    """Each user's own stable shuffle of a queue (Argilla seeds a random score with the user)."""
    digest = hashlib.sha256(f"{user_id}\x00{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# ---- the text query -----------------------------------------------------------------------


@dataclass
class _Node:
    kind: Literal["term", "prefix", "phrase", "and", "or", "not", "all"]
    text: str = ""
    words: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)


_QUERY_TOKEN = re.compile(r'\s*(?:(")((?:[^"\\]|\\.)*)"?|([()|+-])|([^\s()|"]+))')


def _lex(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(query):
        match = _QUERY_TOKEN.match(query, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        if match.group(1):
            out.append(("phrase", match.group(2)))
        elif match.group(3):
            out.append((match.group(3), match.group(3)))
        elif match.group(4):
            out.append(("word", match.group(4)))
    return out


class _Parser:
    """simple_query_string grammar: or := and ('|' and)*; and := unary+ ; unary := ['-'|'+']
    atom; atom := word | word* | "phrase" | '(' or ')'. Never fails: bad syntax degrades."""

    def __init__(self, query: str) -> None:
        self.items = _lex(query)
        self.at = 0

    def peek(self) -> str | None:
        return self.items[self.at][0] if self.at < len(self.items) else None

    def take(self) -> tuple[str, str]:
        item = self.items[self.at]
        self.at += 1
        return item

    def parse(self) -> _Node:
        node = self.parse_or()
        while self.at < len(self.items):  # a stray ')': skip it and keep reading
            self.take()
            rest = self.parse_or()
            node = _Node("and", children=[node, rest])
        return node

    def parse_or(self) -> _Node:
        options = [self.parse_and()]
        while self.peek() == "|":
            self.take()
            options.append(self.parse_and())
        return options[0] if len(options) == 1 else _Node("or", children=options)

    def parse_and(self) -> _Node:
        parts: list[_Node] = []
        while self.peek() not in (None, "|", ")"):
            parts.append(self.parse_unary())
        if not parts:
            return _Node("all")
        return parts[0] if len(parts) == 1 else _Node("and", children=parts)

    def parse_unary(self) -> _Node:
        kind = self.peek()
        if kind in ("-", "+"):
            self.take()
            if self.peek() in (None, "|", ")"):
                return _Node("all")
            inner = self.parse_unary()
            return _Node("not", children=[inner]) if kind == "-" else inner
        return self.parse_atom()

    def parse_atom(self) -> _Node:
        kind, text = self.take()
        if kind == "(":
            inner = self.parse_or()
            if self.peek() == ")":
                self.take()
            return inner
        if kind == "phrase":
            return _Node("phrase", words=tokens(text))
        if kind == "word":
            if text.endswith("*") and len(text) > 1:
                stem = tokens(text[:-1])
                if len(stem) == 1:
                    return _Node("prefix", text=stem[0])
                return _Node("phrase", words=stem)  # "foo-ba*": the analysed words, in order
            words = tokens(text)
            if len(words) == 1:
                return _Node("term", text=words[0])
            if not words:
                return _Node("all")
            return _Node("phrase", words=words)  # "e-mail" is analysed into a phrase
        return _Node("all")  # a stray operator


def _contains_phrase(words: list[str], phrase: list[str]) -> bool:
    if not phrase:
        return True
    first = phrase[0]
    size = len(phrase)
    return any(
        words[i] == first and words[i : i + size] == phrase for i in range(len(words) - size + 1)
    )


def _evaluate(node: _Node, fields: list[list[str]]) -> tuple[bool, float]:
    """(matches, score). Terms match in any of the fields (Elasticsearch's per-term field
    expansion with the "*" field pattern); the score counts matching term occurrences."""
    if node.kind == "all":
        return True, 0.0
    if node.kind == "term":
        hits = sum(words.count(node.text) for words in fields)
        return hits > 0, math.log1p(hits)
    if node.kind == "prefix":
        hits = sum(1 for words in fields for w in words if w.startswith(node.text))
        return hits > 0, math.log1p(hits)
    if node.kind == "phrase":
        ok = any(_contains_phrase(words, node.words) for words in fields)
        return ok, float(len(node.words)) if ok else 0.0
    if node.kind == "not":
        ok, _ = _evaluate(node.children[0], fields)
        return not ok, 0.0
    results = [_evaluate(child, fields) for child in node.children]
    if node.kind == "and":
        return all(ok for ok, _ in results), sum(score for _, score in results)
    return any(ok for ok, _ in results), sum(score for ok, score in results if ok)


@dataclass(frozen=True)
class TextQuery:
    """A parsed text query, on one field or on every text field."""

    query: str
    field: str | None = None

    def compile(self) -> Callable[[Doc], tuple[bool, float]]:
        tree = _Parser(self.query).parse()
        cache: dict[int, list[list[str]]] = {}

        def run(doc: Doc) -> tuple[bool, float]:
            key = id(doc)
            if key not in cache:
                cache[key] = [tokens(text) for text in _texts(doc, self.field)]
            return _evaluate(tree, cache[key])

        return run


def _texts(doc: Doc, field_name: str | None) -> Iterable[str]:
    fields = doc.get("fields") or {}
    names = [field_name] if field_name is not None else list(fields)
    for name in names:
        value = fields.get(name)
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):  # a chat field: its messages' contents
            for message in value:
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    yield message["content"]
        elif value is not None and not isinstance(value, dict):
            yield str(value)


# ---- metrics ------------------------------------------------------------------------------


def terms_metrics(values: Iterable[Any]) -> tuple[int, list[tuple[str, int]]]:
    """(number of values, [(term, documents with it)] by count then term), as Elasticsearch's
    value_count and terms aggregations give them."""
    total = 0
    counts: dict[str, int] = {}
    for value in values:
        items = _as_list(value)
        total += len(items)
        for term in {_term(v) for v in items}:
            counts[term] = counts.get(term, 0) + 1
    return total, sorted(counts.items(), key=lambda item: (-item[1], item[0]))
