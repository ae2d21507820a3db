"""Local Slack stand-in: plays the Slack Web API for the bot and Slack's
Events/Interactivity side toward the bot's Request URL.

    state = StandInState.with_demo_data(bot_token=..., signing_secret=..., request_url=...)
    server = start_standin(state)            # or: python -m sandbox.slack --port 8310 ...
    AsyncWebClient(token=..., base_url=server.url + "/api/")
    async with StandInClient(server.url) as slack: await slack.command("U_FINANCE", "list")
"""

from .app import create_app
from .client import StandInClient, StandInError
from .limits import validate_blocks, validate_message, validate_view
from .server import ServerThread, serve, start_standin
from .state import StandInState

__all__ = [
    "ServerThread",
    "StandInClient",
    "StandInError",
    "StandInState",
    "create_app",
    "serve",
    "start_standin",
    "validate_blocks",
    "validate_message",
    "validate_view",
]
