"""Imports every domain's tables so Alembic and the tests see the whole schema."""

from __future__ import annotations

from hutch.accounts import models as accounts_models
from hutch.agents import models as agents_models
from hutch.alerts import models as alert_models
from hutch.apikeys import models as apikeys_models
from hutch.audit import models as audit_models
from hutch.billing import models as billing_models
from hutch.botfactory import models as botfactory_models
from hutch.browser import models as browser_models
from hutch.channels import models as channels_models
from hutch.channels.openai_api import models as openai_api_models
from hutch.channels.voice import models as voice_models
from hutch.conversations import models as conversations_models
from hutch.core import models as core_models
from hutch.db.base import Base
from hutch.deletion import models as deletion_models
from hutch.integrations import models as integrations_models
from hutch.knowledge import models as knowledge_models
from hutch.notifications import models as notifications_models
from hutch.runtimes import models as runtimes_models
from hutch.tasks import models as tasks_models
from hutch.web import models as web_models

metadata = Base.metadata
DOMAIN_MODELS = (
    accounts_models,
    alert_models,
    agents_models,
    apikeys_models,
    audit_models,
    billing_models,
    botfactory_models,
    browser_models,
    channels_models,
    conversations_models,
    core_models,
    deletion_models,
    integrations_models,
    knowledge_models,
    notifications_models,
    openai_api_models,
    runtimes_models,
    tasks_models,
    voice_models,
    web_models,
)
