"""python -m sandbox.slack --port 8310 --request-url http://127.0.0.1:3000/slack/events \
    --bot-token xoxb-test --signing-secret secret"""

from __future__ import annotations

import argparse

from .server import serve
from .state import StandInState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.slack", description="Local Slack stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8310)
    parser.add_argument("--request-url", default="http://127.0.0.1:3000/slack/events",
                        help="the app's Request URL (slash commands, interactivity)")
    parser.add_argument("--bot-token", default="xoxb-test")
    parser.add_argument("--signing-secret", default="secret")
    parser.add_argument("--public-url", default=None,
                        help="base URL the app uses to reach this stand-in (response_url); default from host/port")
    parser.add_argument("--client-id", default="standin-client-id", help="the app's OAuth client id")
    parser.add_argument("--client-secret", default="standin-client-secret", help="the app's OAuth client secret")
    parser.add_argument("--oauth-redirect-uri", default=None,
                        help="the app's configured OAuth Redirect URL, e.g. http://127.0.0.1:3000/slack/oauth_redirect")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    state = StandInState.with_demo_data(
        bot_token=args.bot_token, signing_secret=args.signing_secret, request_url=args.request_url,
        oauth_client_id=args.client_id, oauth_client_secret=args.client_secret,
        oauth_redirect_uri=args.oauth_redirect_uri,
    )
    serve(args.host, args.port, state, public_url=args.public_url, log_level=args.log_level)


if __name__ == "__main__":
    main()
