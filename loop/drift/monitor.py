"""The drift monitor of the running loop: it cuts the scorer's tagged stream into windows of
``window_size`` documents and reports each against a reference.

The reference is the first ``reference_windows`` windows a served version tagged: when the
version changes (a promotion, a rollback) the monitor takes that version's reference, since
another body embeds the documents differently and another head says other things. The
reference is kept on disk per version (:mod:`loop.drift.references`): a scorer that restarts,
or a version that serves again after a rollback, goes on with the reference it had, and only
a version never seen learns a new one. It reads only what the scorer
already computed (the embeddings of the tagged batch, the probabilities on each tagged
document, the entity mentions): it never runs a model itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from loop.drift.base import DriftMethod, Window
from loop.drift.embedding import NullCache
from loop.drift.references import load_reference, save_reference
from loop.drift.report import DriftConfig, DriftReport, check
from loop.drift.store import DriftStore
from loop.messages import ModelEvent, TaggedDocument
from loop.settings import DriftSettings, Settings

logger = logging.getLogger(__name__)

Seen = tuple[TaggedDocument, npt.NDArray[np.float32] | None]


def window_of(entries: Sequence[Seen], entities: bool) -> Window:
    """The :class:`Window` of tagged documents and their embeddings (None where unknown)."""
    docs = [doc for doc, _ in entries]
    vectors = [vector for _, vector in entries]
    embeddings = (
        np.stack([v for v in vectors if v is not None])
        if vectors and all(v is not None for v in vectors)
        else None
    )
    labels = tuple(docs[0].probabilities) if docs else ()
    probabilities = None
    if labels and all(tuple(d.probabilities) == labels for d in docs):
        probabilities = np.array(
            [[d.probabilities[k] for k in labels] for d in docs], dtype=np.float32
        )
    return Window(
        size=len(docs),
        embeddings=embeddings,
        probabilities=probabilities,
        labels=labels if probabilities is not None else (),
        multi_label=bool(docs) and docs[-1].labels is not None,
        mentions=[[m.text for m in d.entities] for d in docs] if entities else None,
    )


def joined(windows: Sequence[Window]) -> Window:
    """Several windows as one (the reference); a field missing from one is missing."""

    def stacked(name: str) -> npt.NDArray[np.float32] | None:
        parts = [getattr(w, name) for w in windows]
        return None if any(p is None for p in parts) else np.vstack(parts)

    mentions = [w.mentions for w in windows]
    probabilities = stacked("probabilities")
    same_labels = len({w.labels for w in windows}) == 1
    return Window(
        size=sum(w.size for w in windows),
        embeddings=stacked("embeddings"),
        probabilities=probabilities if same_labels else None,
        labels=windows[0].labels if same_labels and probabilities is not None else (),
        multi_label=windows[-1].multi_label,
        mentions=None if any(m is None for m in mentions) else [x for m in mentions for x in m],  # type: ignore[union-attr]
    )


@dataclass
class DriftMonitor:
    """Windows of tagged documents, a reference, a report per window after it."""

    config: DriftConfig
    window_size: int
    reference_windows: int
    methods: Callable[[NullCache], Sequence[DriftMethod]]
    """The methods to run, given the reference's cache of no-drift figures (called per
    window: the entity forms people labelled may grow)."""
    entities: bool = False
    record: Callable[[DriftReport], DriftReport] = lambda report: report
    """Stores a report and returns it numbered (:class:`loop.drift.store.DriftStore.add`)."""
    load_reference: Callable[[str | None], list[Window]] = lambda version: []
    """The reference windows stored for a version (:mod:`loop.drift.references`)."""
    save_reference: Callable[[str | None, list[Window]], None] = lambda version, windows: None
    """Keeps the reference windows of a version, each time one is added."""
    pending: list[Seen] = field(default_factory=list)
    reference: list[Window] = field(default_factory=list)
    version: str | None = None
    started: bool = False
    windows: int = 0
    null_cache: NullCache = field(default_factory=dict)
    drifting: bool = False
    """Whether the newest window of the version serving now drifted."""

    def add(
        self, tagged: Sequence[TaggedDocument], embeddings: npt.NDArray[np.float32] | None
    ) -> list[DriftReport]:
        """Take a batch the scorer tagged; the reports of the windows it completed."""
        reports = []
        for i, doc in enumerate(tagged):
            if doc.model_version != self.version or not self.started:
                self.switch(doc.model_version)
            vector = embeddings[i] if embeddings is not None else None
            self.pending.append((doc, vector))
            if len(self.pending) >= self.window_size:
                window = window_of(self.pending, self.entities)
                self.pending = []
                report = self.close(window)
                if report is not None:
                    reports.append(report)
        return reports

    def switch(self, version: str | None) -> None:
        """Start watching what ``version`` tags: its stored reference, or a new one."""
        if self.started:
            logger.info(
                "drift: %s serves now (was %s)", version or "no model", self.version or "no model"
            )
        self.started = True
        self.version, self.pending = version, []
        self.null_cache, self.drifting = {}, False
        self.reference = self.load_reference(version)[: self.reference_windows]
        if self.reference:
            logger.info(
                "drift: %s goes on with its stored reference (%d documents)",
                version or "no model",
                sum(w.size for w in self.reference),
            )

    def drifted_from(self, version: str | None) -> npt.NDArray[np.float32] | None:
        """The reference's embeddings while the stream that ``version`` tags has drifted
        from them (for drift-aware selection); None otherwise."""
        if not self.drifting or version != self.version or not self.reference:
            return None
        return joined(self.reference).embeddings

    def close(self, window: Window) -> DriftReport | None:
        if len(self.reference) < self.reference_windows:
            self.reference.append(window)
            self.save_reference(self.version, self.reference)
            logger.info(
                "drift: reference window %d of %d for %s",
                len(self.reference),
                self.reference_windows,
                self.version or "no model",
            )
            return None
        self.windows += 1
        report = check(
            self.methods(self.null_cache),
            joined(self.reference),
            window,
            self.config,
            window=self.windows,
            model_version=self.version,
        )
        report = self.record(report)
        self.drifting = report.drift
        level = logging.WARNING if report.drift else logging.INFO
        logger.log(
            level,
            "drift window %d (%s): %s",
            report.window,
            self.version or "no model",
            ", ".join(f"{r.method} {r.score} (threshold {r.threshold})" for r in report.results)
            + (f"; DRIFT: {', '.join(report.crossed)}" if report.drift else ""),
        )
        return report


UNSCORED = "unscored"
"""The version a drift event names while no model serves (embedding drift only)."""


def drift_event(report: DriftReport) -> ModelEvent:
    """The ``drift`` event a flagged window publishes on the models topic."""
    return ModelEvent(
        event="drift",
        version=report.model_version or UNSCORED,
        at=report.at,
        drift={"window": report.window, "crossed": report.crossed, **report.summary()},
    )


def monitor_of(
    settings: Settings, seen_forms: Callable[[], Iterable[str]] | None = None
) -> DriftMonitor:
    """The scorer's monitor: ``ALLOOP_DRIFT__*`` settings, reports stored in
    ``settings.drift_path``; with the entity task, the forms people labelled (``seen_forms``)."""
    config = config_of(settings.drift)
    store: DriftStore | None = None

    def record(report: DriftReport) -> DriftReport:
        nonlocal store
        if store is None:  # opened with the first report: a scorer that never makes one
            store = DriftStore(settings.drift_path)  # leaves no file behind
        return store.add(report)

    def methods(cache: NullCache) -> Sequence[DriftMethod]:
        return config.methods(seen_forms() if seen_forms else (), cache)

    folder, size = settings.drift_references_path, settings.drift.window_size

    def save(version: str | None, windows: list[Window]) -> None:
        try:
            save_reference(folder, version, windows, size)
        except OSError as exc:  # the monitor goes on; only a restart loses the reference
            logger.warning("drift: cannot keep the reference of %s (%s)", version, exc)

    return DriftMonitor(
        config,
        size,
        settings.drift.reference_windows,
        methods,
        entities=seen_forms is not None,
        record=record,
        load_reference=lambda version: load_reference(folder, version, size),
        save_reference=save,
    )


def config_of(settings: DriftSettings) -> DriftConfig:
    """The monitor's :class:`DriftConfig` from the ``ALLOOP_DRIFT__*`` settings: each field of
    the config that is also a setting (the thresholds, alpha, the permutations) takes the
    setting's value; the others (the seed) keep the config's default."""
    names = [f.name for f in fields(DriftConfig) if f.name in DriftSettings.model_fields]
    return DriftConfig(**{name: getattr(settings, name) for name in names})
