"""Prometheus metrics of one Hutch process, in a registry of its own (no import-time globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "hutch_http_requests_total",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "hutch_http_request_duration_seconds",
            "Time to answer HTTP requests, by route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.job_runs = Counter(
            "hutch_job_runs_total",
            "Jobs run by workers of this process, by task and outcome (succeeded, failed).",
            ["task", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "hutch_job_duration_seconds",
            "Time jobs took in workers of this process.",
            ["task"],
            registry=self.registry,
        )
        self.jobs_in_queue = Gauge(
            "hutch_jobs",
            "Jobs in the shared queue, by task and status (todo, doing, succeeded, failed, ...).",
            ["task", "status"],
            registry=self.registry,
        )
        self.worker_heartbeat = Gauge(
            "hutch_worker_heartbeat_timestamp_seconds",
            "Unix time of the last periodic heartbeat job a worker ran.",
            registry=self.registry,
        )

        self.llm_requests = Counter(
            "hutch_llm_requests_total",
            "Agent replies, by provider and outcome (ok, fallback, failed).",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "hutch_llm_tokens_total",
            "Tokens used by agent replies, by provider and direction (input, output).",
            ["provider", "direction"],
            registry=self.registry,
        )

    def set_queue_counts(self, rows: list[tuple[str, str, int]]) -> None:
        self.jobs_in_queue.clear()
        for task, status, count in rows:
            self.jobs_in_queue.labels(task=task, status=status).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
