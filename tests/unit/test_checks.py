"""The parts of `invoicebot check` that need no service: shapes, versions, wording."""

from __future__ import annotations

import os

import pytest

from bot.checks import _signing_secret, _version_tuple, check_slack, manifest_bot_scopes, settings_failures
from bot.slack_api import BOT_SCOPES
from bot.settings import Settings, load_settings

BASE = {"slack_bot_token": "xoxb-x", "stripe_api_key": "sk_test_x", "billing_api_url": "http://127.0.0.1:9",
        "billing_api_token": "t", "notify_channel": "C1"}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    for name in list(os.environ):
        if name.startswith(("SLACK_", "STRIPE_", "BILLING_", "DATABASE_", "NOTIFY_", "PUBLIC_", "LOG_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**overrides: object) -> Settings:
    return load_settings(**{**BASE, **overrides})


def test_the_signing_secret_must_have_slacks_shape_against_slack() -> None:
    assert _signing_secret(settings(slack_signing_secret="0123456789abcdef0123456789abcdef")).status == "ok"
    wrong = _signing_secret(settings(slack_signing_secret="xoxb-a-token-by-mistake"))
    assert wrong.status == "failed" and "Basic Information" in wrong.fix
    assert _signing_secret(settings(slack_signing_secret="your-signing-secret")).status == "failed"
    # A stand-in signs with whatever secret it was given.
    standin = settings(slack_signing_secret="e2e", slack_api_url="http://127.0.0.1:8310/api/")
    assert _signing_secret(standin).status == "ok"


def test_versions_compare_by_number() -> None:
    assert _version_tuple("1.10") > _version_tuple("1.9") and _version_tuple("1.1") == (1, 1)


async def test_many_workspaces_need_a_public_url_for_the_oauth_redirect() -> None:
    multi = settings(slack_bot_token=None, slack_client_id="A1", slack_client_secret="s",
                     slack_signing_secret="0123456789abcdef0123456789abcdef")
    [secret, token, redirect] = await check_slack(multi)
    assert token.passed and redirect.status == "failed" and "PUBLIC_URL" in redirect.fix


def test_settings_problems_become_failed_checks_with_what_to_set() -> None:
    [check] = settings_failures(["SLACK_SIGNING_SECRET is missing: the signing secret from your Slack app"])
    assert check.line() == "✗ settings SLACK_SIGNING_SECRET: is missing -> the signing secret from your Slack app"


def test_the_scopes_wanted_are_the_manifests() -> None:
    assert sorted(manifest_bot_scopes()) == sorted(BOT_SCOPES)
