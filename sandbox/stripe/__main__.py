"""`python -m sandbox.stripe --host 127.0.0.1 --port 8420` runs the fake Stripe."""

import importlib.util
import sys

if __name__ == "__main__":
    if importlib.util.find_spec("localstripe") is None:
        # localstripe (GPL-3.0) comes only with the demo extra, never with the bot.
        sys.exit("the fake Stripe needs localstripe: pip install 'invoicebot[demo]'")
    from .server import main

    main()
