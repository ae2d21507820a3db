"""Benchmarks of invoicebot against the floor set by Slack Bolt itself (issue 7).

    python -m bench [--quick] [--scenarios ...] [--database sqlite|postgresql|both]
                    [--workers N] [--out docs/bench-results.json]

See docs/performance.md for what each scenario measures and the latest results.
"""
