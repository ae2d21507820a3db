"""Many workspaces: installed through Bolt's OAuth flow against the Slack stand-in, each
request answered with its own workspace's token, an uninstall forgetting one."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx
import sqlalchemy as sa

from storage.db import create_engine
from tests.e2e.slack_user import SlackUser, texts
from tests.e2e.world import World
from tests.harness import eventually, free_port, unique

CLIENT_ID, CLIENT_SECRET = "1234.5678", "e2e-oauth-client-secret"


async def install(http: httpx.AsyncClient, app_url: str, team_id: str) -> None:
    """An admin of `team_id` clicks "Add to Slack", then Allow."""
    page = await http.get(f"{app_url}/slack/install")
    assert page.status_code == 200, page.text
    authorize_url = re.search(r'href="([^"]+oauth/v2/authorize[^"]+)"', page.text).group(1).replace("&amp;", "&")
    state = parse_qs(urlparse(authorize_url).query)["state"][0]
    allowed = await http.get(f"{authorize_url}&team={team_id}")
    assert allowed.status_code == 302, allowed.text
    callback = allowed.headers["location"]
    assert callback.startswith(f"{app_url}/slack/oauth_redirect")
    # Bolt's state cookie is Secure: a browser on localhost sends it, httpx over http does not.
    done = await http.get(callback, headers={"Cookie": f"slack-app-oauth-state={state}"})
    assert done.status_code == 200, done.text


async def test_two_workspaces_install_by_oauth_and_one_uninstalls(world: World) -> None:
    stack = world.stack
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    team_a, team_b = unique("T").upper(), unique("T").upper()
    await world.slack.add_team(team_a, team_a.lower())
    await world.slack.add_team(team_b, team_b.lower())
    await world.slack.configure_oauth(CLIENT_ID, CLIENT_SECRET, f"{app_url}/slack/oauth_redirect")
    await world.slack.configure(request_url=f"{app_url}/slack/events")
    app = stack.start_app(name="oauth-app", port=port, SLACK_BOT_TOKEN="", SLACK_CLIENT_ID=CLIENT_ID,
                          SLACK_CLIENT_SECRET=CLIENT_SECRET, PUBLIC_URL=app_url,
                          SLACK_OAUTH_AUTHORIZE_URL=f"{stack.slack_url}/oauth/v2/authorize")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await install(http, app_url, team_a)
            await install(http, app_url, team_b)
        tokens = {t["id"]: t["bot_token"] for t in await world.slack.teams()}
        assert tokens[team_a] and tokens[team_b] and tokens[team_a] != tokens[team_b]

        profile = await world.profile()
        await world.invoice(profile, "14.00")
        people = {}
        for team in (team_a, team_b):
            person = await world.person([profile])
            await world.slack.add_user(person.user_id, person.user_id.lower(), person.email, team_id=team)
            people[team] = person
        for team, person in people.items():
            since = max((c["seq"] for c in await world.slack.calls()), default=0)
            reply = await SlackUser(world.slack, person.user_id).command()
            assert profile.name in texts(reply["blocks"])
            lookups = [c for c in await world.slack.calls("users.info", since=since)
                       if c["params"].get("user") == person.user_id]
            assert lookups and all(c["ok"] and c["team_id"] == team for c in lookups)

        uninstalled = await world.slack.uninstall(team_b)
        assert [d["status"] for d in uninstalled["deliveries"]] == [200, 200]
        engine = create_engine(stack.database_url)

        async def forgotten() -> None:
            # Bolt acks the uninstall event first and deletes the installation just after.
            async with engine.connect() as connection:
                rows = (await connection.execute(sa.text("SELECT team_id FROM slack_bots"))).scalars().all()
            assert team_a in rows and team_b not in rows

        try:
            await eventually(forgotten, timeout=10)
        finally:
            await engine.dispose()
        # Workspace A still works, with its own token.
        reply = await SlackUser(world.slack, people[team_a].user_id).command()
        assert profile.name in texts(reply["blocks"])
    finally:
        await world.slack.configure(request_url=f"{stack.app_url}/slack/events")
        app.stop()
