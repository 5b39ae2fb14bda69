"""New messages for open event streams (``GET /api/v1/conversations/{id}/events``), from one poller per
process.

Why a poller and not LISTEN/NOTIFY: a NOTIFY would be written by every message's transaction, on the chat's
hot path, and PostgreSQL serialises the commits of notifying transactions on one lock; LISTEN also needs a
session-pinned connection, which a transaction-pooling proxy does not give. Instead, while at least one stream
is open, the process asks once every ``interval`` what its streams have not seen, in one indexed statement,
borrowing a pooled connection for that statement only. A stream holds no connection; a hundred open streams
cost the same single statement per tick as one; with none open, nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from hutch.conversations.inbox import inbox_message
from hutch.conversations.inbox_repository import InboxRepository
from hutch.conversations.schemas import InboxMessage
from hutch.db.engine import Database

log = structlog.get_logger(__name__)
POLL_SECONDS = 0.25  # a new message reaches its streams within this, plus one query


class _Stream:
    def __init__(self, conversation_id: str, seen_seq: int) -> None:
        self.conversation_id = conversation_id
        self.seen_seq = seen_seq
        self.queue: asyncio.Queue[InboxMessage] = asyncio.Queue()

    async def next(self, wait_seconds: float) -> InboxMessage | None:
        """The next new message, or None after ``wait_seconds`` without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), wait_seconds)
        except TimeoutError:
            return None


class MessageWatch:
    """Fans new messages out to the streams open in this process. Built once per process, on its resources."""

    def __init__(self, database: Database, interval: float = POLL_SECONDS) -> None:
        self.database = database
        self.interval = interval
        self._streams: dict[str, set[_Stream]] = defaultdict(set)
        self._poller: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    @asynccontextmanager
    async def follow(self, conversation_id: str, seen_seq: int) -> AsyncIterator[_Stream]:
        """A stream of the conversation's messages after ``seen_seq``, open until the block ends."""
        stream = _Stream(conversation_id, seen_seq)
        self._streams[conversation_id].add(stream)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="hutch-message-watch")
        try:
            yield stream
        finally:
            watchers = self._streams.get(conversation_id)
            if watchers is not None:
                watchers.discard(stream)
                if not watchers:
                    del self._streams[conversation_id]

    async def _poll(self) -> None:
        while self._streams:
            try:
                await self.tick()
            except Exception:  # a lost connection or a restarting database: try again next tick
                log.warning("message watch could not read new messages", exc_info=True)
            await asyncio.sleep(self.interval)
        self._poller = None

    async def tick(self) -> int:
        """Read once what the streams have not seen and hand it to them; how many messages were read."""
        watched = {cid: min(s.seen_seq for s in streams) for cid, streams in self._streams.items() if streams}
        if not watched:
            return 0
        # A read on a session of its own, closed at once: the connection goes back to the pool.
        async with self.database.sessionmaker() as session:
            found = [
                (m.conversation_id, inbox_message(m))
                for m in await InboxRepository(session).unseen(list(watched.items()))
            ]
        for conversation_id, message in found:
            for stream in list(self._streams.get(conversation_id, ())):
                if message.seq > stream.seen_seq:
                    stream.seen_seq = message.seq
                    stream.queue.put_nowait(message)
        return len(found)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None


KEEPALIVE_SECONDS = 15.0


async def message_events(
    watch: MessageWatch, conversation_id: str, seen_seq: int, keepalive: float = KEEPALIVE_SECONDS
) -> AsyncIterator[str]:
    """Server-sent events: one ``message`` event per new message (its ``id`` the message's seq, so a client
    reconnecting with ``Last-Event-ID`` misses nothing), and a comment line now and then to keep proxies
    from closing a quiet stream."""
    yield ": watching\n\n"
    async with watch.follow(conversation_id, seen_seq) as stream:
        while True:
            message = await stream.next(keepalive)
            if message is None:
                yield ": keepalive\n\n"
            else:
                yield f"event: message\nid: {message.seq}\ndata: {message.model_dump_json()}\n\n"
