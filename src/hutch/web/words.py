"""Words the dashboard shows from stored values (statuses, audiences, roles, the plan's limits, what a plan
includes), listed here so the catalogues carry them: templates say ``{{ _(agent.status.value) }}``."""

from __future__ import annotations

from hutch.i18n import N_

STATUSES = (
    N_("active"),
    N_("paused"),
    N_("canceled"),
    N_("completed"),
    N_("connected"),
    N_("error"),
    N_("failed"),
    N_("in_progress"),
    N_("opened"),
    N_("pending"),
    N_("processing"),
    N_("provisioning"),
    N_("ready"),
    N_("scheduled"),
    N_("stopped"),
    N_("unverified"),
    N_("waiting"),
    N_("queued"),
    N_("creating"),
    N_("none"),
    N_("trialing"),
    N_("past_due"),
)
AUDIENCES = (N_("public"), N_("personal"))
MEMORY_KINDS = (N_("fact"), N_("summary"))
# The plan's limits as the billing page names them (``messages_per_month`` → "messages per month").
LIMITS = (
    N_("agents"),
    N_("dedicated runtimes"),
    N_("runtime cpu"),
    N_("runtime memory mb"),
    N_("messages per month"),
    N_("messages per day"),
    N_("messages per minute"),
    N_("documents per agent"),
    N_("storage mb"),
    N_("tool calls per month"),
    N_("transcription minutes per month"),
    N_("attachment mb"),
    N_("telegram bots"),
    N_("end user messages per minute"),
    N_("end user messages per day"),
    N_("browsers"),
)
INCLUDED = (N_("Dedicated runtime"), N_("Telegram bot"))
FOOTER_PAGES = (N_("Privacy"), N_("Terms"))  # the footer's links to the operator's policies
