"""The project's own billing backend: a local server speaking docs/billing-api.md.

Used by `invoicebot sandbox`, the demo and the tests. See README.md in this folder.
"""

from .app import create_app
from .seed import seed_demo
from .server import SandboxServer, serve
from .store import BillingStore

__all__ = ["BillingStore", "SandboxServer", "create_app", "seed_demo", "serve"]
