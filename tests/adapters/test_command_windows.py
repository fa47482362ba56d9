"""Command windows on the context clock: late delivery, expiry, completion, supersession.

The deliver/revert callables stand for the protocol exchange the adapters pass in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from derms.adapters.base import AdapterContext, NativeCommand
from derms.adapters.windows import CommandWindows
from derms.bus import MemoryBus
from derms.core.clock import ScaledClock
from derms.core.events import COMMAND_STATE

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)


def command(cid: str, start_min: float, end_min: float) -> NativeCommand:
    return NativeCommand(
        cid, "d", "dnp3", None, T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min)
    )


async def test_windows_deliver_at_start_complete_at_end_and_supersede() -> None:
    clock = ScaledClock(T0, speed=1200.0)  # 10 simulated minutes = 0.5 s
    bus = MemoryBus(clock)
    states: list[tuple[str, str]] = []
    log: list[tuple[str, datetime]] = []

    async def on_state(msg: Any) -> None:
        states.append((msg.data["command_id"], msg.data["state"]))

    await bus.subscribe(COMMAND_STATE, on_state)
    windows = CommandWindows(AdapterContext(bus, clock, "dnp3"))

    def deliver(cid: str):
        async def run() -> bool:
            log.append((f"deliver {cid}", clock.now()))
            return True

        return run

    def revert(cid: str):
        async def run() -> str | None:
            log.append((f"revert {cid}", clock.now()))
            return None

        return run

    await windows.submit(command("old", -10, -1), "slot", deliver("old"), revert("old"))
    await windows.submit(command("a", 0, 30), "slot", deliver("a"), revert("a"))
    await windows.submit(command("b", 10, 20), "slot", deliver("b"), revert("b"))
    await clock.sleep(35 * 60)  # past every window
    await bus.drain()
    await windows.close()
    at = {what: when for what, when in log}
    tolerance = timedelta(minutes=3)  # scheduling jitter on a loaded machine, in simulated time
    assert ("old", "failed") in states and "deliver old" not in at
    assert abs(at["deliver a"] - T0) < tolerance
    assert abs(at["deliver b"] - (T0 + timedelta(minutes=10))) < tolerance
    assert abs(at["revert b"] - (T0 + timedelta(minutes=20))) < tolerance
    assert ("a", "superseded") in states and ("b", "completed") in states
    assert "revert a" not in at and ("a", "completed") not in states
