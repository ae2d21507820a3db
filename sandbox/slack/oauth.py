"""Slack's OAuth v2 authorize step ("Add to Slack" → Allow) for the stand-in.

``GET /oauth/v2/authorize?client_id=&scope=&user_scope=&state=&redirect_uri=&team=``
issues a one-time code bound to (client_id, team, scopes, redirect_uri) and answers
302 to ``redirect_uri?code=...&state=...``, as Slack does once the user presses Allow.
A browser (``Accept: text/html``) first gets a small consent page with Allow / Cancel
and a workspace picker; Cancel redirects with ``error=access_denied``.
The code is exchanged at ``POST /api/oauth.v2.access`` (web_api.py).
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .state import StandInState, Team, User
from .web_api import record_call

AUTHORIZE_PATH = "/oauth/v2/authorize"
_FORWARDED = ("client_id", "scope", "user_scope", "state", "redirect_uri", "user")


def _scopes(raw: str | None) -> str:
    """Slack takes comma- (or space-) separated scopes; answers comma-separated."""
    return ",".join(s for s in re.split(r"[,\s]+", raw or "") if s)


def _redirect_matches(given: str, configured: str) -> bool:
    """Slack accepts a redirect_uri that matches a configured Redirect URL or extends
    its path (same scheme, host and port)."""
    g, c = urllib.parse.urlsplit(given), urllib.parse.urlsplit(configured)
    return (g.scheme, g.netloc) == (c.scheme, c.netloc) and g.path.startswith(c.path)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urllib.parse.urlsplit(url).query else "?") + urllib.parse.urlencode(params)


def _installer(state: StandInState, team: Team, wanted: str | None) -> str:
    """Who presses Allow (authed_user): `user` if it is in the team, else the team's
    first person; a team without people gets an admin user."""
    if wanted and wanted in state.users and state.users[wanted].team_id == team.id:
        return wanted
    person = next((u for u in state.users.values() if u.team_id == team.id and not u.is_bot), None)
    if person is not None:
        return person.id
    admin = User(f"U{team.id.removeprefix('T')}ADMIN", "admin", None, team.id, f"{team.name} Admin")
    state.add_user(admin)
    return admin.id


def _consent_page(state: StandInState, q: dict[str, str], team: Team, scope: str, user_scope: str) -> str:
    esc = html.escape
    hidden = "".join(f'<input type="hidden" name="{k}" value="{esc(q[k])}">' for k in _FORWARDED if q.get(k))
    options = "".join(
        f'<option value="{esc(t.id)}"{" selected" if t.id == team.id else ""}>{esc(t.name)} ({esc(t.domain)})</option>'
        for t in state.teams.values()
    )
    scope_items = "".join(f"<li><code>{esc(s)}</code></li>" for s in scope.split(",") if s)
    user_items = "".join(f"<li><code>{esc(s)}</code> (as you)</li>" for s in user_scope.split(",") if s)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Install invoicebot – Slack stand-in</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1d1c1d}}
.card{{border:1px solid #ddd;border-radius:8px;padding:1.5rem}} button{{font:inherit;padding:.5rem 1.25rem;
border-radius:4px;border:1px solid #bbb;background:#fff;cursor:pointer;margin-right:.5rem}}
button.allow{{background:#007a5a;border-color:#007a5a;color:#fff}} select{{font:inherit}}</style></head>
<body><div class="card"><h1>invoicebot is requesting permission to access a workspace</h1>
<form method="post" action="{AUTHORIZE_PATH}">{hidden}
<p><label>Workspace <select name="team">{options}</select></label></p>
<p>It will be able to:</p><ul>{scope_items}{user_items}</ul>
<p><button class="allow" name="decision" value="allow" type="submit">Allow</button>
<button name="decision" value="deny" type="submit">Cancel</button></p>
</form></div></body></html>"""


def authorize_endpoint(state: StandInState) -> Callable[[Request], Awaitable[Response]]:
    async def authorize(request: Request) -> Response:
        q: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":  # the consent page's form
            q.update(urllib.parse.parse_qsl((await request.body()).decode(), keep_blank_values=True))
        asked = {k: q[k] for k in (*_FORWARDED, "team") if q.get(k)}

        def refuse(error: str, detail: str) -> Response:
            record_call(state, "oauth/v2/authorize", asked, 400, {"ok": False, "error": error, "detail": detail})
            return JSONResponse({"ok": False, "error": error, "detail": detail}, status_code=400)

        if not q.get("client_id") or q["client_id"] != state.oauth_client_id:
            return refuse("invalid_client_id", f"unknown client_id {q.get('client_id')!r}")
        scope, user_scope = _scopes(q.get("scope")), _scopes(q.get("user_scope"))
        if not scope and not user_scope:
            return refuse("invalid_scope", "scope and user_scope are both empty")
        redirect_uri = q.get("redirect_uri") or None
        target = redirect_uri or state.oauth_redirect_uri
        if not target:
            return refuse("bad_redirect_uri",
                          "no redirect_uri given and none configured (PUT /_standin/config oauth_redirect_uri)")
        if redirect_uri and state.oauth_redirect_uri and not _redirect_matches(redirect_uri, state.oauth_redirect_uri):
            return refuse("bad_redirect_uri", f"{redirect_uri} does not match the configured "
                                              f"{state.oauth_redirect_uri}")
        team = state.teams.get(q.get("team") or state.team_id)
        if team is None:
            return refuse("invalid_team", f"unknown team {q.get('team')!r}")

        decision = q.get("decision")
        if decision is None and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(_consent_page(state, q, team, scope, user_scope), headers={"Cache-Control": "no-store"})
        echo = {"state": q["state"]} if "state" in q else {}
        if decision == "deny":
            location = _with_query(target, {"error": "access_denied", **echo})
            record_call(state, "oauth/v2/authorize", asked, 302, {"ok": False, "error": "access_denied",
                                                                   "location": location}, team_id=team.id)
            return RedirectResponse(location, status_code=302)
        grant = state.issue_oauth_code(client_id=q["client_id"], team_id=team.id,
                                       user_id=_installer(state, team, q.get("user")), scope=scope,
                                       user_scope=user_scope, redirect_uri=redirect_uri)
        location = _with_query(target, {"code": grant.code, **echo})
        record_call(state, "oauth/v2/authorize", asked, 302, {"ok": True, "code": grant.code, "location": location},
                    team_id=team.id)
        return RedirectResponse(location, status_code=302)

    return authorize
