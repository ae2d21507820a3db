"""Throw-away PostgreSQL databases for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
from sqlalchemy.engine import make_url


async def _execute(server_url: str, sql: str) -> None:
    base = make_url(server_url)
    connection = await asyncpg.connect(user=base.username, password=base.password, host=base.host,
                                       port=base.port or 5432, database=base.database or "postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _names(server_url: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{secrets.token_hex(4)}"
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def temporary_database(server_url: str, *, prefix: str = "invoicebot_test") -> AsyncIterator[str]:
    """`server_url` like postgresql://postgres@127.0.0.1:5432/postgres; yields a new database's URL."""
    name, url = _names(server_url, prefix)
    await _execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        await _execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def temporary_database_sync(server_url: str, *, prefix: str = "invoicebot_test") -> Iterator[str]:
    """The same, for code outside an event loop (pytest's synchronous fixtures)."""
    name, url = _names(server_url, prefix)
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
