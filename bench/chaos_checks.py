"""The invariants ``alloop bench chaos`` checks once the loop has settled: every document
tagged with byte-identical copies, one Argilla record per candidate, one stored label per
answer, every version loadable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import live
from bench.topic_tail import Tail


@dataclass
class Findings:
    """What the checks found; ``failures`` is empty when every invariant holds."""

    figures: dict[str, Any]
    failures: list[str]
    lost: bool
    """Something expected is not there (yet): the loop may still be catching up."""


def check(
    loop: live.Loop,
    streamed: Sequence[str],
    tagged: Tail,
    candidates: Tail,
    dead: dict[str, Tail],
    versions: bool = True,
) -> Findings:
    """Every invariant, on what the topics, Argilla, the label store and the registry hold now
    (the registry's versions are loaded only with ``versions``)."""
    from connectors.argilla.answers import poll
    from connectors.argilla.setup import owner_client
    from loop.labels import LabelStore

    argilla = loop.stack.argilla
    records: Counter[str] = Counter()
    with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
        for dataset in http.get("/api/v1/me/datasets").raise_for_status().json()["items"]:
            if str(dataset["name"]).startswith(f"{loop.prefix}-"):
                records.update(_external_ids(http, str(dataset["id"])))
        answers = poll(http, loop.prefix)
    stored = list(LabelStore(loop.home / "labels" / "labels.db").answers())
    rows = Counter(a.response_id for a in stored)  # the store's rows, by response id
    found = [
        tagged_findings(streamed, tagged.snapshot(), set(dead["raw"].snapshot())),
        record_findings(set(candidates.snapshot()) - set(dead["candidates"].snapshot()), records),
        label_findings(
            {a.response_id for a in answers},
            set(rows),
            rows,
        ),
        *([version_findings(loop.home / "registry")] if versions else []),
    ]
    figures = {k: v for f in found for k, v in f.figures.items()}
    figures["dead_lettered"] = {name: len(tail.snapshot()) for name, tail in dead.items()}
    return Findings(figures, [x for f in found for x in f.failures], any(f.lost for f in found))


def tagged_findings(
    streamed: Sequence[str], copies: dict[str, list[bytes]], dead: set[str]
) -> Findings:
    """Every streamed document tagged (or dead-lettered), its copies byte-identical."""
    missing = [i for i in streamed if i not in copies and i not in dead]
    unequal = [i for i, values in copies.items() if len(set(values)) > 1]
    failures = _failures((missing, "document(s) not on the tagged topic"))
    if unequal:
        values = copies[unequal[0]]
        failures.append(
            f"{len(unequal)} document(s) tagged twice with different bytes, e.g. "
            f"{unequal[0]}: {values[0][:300]!r} against {values[-1][:300]!r}"
        )
    figures = {
        "tagged": sum(1 for i in streamed if i in copies),
        "replayed": sum(1 for v in copies.values() if len(v) > 1),
        "tagged_copies": sum(len(v) for v in copies.values()) - len(copies),
        "lost_documents": len(missing),
        "unequal_copies": len(unequal),
    }
    return Findings(figures, failures, bool(missing))


def record_findings(wanted: set[str], records: Counter[str]) -> Findings:
    """Exactly one Argilla record per candidate id (``records``: records per external id)."""
    no_record = sorted(wanted - set(records))
    twice = sorted(i for i, n in records.items() if n > 1)
    strays = sorted(set(records) - wanted)
    failures = _failures(
        (no_record, "candidate(s) without an Argilla record"),
        (twice, "candidate(s) with several Argilla records"),
        (strays, "Argilla record(s) of no candidate"),
    )
    figures = {
        "candidates": len(wanted),
        "argilla_records": sum(records.values()),
        "lost_candidates": len(no_record),
        "duplicate_records": sum(records[i] - 1 for i in twice),
    }
    return Findings(figures, failures, bool(no_record))


def label_findings(given: set[str], stored: set[str], lines: Counter[str]) -> Findings:
    """Every answer given in Argilla in the label store, once (``lines``: the store's rows per
    response id)."""
    unstored = sorted(given - stored)
    repeated = sorted(r for r in given if lines[r] > 1)
    failures = _failures(
        (unstored, "answer(s) given in Argilla not in the label store"),
        (repeated, "response id(s) stored more than once"),
    )
    figures = {
        "answers": len(given),
        "lost_labels": len(unstored),
        "duplicate_labels": sum(lines[r] - 1 for r in repeated),
    }
    return Findings(figures, failures, bool(unstored))


def _failures(*found: tuple[Sequence[str], str]) -> list[str]:
    """One line per check that found something: how many, what, and the first few."""
    return [f"{len(items)} {what}: {', '.join(items[:3])}" for items, what in found if items]


def version_findings(folder: Path) -> Findings:
    """Every registered version loads (the promoted one among them)."""
    from loop.classification.factories import load_version
    from loop.registry import ModelRegistry

    registry = ModelRegistry(folder)
    versions = registry.versions()
    unloadable = []
    for version in versions:
        try:
            load_version(registry, version)
        except Exception as exc:  # what a user would see: this version cannot serve
            unloadable.append(f"{version} ({type(exc).__name__}: {exc})")
    promoted = registry.promoted()
    if promoted is not None and promoted not in versions:
        unloadable.append(f"{promoted} (promoted, not registered)")
    figures = {
        "versions": len(versions),
        "promoted": promoted,
        "unloadable_versions": len(unloadable),
    }
    failures = [f"version(s) that cannot be loaded: {', '.join(unloadable)}"] if unloadable else []
    return Findings(figures, failures, False)


def _external_ids(http: Any, dataset_id: str, page: int = 500) -> Iterator[str]:
    offset = 0
    while True:
        found = http.post(
            f"/api/v1/datasets/{dataset_id}/records/search",
            params={"offset": offset, "limit": page},
            json={},
        ).raise_for_status()
        records = [item["record"] for item in found.json()["items"]]
        yield from (str(r.get("external_id")) for r in records)
        offset += len(records)
        if len(records) < page:
            return
