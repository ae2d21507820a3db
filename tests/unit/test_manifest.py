"""The manifest asks for exactly the scopes the app uses, and points every surface at the
one Request URL the server serves."""

from pathlib import Path

import yaml

from bot.slack_api import BOT_SCOPES

MANIFEST = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())


def test_scopes_match_the_app() -> None:
    assert sorted(MANIFEST["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)


def test_one_request_url_for_commands_interactivity_and_events() -> None:
    urls = {c["url"] for c in MANIFEST["features"]["slash_commands"]}
    urls.add(MANIFEST["settings"]["interactivity"]["request_url"])
    urls.add(MANIFEST["settings"]["event_subscriptions"]["request_url"])
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert MANIFEST["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    assert [c["command"] for c in MANIFEST["features"]["slash_commands"]] == ["/invoices"]


def test_events_match_the_listeners_and_the_home_tab_is_on() -> None:
    import re

    handlers = Path(__file__).parents[2] / "handlers"
    listened = {m for f in handlers.glob("*.py") for m in re.findall(r'@app\.event\("([a-z_]+)"\)', f.read_text())}
    # Bolt's token-revocation listeners subscribe to these two itself (handlers/app.py).
    listened |= {"app_uninstalled", "tokens_revoked"}
    assert sorted(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == sorted(listened)
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    assert MANIFEST["features"]["app_home"]["messages_tab_enabled"] is True
