"""The real adapters and the test fakes keep to the ports (bot/ports.py): every method a
port names exists, is a coroutine, and takes the same parameters (names, kinds, defaults),
so a change to an adapter that the core would not notice until run time fails here."""

from __future__ import annotations

import inspect

import pytest

from bot.billing import BillingClient
from bot.ports import BillingApi, PaymentIntents, PaymentNotifier, StripePayments
from bot.stripe_gateway import StripeGateway
from tests.fakes import FakeBilling, FakeNotifier, FakeStripe


def _methods(port: type) -> list[str]:
    return [name for klass in port.__mro__ if klass not in (object,) and klass.__module__ == "bot.ports"
            for name, value in vars(klass).items() if inspect.iscoroutinefunction(value)]


def _shape(function: object) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize(("port", "implementation"), [
    (BillingApi, BillingClient), (BillingApi, FakeBilling),
    (StripePayments, StripeGateway), (PaymentIntents, FakeStripe),
    (PaymentNotifier, FakeNotifier),
], ids=lambda value: value.__name__)
def test_the_implementation_has_every_method_of_its_port(port: type, implementation: type) -> None:
    methods = _methods(port)
    assert methods, port
    for name in methods:
        method = getattr(implementation, name, None)
        assert method is not None and inspect.iscoroutinefunction(method), f"{implementation.__name__}.{name}"
        assert _shape(method) == _shape(getattr(port, name)), f"{implementation.__name__}.{name}"
