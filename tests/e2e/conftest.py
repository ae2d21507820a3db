from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sandbox.slack.client import StandInClient
from tests.e2e.world import World, billing_client, stripe_client
from tests.harness import Stack, running_stack
from sandbox.postgres import temporary_database_sync as temporary_database


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite by default; PostgreSQL when INVOICEBOT_TEST_POSTGRES names a server."""
    server = os.environ.get("INVOICEBOT_TEST_POSTGRES")
    if server:
        with temporary_database(server) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'invoicebot.db'}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Stack]:
    workdir = Path(os.environ.get("INVOICEBOT_TEST_ARTIFACTS") or tmp_path_factory.mktemp("stack"))
    workdir.mkdir(parents=True, exist_ok=True)
    with running_stack(workdir, database_url) as running:
        yield running


@pytest.fixture
async def world(stack: Stack) -> AsyncIterator[World]:
    async with StandInClient(stack.slack_url) as slack, billing_client(stack) as billing:
        world = World(stack, slack, billing, stripe_client(stack))
        yield world
        await world.set_billing_latency(0)
        await world.clear_billing_faults()
        await world.clear_stripe_faults()
        await slack.clear_faults()
