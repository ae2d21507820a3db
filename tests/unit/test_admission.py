"""The loop gate (bot/admission.py): work waits while the event loop is busy, never forever,
and a request's quick answer is not queued behind a burst of heavy work."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.admission import GateClosed, LoopGate


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def _heavy(steps: int, step_seconds: float) -> None:
    """CPU-bound work in small steps, as a payment drive is (a query, a JSON parse, ...)."""
    for _ in range(steps):
        _busy(step_seconds)
        await asyncio.sleep(0)


async def _ack_latency_during_burst(gate: LoopGate | None, burst: int) -> float:
    """The worst time a 10 ms poll (Bolt's ack wait) takes while `burst` drives run."""
    tasks = [asyncio.ensure_future(gate.run(_heavy(20, 0.002)) if gate else _heavy(20, 0.002)) for _ in range(burst)]
    worst = 0.0
    while not all(task.done() for task in tasks):
        started = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - started)
    await asyncio.gather(*tasks)
    return worst


async def test_a_burst_of_heavy_work_does_not_hold_up_the_loop() -> None:
    # Without the gate 100 drives of 2 ms steps are all ready at once: a poll waits ~200 ms.
    ungated = await _ack_latency_during_burst(None, 100)
    gate = LoopGate()
    gated = await _ack_latency_during_burst(gate, 100)
    await gate.aclose()
    assert ungated > 0.15
    assert gated < 0.08, (ungated, gated)


async def test_work_runs_at_once_while_the_loop_is_idle_and_all_of_it_finishes() -> None:
    gate = LoopGate()
    started = time.monotonic()
    results = await asyncio.gather(*(gate.run(asyncio.sleep(0.05, result=n)) for n in range(50)))
    # Waiting work uses no CPU: fifty 50 ms waits run side by side, not one after another.
    assert results == list(range(50))
    assert time.monotonic() - started < 0.5
    assert gate.running == 0 and gate.waiting == 0
    await gate.aclose()


async def test_the_floor_always_runs_even_when_the_loop_is_busy() -> None:
    gate = LoopGate(max_lag=0.0, floor=2)  # "busy" from the first tick on
    gate._lag = 1.0  # noqa: SLF001 - as measured on a loaded loop
    done: list[int] = []

    async def one(n: int) -> None:
        await asyncio.sleep(0.01)
        done.append(n)

    await asyncio.wait_for(asyncio.gather(*(gate.run(one(n)) for n in range(6))), timeout=5)
    assert sorted(done) == list(range(6))
    await gate.aclose()


async def test_cancelled_waiting_work_leaves_no_slot_behind() -> None:
    gate = LoopGate(floor=1)
    gate._lag = 1.0  # noqa: SLF001 - busy: the second piece of work waits
    first = asyncio.ensure_future(gate.run(asyncio.sleep(0.05)))
    second = asyncio.ensure_future(gate.run(asyncio.sleep(0.05)))
    await asyncio.sleep(0)
    assert gate.waiting == 1
    second.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert gate.running == 0 and gate.waiting == 0
    await gate.aclose()


async def test_never_more_than_the_ceiling_at_once_however_idle_the_loop() -> None:
    gate = LoopGate(floor=2, ceiling=5)
    at_once = 0
    most = 0

    async def one() -> None:
        nonlocal at_once, most
        at_once += 1
        most = max(most, at_once)
        await asyncio.sleep(0.02)  # waiting, not computing: the loop stays idle
        at_once -= 1

    await asyncio.wait_for(asyncio.gather(*(gate.run(one()) for _ in range(30))), timeout=5)
    assert most == 5
    assert gate.running == 0 and gate.waiting == 0
    await gate.aclose()


async def test_closing_refuses_what_still_waits_and_none_of_it_runs() -> None:
    gate = LoopGate(floor=1, ceiling=1)
    ran: list[int] = []

    async def one(n: int) -> None:
        await asyncio.sleep(0.05)
        ran.append(n)

    first = asyncio.ensure_future(gate.run(one(1)))
    second = asyncio.ensure_future(gate.run(one(2)))  # waits: the ceiling is 1
    await asyncio.sleep(0)
    assert gate.waiting == 1
    await gate.aclose()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert results[0] is None and isinstance(results[1], GateClosed)
    assert ran == [1]  # the refused one never started
    with pytest.raises(GateClosed):
        await gate.run(one(3))
    assert ran == [1]
