"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.postgres import temporary_database_sync as temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database on each backend: a SQLite file, and a PostgreSQL database of its
    own on the server INVOICEBOT_TEST_POSTGRES names (skipped without one; CI sets it on its
    PostgreSQL run). tests/e2e overrides it with the one database its stack runs on."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    server = os.environ.get("INVOICEBOT_TEST_POSTGRES")
    if not server:
        pytest.skip("INVOICEBOT_TEST_POSTGRES is not set (CI sets it on its PostgreSQL run)")
    with temporary_database(server) as url:
        yield url
