"""Stable ids and the stable fractions that freeze the train/test split."""

from __future__ import annotations

import hashlib
import unicodedata

from loop.ids import content_id, stable_fraction


def test_content_id_is_stable_and_known() -> None:
    # pinned: a change here re-ids every document already ingested
    digest = hashlib.sha256(b"hello world").hexdigest()[:24]
    assert content_id("hello world") == f"h-{digest}"
    assert content_id("hello world") == content_id("hello world")


def test_content_id_ignores_surrounding_whitespace() -> None:
    assert content_id("  hello world\n") == content_id("hello world")
    assert content_id("\thello world\r\n") == content_id("hello world")


def test_content_id_ignores_unicode_composition() -> None:
    composed = "caf\u00e9"
    decomposed = "cafe\u0301"
    assert composed != decomposed
    assert unicodedata.normalize("NFC", decomposed) == composed
    assert content_id(decomposed) == content_id(composed)


def test_different_texts_get_different_ids() -> None:
    texts = ["hello world", "hello  world", "Hello world", "hello world.", "", "a", "b"]
    ids = [content_id(t) for t in texts]
    assert len(set(ids)) == len(texts)
    # inner whitespace matters; only the ends are stripped
    assert content_id("a b") != content_id("a  b")


def test_stable_fraction_is_in_unit_interval_and_deterministic() -> None:
    keys = [f"doc-{i}" for i in range(2000)] + ["", "\x00", "é" * 100]
    for key in keys:
        value = stable_fraction(key)
        assert 0.0 <= value < 1.0
        assert stable_fraction(key) == value


def test_stable_fraction_is_pinned() -> None:
    digest = hashlib.sha256(b"\x00doc-1").digest()
    assert stable_fraction("doc-1") == int.from_bytes(digest[:8], "big") / 2**64


def test_salt_changes_the_fraction() -> None:
    keys = [f"doc-{i}" for i in range(100)]
    plain = [stable_fraction(k) for k in keys]
    salted = [stable_fraction(k, salt="project-b") for k in keys]
    assert sum(a != b for a, b in zip(plain, salted, strict=True)) == len(keys)


def test_stable_fraction_splits_roughly_80_20() -> None:
    n = 10_000
    test = sum(stable_fraction(f"doc-{i}") >= 0.8 for i in range(n))
    # binomial(10000, 0.2): sd = 40; 5 sd either side
    assert abs(test - 0.2 * n) < 200


def test_stable_fraction_is_roughly_uniform_across_deciles() -> None:
    n = 10_000
    buckets = [0] * 10
    for i in range(n):
        buckets[int(stable_fraction(f"key:{i}") * 10)] += 1
    # binomial(10000, 0.1): sd = 30; 5 sd either side
    assert all(abs(count - n / 10) < 150 for count in buckets), buckets
