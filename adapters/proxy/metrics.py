"""Prometheus metrics of one proxy app, in the app's own ``CollectorRegistry``.

A per-app registry (not prometheus-client's global one) lets a process build many apps, as
the tests do, without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from guardrail.types import Verdict

__all__ = ["ProxyMetrics"]

# Classification on a CPU takes from well under a millisecond (rules) to seconds (guard LLMs).
_CLASSIFY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ProxyMetrics:
    """The proxy's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "guardrail_proxy_requests",
            "Requests answered, by route and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.key_requests = Counter(
            "guardrail_proxy_key_requests",
            "Authenticated requests, by key name (anonymous in pass-through mode, api_keys for "
            "the unnamed keys) and route.",
            ["key", "route"],
            registry=r,
        )
        self.verdicts = Counter(
            "guardrail_proxy_verdicts",
            "Verdicts, by role (prompt/response), action and key name.",
            ["role", "action", "key"],
            registry=r,
        )
        self.verdict_categories = Counter(
            "guardrail_proxy_verdict_categories",
            "Categories that fired, by role, action, category and key name.",
            ["role", "action", "category", "key"],
            registry=r,
        )
        self.classification_seconds = Histogram(
            "guardrail_proxy_classification_seconds",
            "Time to classify (one batch of texts), by role.",
            ["role"],
            buckets=_CLASSIFY_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "guardrail_proxy_upstream_seconds",
            "Upstream time to response headers, by route.",
            ["route"],
            buckets=_UPSTREAM_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "guardrail_proxy_upstream_errors",
            "Upstream failures: connect, timeout, stream_cut, protocol, or an HTTP status class.",
            ["route", "kind"],
            registry=r,
        )

    def record_verdicts(
        self, verdicts: list[Verdict], seconds: float, *, key: str = "anonymous"
    ) -> None:
        """Count verdicts and the categories that fired (by the caller's key name), and
        observe classification time."""
        if not verdicts:
            return
        self.classification_seconds.labels(verdicts[0].role.value).observe(seconds)
        for v in verdicts:
            self.verdicts.labels(v.role.value, v.action.value, key).inc()
            for fired in v.categories:
                self.verdict_categories.labels(
                    v.role.value, v.action.value, fired.category, key
                ).inc()

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
