"""Re-encrypt every secret stored at rest with the newest of ``HUTCH_ENCRYPTION_KEYS``.

Rotation: put a new key first in ``HUTCH_ENCRYPTION_KEYS`` (keep the old ones after it), restart, run
``hutch admin rotate-keys``, then the old keys can be removed. Rows are re-encrypted in small committed
batches, so a large table does not hold one long transaction, and a rerun is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import InstrumentedAttribute

from hutch.admin.key_rotation_queries import KeyRotationQueries
from hutch.agents.models import ProviderKey
from hutch.botfactory.models import BotRequest, BotVerification, CreatorAccount
from hutch.channels.models import Channel
from hutch.core.security import SecretBox
from hutch.db.engine import Database
from hutch.notifications.models import OutboundEmail
from hutch.runtimes.models import Runtime

BATCH = 500

# Every encrypted column in Hutch; a domain that stores a new kind of secret adds its column here.
ENCRYPTED_COLUMNS: list[tuple[InstrumentedAttribute[str], InstrumentedAttribute[str]]] = [
    (ProviderKey.id, ProviderKey.api_key_encrypted),
    (OutboundEmail.id, OutboundEmail.body_encrypted),
    (Channel.id, Channel.token_encrypted),  # type: ignore[list-item]  # NULL for the web widget
    (Runtime.id, Runtime.gateway_token_encrypted),
    (CreatorAccount.id, CreatorAccount.api_hash_encrypted),
    (CreatorAccount.id, CreatorAccount.session_encrypted),
    (BotRequest.id, BotRequest.token_encrypted),  # type: ignore[list-item]  # set once BotFather answered
    (BotVerification.channel_id, BotVerification.code_encrypted),
]


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)  # ids no configured key decrypts


async def rotate_secrets(
    database: Database, box: SecretBox, progress: Callable[[str, int], None] | None = None
) -> RotationReport:
    report = RotationReport()
    for id_column, secret_column in ENCRYPTED_COLUMNS:
        table = secret_column.class_.__tablename__
        report.rotated.setdefault(table, 0)
        after = ""
        while True:
            async with database.sessionmaker() as session, session.begin():
                queries = KeyRotationQueries(session)
                rows = await queries.batch(id_column, secret_column, after, BATCH)
                for row_id, ciphertext in rows:
                    try:
                        rotated = box.rotate(ciphertext)
                    except ValueError:
                        report.unreadable.setdefault(table, []).append(row_id)
                        continue
                    await queries.store(id_column, secret_column, row_id, rotated)
                    report.rotated[table] += 1
            if progress is not None:
                progress(table, report.rotated[table])
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
    return report
