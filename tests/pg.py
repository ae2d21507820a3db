"""A throw-away PostgreSQL database per test session."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import asyncio

import asyncpg
from sqlalchemy.engine import make_url


@contextlib.contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """`server_url` like postgresql://postgres@127.0.0.1:5432/postgres; yields a new database's URL."""
    name = f"invoicebot_test_{secrets.token_hex(4)}"
    base = make_url(server_url)

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(user=base.username, password=base.password, host=base.host,
                                           port=base.port or 5432, database=base.database or "postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
