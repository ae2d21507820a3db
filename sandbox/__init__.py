"""Local stand-ins for the services invoicebot talks to (demo, tests, laptops)."""
