"""Alembic owns the schema: upgrade it, or tell whether a database is behind."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.db import MIGRATIONS, async_url, create_engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`. Safe to call from inside a running event loop."""
    config = alembic_config(database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, revision)
        return
    # env.py runs its own event loop; give it a thread of its own.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(config, revision)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()


class DatabaseUnavailable(Exception):
    """The database cannot be reached, opened or created: one line that says why and where."""


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for in-memory databases and other backends)."""
    parsed = make_url(async_url(database_url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _where(database_url: str) -> str:
    parsed = make_url(async_url(database_url))
    if parsed.get_backend_name() == "sqlite":
        return str(sqlite_file(database_url) or "an in-memory SQLite database")
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def describe_failure(database_url: str, exc: BaseException) -> str:
    """One line for a database error: where, and the driver's own reason (never the password)."""
    reason = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text_ = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return f"cannot use the database at {_where(database_url)}: {text_}"


def check_can_create(database_url: str) -> None:
    """Before `db upgrade` makes a SQLite file: its folder must exist and be writable."""
    path = sqlite_file(database_url)
    if path is None or path.exists():
        return
    folder = path.parent
    if not folder.is_dir():
        raise DatabaseUnavailable(f"cannot create the SQLite database {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnavailable(f"cannot create the SQLite database {path}: the folder {folder} is not writable")


async def revision_of(database_url: str, *, timeout: float = 10.0) -> str | None:
    """The revision a database is at (None: empty), without creating anything: a SQLite file
    that does not exist is an empty database, not one to make. Raises DatabaseUnavailable."""
    path = sqlite_file(database_url)
    if path is not None and not path.exists():
        if not path.parent.is_dir():
            raise DatabaseUnavailable(f"cannot use the SQLite database {path}: the folder {path.parent} does not exist")
        return None
    url = async_url(database_url)
    # A SQLite file that exists is opened, never made; a server gets a bounded connect.
    engine = create_engine(database_url) if url.startswith("sqlite") else \
        create_async_engine(url, connect_args={"timeout": timeout}, poolclass=NullPool)
    try:
        return await asyncio.wait_for(current_revision(engine), timeout + 1)
    except (Exception, asyncio.TimeoutError) as exc:  # noqa: BLE001 - every driver has its own errors
        raise DatabaseUnavailable(describe_failure(database_url, exc)) from exc
    finally:
        await engine.dispose()
