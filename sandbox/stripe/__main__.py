"""`python -m sandbox.stripe --host 127.0.0.1 --port 8420` runs the fake Stripe."""

from .server import main

if __name__ == "__main__":
    main()
