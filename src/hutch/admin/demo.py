"""``hutch demo``: a realistic deployment to look at — organisations on several plans, agents with documents
and conversations, payments, voice sessions and alerts over the last 90 days.

Everything goes through the services (signup, plans, agents, documents, the chat flow with the demo model,
the ledger, voice sessions, alerts), so balances, quotas and counters agree. The services stamp "now";
afterwards each conversation is moved to its day in the past, and the daily and monthly usage counters are
recounted from the moved messages, so the charts and the quotas tell the same story.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hutch.accounts.models import User
from hutch.accounts.schemas import SignupRequest
from hutch.accounts.service import AuthService
from hutch.admin.demo_queries import DemoQueries
from hutch.agents.models import Agent
from hutch.agents.schemas import AgentCreate
from hutch.agents.service import AgentService
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.ledger import Ledger
from hutch.billing.models import LedgerKind, LedgerUnit
from hutch.billing.service import BillingService
from hutch.channels.voice.models import VoiceSession, VoiceStatus
from hutch.channels.voice.service import VoiceSessions
from hutch.core.ids import new_id
from hutch.core.principal import USER_SCOPES, Principal, PrincipalKind
from hutch.core.ratelimit import PostgresRateLimiter
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.knowledge.service import KnowledgeService
from hutch.turns.flow import TurnFlow

DEMO_PASSWORD = "demo-password-2026"
ADMIN_EMAIL = "admin@demo.example"
DAYS = 90
COMPANIES = [
    ("Northwind Dental", "support"),
    ("Bluebird Travel", "sales"),
    ("Acme Robotics", "assistant"),
    ("Lumen Legal", "researcher"),
    ("Harbor Fitness", "support"),
    ("Quill & Co", "executive_assistant"),
    ("Pine Street Bakery", "sales"),
    ("Orbit Analytics", "researcher"),
    ("Maple Realty", "assistant"),
    ("Cobalt Insurance", "support"),
    ("Saffron Kitchen", "sales"),
    ("Tidewater Clinic", "support"),
]
CHANNELS = ["telegram", "webchat", "whatsapp", "api"]
QUESTIONS = [
    "What are your opening hours?",
    "Can I book an appointment for Tuesday?",
    "How much does the basic plan cost?",
    "Do you ship to Canada?",
    "I need to change my reservation.",
    "What documents do I need to bring?",
    "Is there parking nearby?",
    "Can you summarise our last order?",
    "Who do I talk to about an invoice?",
    "Thanks, that helps!",
]
HANDBOOK = (
    "# {company} handbook\n\n## Opening hours\nMonday to Friday, 9:00 to 18:00; Saturday 10:00 to 14:00.\n\n"
    "## Prices\nThe basic plan is $29 a month; the premium plan, $79 a month, includes priority support.\n\n"
    "## Contact\nWrite to hello@{slug}.example or call +1 555 0100.\n"
)
ALERTS = [
    (
        "stripe.payment_failed",
        Severity.WARNING,
        "A payment failed",
        "Invoice for {company} could not be paid.",
    ),
    (
        "runtime.error",
        Severity.CRITICAL,
        "A runtime keeps failing",
        "The dedicated runtime of {company} stopped.",
    ),
    (
        "margin.negative",
        Severity.WARNING,
        "An organisation costs more than it pays",
        "{company} is below cost.",
    ),
    (
        "webhooks.refused",
        Severity.INFO,
        "Refused webhook calls",
        "Many calls with a bad signature were refused.",
    ),
]


@dataclass
class DemoReport:
    orgs: int = 0
    agents: int = 0
    documents: int = 0
    messages: int = 0
    voice_sessions: int = 0
    payments: int = 0
    alerts: int = 0
    logins: list[str] = field(default_factory=list)


Progress = Callable[[str], None]


def _principal(user: User, org_id: str) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        org_id=org_id,
        scopes=USER_SCOPES,
        user_id=user.id,
        org_role="owner",
    )


class DemoFiller:
    def __init__(self, uow: UnitOfWork, resources: WorkerResources, *, seed: int = 7) -> None:
        self.uow = uow
        self.session = uow.session
        self.queries = DemoQueries(uow.session)
        self.resources = resources
        self.random = random.Random(seed)  # noqa: S311 - demo data, not secrets
        self.now = datetime.now(UTC)
        self.report = DemoReport()
        self.org_ids: list[str] = []  # the organisations this run made, whose counters it recounts

    def _ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    async def fill(self, orgs: int, progress: Progress) -> DemoReport:
        if not await self.queries.has_users():
            # The first account of a deployment is its platform admin: make it an obvious one.
            await self._auth().signup(
                SignupRequest(
                    email=ADMIN_EMAIL, password=DEMO_PASSWORD, name="Demo admin", org_name="Operator"
                ),
                None,
            )
            self.report.logins.append(f"{ADMIN_EMAIL} (platform admin)")
        paid = [p for p in self.resources.plans.plans if p.is_paid] or [
            self.resources.plans.plan_or_free("free")
        ]
        for index, (company, role) in enumerate(COMPANIES[:orgs]):
            progress(f"{company}")
            plan = "free" if index % 3 == 0 else paid[index % len(paid)].id
            await self._org(company, role, plan, joined_days_ago=self.random.uniform(5, DAYS))
        progress("recounting usage")
        await self.queries.recount_usage(self.org_ids)
        progress("alerts")
        await self._alerts()
        return self.report

    def _auth(self) -> AuthService:
        limiter = PostgresRateLimiter(self.resources.database.engine)
        return AuthService(self.uow, self.resources.settings, limiter, self.resources.secret_box)

    async def _org(self, company: str, role: str, plan_id: str, joined_days_ago: float) -> None:
        slug = company.lower().replace(" & ", "-").replace(" ", "-")
        email = f"owner@{slug}.example"
        auth = self._auth()
        signup = SignupRequest(email=email, password=DEMO_PASSWORD, name=f"{company} owner", org_name=company)
        result = await auth.signup(signup, None)
        user, org = result.user, result.org
        joined = self._ago(joined_days_ago)
        user.created_at, org.created_at = joined, joined
        user.last_active_at = self._ago(self.random.uniform(0, min(joined_days_ago, 20)))
        self.report.logins.append(email)
        self.report.orgs += 1
        self.org_ids.append(org.id)
        billing = BillingService.of(self.uow, self.resources)
        # Generated on the roomiest plan (90 days of messages arrive in seconds), then moved to its own.
        plans = [p for p in self.resources.plans.plans if not p.pay_per_use]
        roomy = max(plans, key=lambda p: p.limits.messages_per_minute or 10**9)
        # Made-up organisations: nothing their plans include is provisioned for them.
        await billing.assign_plan(org.id, roomy.id, None, None, provision=False)
        final = self.resources.plans.plan_or_free(plan_id)
        agent_count = min(self.random.randint(1, 2), final.limits.agents or 2)
        principal = _principal(user, org.id)
        agents = AgentService.of(self.uow, self.resources)
        knowledge = KnowledgeService.of(self.uow, self.resources)
        for number in range(agent_count):
            name = f"{company.split()[0]} {'Helper' if number == 0 else 'Concierge'}"
            agent = await agents.create(principal, AgentCreate(name=name, role=role, model="demo/echo"))
            self.report.agents += 1
            document = HANDBOOK.format(company=company, slug=slug).encode()
            await knowledge.upload(principal, agent.id, f"{company} handbook", document, "md")
            self.report.documents += 1
            await self._conversations(agent, joined_days_ago)
            await self._voice(agent.id, org.id, user.id, joined_days_ago)
        await self._payments(org.id, plan_id, joined_days_ago)
        await billing.assign_plan(org.id, plan_id, None, None, provision=False)

    async def _conversations(self, agent: Agent, joined_days_ago: float) -> None:
        flow = TurnFlow(self.uow, self.resources)
        for visitor in range(self.random.randint(4, 12)):
            channel = self.random.choice(CHANNELS)
            turn_count = self.random.randint(1, 4)
            end_user = f"{channel}:demo-{visitor}"
            conversation_id: str | None = None
            for _ in range(turn_count):
                turn = await flow.begin(
                    agent, channel, end_user, self.random.choice(QUESTIONS), conversation_id
                )
                await flow.answer(turn)
                conversation_id = turn.stored[0].id
                self.report.messages += 2
            assert conversation_id is not None
            when = self._ago(self.random.uniform(0, joined_days_ago))
            await self.queries.move_conversation(conversation_id, when)
            await self.queries.close_conversation(conversation_id, when)

    async def _voice(self, agent_id: str, org_id: str, user_id: str, joined_days_ago: float) -> None:
        ledger = Ledger.of(self.uow, self.resources)
        await ledger.post(
            org_id,
            LedgerUnit.SECONDS,
            LedgerKind.PURCHASE,
            3600,
            description="Time card: 60 minutes (demo)",
            reference=f"demo-time:{agent_id}",
        )
        sessions = VoiceSessions(self.uow, self.resources.plans, self.resources.settings)
        for _ in range(self.random.randint(0, 3)):
            started = self._ago(self.random.uniform(0, joined_days_ago))
            voice = VoiceSession(
                id=new_id("vcs"),
                org_id=org_id,
                agent_id=agent_id,
                user_id=user_id,
                identity=f"user:{user_id}",
                room=new_id("room"),
                status=VoiceStatus.ACTIVE,
                untracked=False,
                expires_at=started + timedelta(hours=1),
                started_at=started,
                last_seen_at=started,
            )
            self.session.add(voice)
            await self.session.flush()
            await sessions.close(voice, started + timedelta(seconds=self.random.randint(40, 600)), "left")
            self.report.voice_sessions += 1

    async def _payments(self, org_id: str, plan_id: str, joined_days_ago: float) -> None:
        plan = self.resources.plans.plan_or_free(plan_id)
        currency = self.resources.plans.billing.currency
        rows: list[tuple[str, int, str | None, str | None, float]] = []
        if plan.is_paid:
            months = int(joined_days_ago // 30) + 1
            for month in range(months):
                rows.append(("subscription", plan.price_cents, plan.id, None, joined_days_ago - 30 * month))
        packages = self.resources.plans.packages
        if packages and self.random.random() < 0.6:
            package = self.random.choice(packages)
            rows.append(
                ("purchase", package.price_cents, None, package.id, self.random.uniform(0, joined_days_ago))
            )
            if package.credits_cents:
                await Ledger.of(self.uow, self.resources).post(
                    org_id,
                    LedgerUnit.CREDITS,
                    LedgerKind.PURCHASE,
                    package.credits_cents,
                    description=f"{package.name} (demo)",
                    reference=f"demo-pack:{org_id}",
                )
        for kind, amount, plan_name, package_id, days_ago in rows:
            await self.queries.record_payment(
                org_id, kind, amount, currency, plan_name, package_id, self._ago(max(days_ago, 0))
            )
            self.report.payments += 1

    async def _alerts(self) -> None:
        orgs = await self.queries.oldest_orgs(len(ALERTS))
        for (kind, severity, subject, message), org in zip(ALERTS, orgs, strict=False):
            await raise_alert(
                self.uow,
                kind,
                severity,
                subject,
                message.format(company=org.name),
                dedup_key=f"demo:{kind}",
                org_id=org.id,
            )
            self.report.alerts += 1
        await self.session.flush()
        await self.queries.age_alerts("demo:", timedelta(days=3))
