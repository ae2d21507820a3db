"""The manifest asks for exactly the scopes the app uses, and points every surface at the
one Request URL the server serves."""

from pathlib import Path

import yaml

from bot.app import BOT_SCOPES

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
