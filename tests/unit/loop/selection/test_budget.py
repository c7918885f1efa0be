"""The labeling budget: the queue never grows past it, and started work is never taken away."""

from __future__ import annotations

import pytest

from loop.selection.budget import Offer, Pending, plan


def test_offers_fill_free_places_best_first() -> None:
    result = plan([Pending("a", 0.5)], [Offer("b", 0.1), Offer("c", 0.9), Offer("d", 0.3)], 3)
    assert result.write == ["c", "d"]
    assert result.rejected == ["b"]
    assert result.remove == []


def test_a_better_offer_replaces_the_weakest_untouched_record() -> None:
    pending = [Pending("weak-started", 0.1, started=True), Pending("weak", 0.2), Pending("ok", 0.6)]
    result = plan(pending, [Offer("new", 0.7), Offer("meh", 0.15)], budget=3)
    assert result.remove == ["weak"]
    assert result.write == ["new"]
    assert result.rejected == ["meh"]  # the only weaker record is being worked on


def test_an_offer_already_queued_is_an_update_and_costs_nothing() -> None:
    result = plan([Pending("a", 0.5), Pending("b", 0.4)], [Offer("a", 0.9)], budget=2)
    assert result.write == ["a"]
    assert result.remove == result.rejected == []


def test_the_queue_never_exceeds_the_budget() -> None:
    pending = [Pending(f"p{i}", i / 10) for i in range(5)]
    offers = [Offer(f"o{i}", 0.05 + i / 7) for i in range(10)]
    result = plan(pending, offers, budget=5)
    after = ({p.id for p in pending} - set(result.remove)) | set(result.write)
    assert len(after) == 5
    assert sorted(result.remove) == ["p0", "p1", "p2", "p3", "p4"]


def test_a_full_queue_of_started_records_takes_nothing() -> None:
    result = plan([Pending("a", 0.0, started=True)], [Offer("b", 1.0)], budget=1)
    assert result.rejected == ["b"] and result.write == [] and result.remove == []


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        plan([], [], 0)


def test_the_evaluation_sample_is_outside_the_budget_and_never_replaced() -> None:
    pending = [Pending("eval-1", 0.0, kept=True), Pending("a", 0.5), Pending("b", 0.6)]
    result = plan(pending, [Offer("eval-2", 0.0, kept=True), Offer("c", 0.9)], budget=2)
    assert "eval-2" in result.write  # the queue is full, and it goes in all the same
    assert result.remove == ["a"]  # the better offer replaces a selected record ...
    assert "eval-1" not in result.remove  # ... never an evaluation one, whatever its score
    assert sorted(result.write) == ["c", "eval-2"]
