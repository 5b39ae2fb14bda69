"""What the platform and its dedicated runtimes add to Chat Completions for a turn of their own.

The platform's request carries a ``hutch`` field (:class:`PlatformTurn`): whether the plan lets the agent
use its browser, how many browsers the org may have open, what the browser works for (its conversation, or
its task and step), and the metered tool calls the plan still allows. The runtime then answers as a stream
of server-sent events — sent on the platform's own authenticated request, so no other way in exists:

- ``hutch.screenshot`` ``{id, tool_call_id, action, page_url, image}`` after each browser action, at once
  (``image``: the JPEG, base64): the platform stores it as it comes, so the live view shows it;
- ``hutch.download`` ``{filename, content_type, data}`` for each file the browser downloaded;
- ``hutch.outcome`` ``{ok, error, text, model, input_tokens, output_tokens, tool_calls, metered_tool_calls}``
  last, then ``data: [DONE]``; comments (``: working``) keep a long step's connection alive.

When a task ends, the platform closes its browser on the runtime (``POST /hutch/browsers/close``
:class:`CloseTaskBrowser` → ``{closed}``), as it closes a shared agent's; a browser left open closes after
the runtime's idle time anyway.

The platform decides whose screenshots they are (its turn's org, agent, conversation or task), makes their
ids and keys, bounds each event's size and their number, and names on the stored tool calls only the
screenshots it stored for this turn.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

EXTENSION = "hutch"  # the request's field
CLOSE_PATH = "/hutch/browsers/close"
SCREENSHOT_EVENT = "hutch.screenshot"
DOWNLOAD_EVENT = "hutch.download"
OUTCOME_EVENT = "hutch.outcome"
MAX_SCREENSHOT_BYTES = 2 * 1024 * 1024  # a 1280x800 JPEG is about 100 KB
MAX_SCREENSHOTS_PER_TURN = 100  # more than a turn's tool loop can take
MAX_TOOL_CALLS = 200
KEEPALIVE_SECONDS = 15.0
_ID = r"^[A-Za-z0-9_:-]{1,120}$"


class BrowserGrant(BaseModel):
    """The plan allows the browser; what it works for, keyed as the shared pool keys it."""

    model_config = ConfigDict(extra="forbid")

    at_once: int | None = Field(default=None, ge=1, le=100_000)  # browsers the org may have open; None: any
    conversation_id: str | None = Field(default=None, pattern=_ID)
    task_id: str | None = Field(default=None, pattern=_ID)
    step: int | None = Field(default=None, ge=1, le=10_000)
    reference: str = Field(default="", max_length=120, pattern=r"^[A-Za-z0-9_:-]*$")


class PlatformTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    browser: BrowserGrant | None = None  # None: no browser this turn (the plan leaves it out)
    tool_calls_left: int | None = Field(default=None, ge=0)  # metered tool calls the plan still allows
    tool_calls_limit: int | None = Field(default=None, ge=0)


class CloseTaskBrowser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(pattern=_ID)
