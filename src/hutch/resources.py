"""What one Hutch process builds at start-up from settings and hands out through dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from hutch.core.metrics import Metrics
from hutch.core.ratelimit import RateLimiter
from hutch.core.security import SecretBox
from hutch.db.engine import Database
from hutch.notifications.gateway import EmailGateway
from hutch.settings import Settings
from hutch.worker import JobQueue, WorkerResources


@dataclass
class Resources:
    settings: Settings
    database: Database
    jobs: JobQueue
    metrics: Metrics
    migration_heads: frozenset[str]
    rate_limiter: RateLimiter
    secret_box: SecretBox
    email: EmailGateway

    @property
    def worker_resources(self) -> WorkerResources:
        return WorkerResources(
            settings=self.settings,
            database=self.database,
            metrics=self.metrics,
            secret_box=self.secret_box,
            email=self.email,
        )
