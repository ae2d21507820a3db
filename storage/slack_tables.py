"""slack-sdk's own tables for OAuth installations and states, built by slack-sdk's code
and put under Alembic's care with ours (we add no tables of our own for them)."""

from __future__ import annotations

from sqlalchemy import MetaData
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

slack_metadata = MetaData()
AsyncSQLAlchemyInstallationStore.build_bots_table(
    metadata=slack_metadata, table_name=AsyncSQLAlchemyInstallationStore.default_bots_table_name)
AsyncSQLAlchemyInstallationStore.build_installations_table(
    metadata=slack_metadata, table_name=AsyncSQLAlchemyInstallationStore.default_installations_table_name)
AsyncSQLAlchemyOAuthStateStore.build_oauth_states_table(
    slack_metadata, AsyncSQLAlchemyOAuthStateStore.default_table_name)
