"""Part of the demo fleet runs through the real protocol stacks, and a failing stack stays alone."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from sqlalchemy import Engine

from derms.adapters.ieee2030_5 import Ieee2030_5Settings
from derms.bus import MemoryBus
from derms.core.clock import ScaledClock
from derms.core.controls import (
    ActivePowerLimit,
    ChargeDischarge,
    ChargingLimit,
    LoadShed,
    control_to_dict,
)
from derms.demo import DemoOptions, run_demo
from derms.demo_protocols import GROUPS, ProtocolFleet, device_counts, place
from derms.demo_protocols.ieee2030_5 import Ieee2030_5Devices
from derms.runtime import Runtime
from derms.settings import Settings
from derms.store import registry as reg
from tests.conftest import T0

PLANT = "proto-dnp3-der-000"


async def _wait(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _api_and_operator_token(output: io.StringIO, demo: asyncio.Task[int]) -> tuple[str, str]:
    found: dict[str, str] = {}

    async def ready() -> bool:
        if demo.done():
            raise AssertionError(f"demo ended before serving: {demo.result()}\n{output.getvalue()[-2000:]}")
        text = output.getvalue()
        api = re.search(r"API:\s+(http://\S+)/docs", text)
        token = re.search(r"login:\s+operator\s+(\S+)", text)
        if api and token:
            found.update(api=api[1], token=token[1])
        return bool(found)

    await _wait(ready, 240.0, "the demo's API")
    return found["api"], found["token"]


COMMANDS = {
    "proto-dnp3-der-000": ActivePowerLimit(pct=50.0),
    "proto-cta2045-der-000": LoadShed(level=1),
    "proto-sunspec-der-000": ActivePowerLimit(pct=60.0),  # a PV inverter
    "proto-ocpp-der-000": ChargingLimit(limit=7_000.0),
    "proto-ieee2030_5-der-000": ChargeDischarge(w=2_000.0),  # a battery
    "proto-openadr-der-000": LoadShed(level=2),
}


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_demo_protocol_devices_report_and_obey_operator_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A headless demo with two devices per protocol (one DNP3 plant; OpenADR: a 2.0b and a
    3.0.1 VEN): each protocol that started reported
    telemetry, and operator commands through the API reached the devices (the DNP3 plant's
    at least) and were acknowledged by them."""
    output = io.StringIO()
    options = DemoOptions(
        headless=True,
        duration_s=25.0,
        n_ders=50,
        port=0,
        database=tmp_path / "demo.sqlite",
        protocol_devices=2,
    )
    demo = asyncio.create_task(run_demo(options, Console(file=output, width=500)))
    api, token = await _api_and_operator_token(output, demo)
    reported: set[str] = set()
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {token}"}) as http:

        async def all_reported() -> bool:
            for der_id in COMMANDS.keys() - reported:
                response = await http.get(f"/api/v1/ders/{der_id}/telemetry")
                if response.status_code == 200 and response.json():
                    reported.add(der_id)
            return reported == COMMANDS.keys()

        with contextlib.suppress(AssertionError):  # a stack that failed is checked below
            await _wait(all_reported, 12.0, "telemetry from every protocol")
        print("commanded:", sorted(reported))
        assert PLANT in reported
        for der_id in sorted(reported):
            body = {"control": control_to_dict(COMMANDS[der_id]), "duration_s": 1800}
            response = await http.post(f"/api/v1/ders/{der_id}/commands", json=body)
            assert response.status_code == 202, (der_id, response.text)
            assert der_id == f"proto-{response.json()['protocol']}-der-000"
    assert await demo == 0, output.getvalue()[-3000:]
    stdout = capsys.readouterr().out
    summary = json.loads(stdout[stdout.index("{\n") :])
    protocols = summary["protocols"]
    assert set(protocols) == set(GROUPS)
    running = {name for name, p in protocols.items() if p["state"] == "running"}
    print(
        "protocols not running:",
        {name: p.get("error") for name, p in protocols.items() if name not in running},
    )
    assert "dnp3" in running
    for name in running:
        assert protocols[name]["ders_reporting"] == protocols[name]["devices"] >= 1, (name, protocols[name])
    for der_id in reported:
        states = protocols[der_id.split("-")[1]]["command_states"]
        assert states.get("sent") == 1 and states.get("acknowledged") == 1, (der_id, states)
    assert all(summary["checks"].values())
    assert summary["telemetry_written"] == summary["telemetry_received"]


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    with sqlite_engine.begin() as conn:
        reg.create_tenant(conn, tenant_id="utility", name="Utility", kind="utility", at=T0, actor="test")
    return sqlite_engine


@pytest.mark.timeout(120)
async def test_a_failing_stack_is_reported_and_the_others_run(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack that does not import fails at 'devices', one whose adapter cannot start at
    'adapter'; the DNP3 and CTA-2045 devices beside them still report."""
    monkeypatch.setitem(GROUPS, "openadr", "derms.demo_protocols.no_such_module:Nothing")
    monkeypatch.setattr(Ieee2030_5Devices, "settings", lambda self: Ieee2030_5Settings(port=0))  # no PKI
    counts = {p: n for p, n in device_counts(1).items() if p in ("openadr", "ieee2030_5", "dnp3", "cta2045")}
    clock = ScaledClock(T0, speed=60.0)
    fleet = ProtocolFleet(
        place(counts, ["0", "1", "2", "3"], ["F0", "F0", "F1", "F1"], ["utility"], seed=1), clock, 60.0
    )
    await fleet.prepare()
    fleet.register(engine, clock.now())
    runtime = Runtime(Settings(telemetry_flush_s=0.2, stale_after_s=None), engine, MemoryBus(clock), clock)
    runtime.reload_fleet()
    await runtime.start()
    try:
        await fleet.attach(runtime)

        async def reported() -> bool:
            return all(fleet.runs[p].reporting for p in ("dnp3", "cta2045"))

        await _wait(reported, 30.0, "telemetry from the DNP3 plant and the water heater")
    finally:
        await fleet.stop(runtime)
        await runtime.stop()
    summary = fleet.summary()
    assert summary["openadr"]["state"] == "failed" and summary["openadr"]["error"].startswith("devices:")
    assert summary["openadr"]["devices"] == 0
    assert summary["ieee2030_5"]["state"] == "failed"
    assert "cert_file" in summary["ieee2030_5"]["error"] and summary["ieee2030_5"]["error"].startswith(
        "adapter:"
    )
    assert "ieee2030_5" not in runtime.adapters
    for name in ("dnp3", "cta2045"):
        assert summary[name]["state"] == "running" and summary[name]["ders_reporting"] == 1
    assert runtime.fleet.index.keys() >= {
        "proto-dnp3-der-000",
        "proto-cta2045-der-000",
        "proto-ieee2030_5-der-000",
    }
