"""The API's Prometheus metrics, in a registry of its own per app (docs/api.md lists them).

A per-app :class:`CollectorRegistry` keeps apps independent: tests build many, and a process
that embeds the app does not mix its metrics with the global default registry.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loop.drift.report import DriftReport

# Classifying is a model call: from a millisecond (a small batch) to many seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

UNMATCHED = "unmatched"
"""The ``endpoint`` label of requests no route matched (keeps label values bounded)."""


class ApiMetrics:
    """Every metric the API exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "alloop_api_requests",
            "HTTP requests answered, by route template, method and status code",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "alloop_api_request_duration_seconds",
            "Time to answer a request, by route template and method",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.documents = Counter(
            "alloop_api_documents_classified",
            "Documents classified by POST /v1/classify, by model version",
            ["model_version"],
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "alloop_api_inference_duration_seconds",
            "Time the model took on one /v1/classify request (the whole batch)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "alloop_api_model_reloads",
            "Times the served model changed (start-up, hot reload, promote, rollback)",
            registry=self.registry,
        )
        self.labels_received = Counter(
            "alloop_labels_received",
            "Answers received from Argilla's webhooks, by status (submitted, discarded)",
            ["status"],
            registry=self.registry,
        )
        self.label_to_served = Histogram(
            "alloop_label_to_served_seconds",
            "From the newest label a version trained on to this API serving that version",
            buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800),
            registry=self.registry,
        )
        self.retrain_seconds = Gauge(
            "alloop_trainer_last_round_seconds",
            "Duration of the trainer's last round (from $ALLOOP_HOME/trainer/status.json)",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "alloop_api_model_loaded",
            "1 while a model is served, 0 while /v1/classify answers 503",
            registry=self.registry,
        )
        self.model = Info(
            "alloop_api_model",
            "The model version served (empty while none is)",
            registry=self.registry,
        )

        self.drift_detected = Gauge(
            "alloop_drift_detected",
            "1 when the scorer's newest drift window crossed a threshold (docs/drift.md)",
            registry=self.registry,
        )
        self.drift_window = Gauge(
            "alloop_drift_window",
            "Number of the scorer's newest drift window",
            registry=self.registry,
        )
        self.drift_score = Gauge(
            "alloop_drift_score",
            "Each drift method's score on the newest window",
            ["method"],
            registry=self.registry,
        )
        self.drift_threshold = Gauge(
            "alloop_drift_threshold",
            "Each drift method's threshold on the newest window",
            ["method"],
            registry=self.registry,
        )

    def set_drift(self, report: DriftReport) -> None:
        self.drift_detected.set(1 if report.drift else 0)
        self.drift_window.set(report.window)
        for result in report.results:
            self.drift_score.labels(method=result.method).set(result.score)
            self.drift_threshold.labels(method=result.method).set(result.threshold)

    def set_served(self, version: str | None) -> None:
        self.model_loaded.set(1 if version else 0)
        self.model.info({"version": version or ""})

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _endpoint(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(route, BaseRoute) and isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/v1/models/{version}``,
    never the raw path, so that label values stay few)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            labels: dict[str, Any] = {"endpoint": _endpoint(scope), "method": scope["method"]}
            self.metrics.request_seconds.labels(**labels).observe(time.perf_counter() - started)
            self.metrics.requests.labels(**labels, status=str(status)).inc()
