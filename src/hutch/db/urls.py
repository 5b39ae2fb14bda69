"""One database URL, spelled for each driver: asyncpg for the app, psycopg for jobs and migrations."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def _base(url: str) -> URL:
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql")


def asyncpg_url(url: str) -> URL:
    parsed = _base(url).set(drivername="postgresql+asyncpg")
    query = dict(parsed.query)
    if "sslmode" in query:  # asyncpg names libpq's sslmode "ssl"
        query["ssl"] = query.pop("sslmode")
    return parsed.set(query=query)


def psycopg_url(url: str) -> URL:
    return _base(url).set(drivername="postgresql+psycopg")


def libpq_conninfo(url: str) -> str:
    """A plain ``postgresql://`` URL for psycopg/libpq (procrastinate's connector)."""
    return _base(url).render_as_string(hide_password=False)


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    return _base(url).render_as_string(hide_password=True)
