"""A runtime's workspace: the long-term memory of its agent as plain files, kept across re-provisioning.

``IDENTITY.md`` holds notes the agent keeps about itself (added to its instructions when present); each end
user has ``users/<key>/USER.md``, a list of facts (``- ...`` lines) the memory tools add and remove. Files
are replaced atomically, so a crash never leaves half a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

MAX_FACTS_PER_USER = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks: dict[Path, asyncio.Lock] = {}

    @property
    def identity_file(self) -> Path:
        return self.root / "IDENTITY.md"

    def identity(self) -> str | None:
        text = self.identity_file.read_text().strip() if self.identity_file.exists() else ""
        return text or None

    def user_file(self, end_user: str) -> Path:
        # Readable and collision-free: a cleaned prefix plus a hash of the whole id.
        digest = hashlib.sha256(end_user.encode()).hexdigest()[:16]
        return self.root / "users" / f"{_UNSAFE.sub('_', end_user)[:40]}-{digest}" / "USER.md"

    def facts(self, end_user: str) -> list[str]:
        path = self.user_file(end_user)
        if not path.exists():
            return []
        return [line[2:].strip() for line in path.read_text().splitlines() if line.startswith("- ")]

    def write_facts(self, end_user: str, facts: list[str]) -> None:
        path = self.user_file(end_user)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = f"# What I know about {end_user}\n\n" + "".join(f"- {fact}\n" for fact in facts)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".USER.md.")
        with os.fdopen(descriptor, "w") as file:
            file.write(body)
        os.replace(temporary, path)

    def lock(self, end_user: str) -> asyncio.Lock:
        return self._locks.setdefault(self.user_file(end_user), asyncio.Lock())


class WorkspaceFacts:
    """The engine's fact store for a dedicated runtime: USER.md files in its workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    async def add(self, end_user: str, fact: str) -> None:
        async with self.workspace.lock(end_user):
            one_line = " ".join(fact.split())
            facts = [*self.workspace.facts(end_user), one_line][-MAX_FACTS_PER_USER:]
            self.workspace.write_facts(end_user, facts)

    async def forget(self, end_user: str, about: str) -> int:
        words = about.lower().strip()
        if not words:
            return 0
        async with self.workspace.lock(end_user):
            facts = self.workspace.facts(end_user)
            kept = [fact for fact in facts if words not in fact.lower()]
            if len(kept) != len(facts):
                self.workspace.write_facts(end_user, kept)
            return len(facts) - len(kept)

    async def count(self, end_user: str) -> int:
        return len(self.workspace.facts(end_user))
