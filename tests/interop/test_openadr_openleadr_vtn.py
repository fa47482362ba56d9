"""Our 2.0b VEN (derms as aggregator) against the openleadr 0.5.36 VTN (not ours, own environment).

The VEN registers, registers its delivered-load report, receives three events: a
LOAD_DISPATCH setpoint (→ PEAK_REDUCTION objectives, opt in), a SIMPLE level 2 (→
CAPACITY_TARGET, opt in, later cancelled by the VTN → objective withdrawn) and a SIMPLE
level 0 (nothing to do → opt out). The VTN receives the opts and our delivered-load reports.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from derms.adapters.openadr.aggregator import AggregatorSettings, OpenAdrAggregator
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from derms.core.events import encode_telemetry
from derms.core.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[2]
PEER_PY = ROOT / ".peers/openleadr/bin/python"
PEER_SCRIPT = ROOT / "tests/adapters/openadr/peers/openleadr_vtn.py"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not PEER_PY.exists(), reason="openleadr peer missing: run scripts/peers/openleadr.sh"),
]


async def wait_for(predicate, limit_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_our_ven_under_openleadr_vtn():
    clock = SystemClock()
    bus = MemoryBus(clock)
    await bus.start()
    created, cancelled = [], []

    async def on_created(msg):
        created.append(msg.data)

    async def on_cancelled(msg):
        cancelled.append(msg.data)

    await bus.subscribe("objective.created", on_created)
    await bus.subscribe("objective.cancelled", on_cancelled)
    peer = await asyncio.create_subprocess_exec(
        str(PEER_PY),
        str(PEER_SCRIPT),
        "--ven-name",
        "derms-agg",
        "--seconds",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    seen: list[dict] = []

    async def read() -> None:
        assert peer.stdout is not None
        async for line in peer.stdout:
            if line.startswith(b"{"):  # the peer library prints banners of its own
                seen.append(json.loads(line))

    reader = asyncio.create_task(read())
    aggregator = None
    try:
        await wait_for(lambda: any(s["kind"] == "port" for s in seen))
        port = next(s["port"] for s in seen if s["kind"] == "port")
        aggregator = OpenAdrAggregator(
            bus,
            clock,
            AggregatorSettings(vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b", ven_name="derms-agg"),
        )
        assert aggregator.client.validator is not None, (
            "replies from the VTN are checked against oadr_20b.xsd"
        )
        await aggregator.start()
        await bus.publish(
            "telemetry.sim",
            encode_telemetry(
                [
                    Telemetry("load-a", clock.now(), p_w=-120_000.0),
                    Telemetry("load-b", clock.now(), p_w=-30_000.0),
                ]
            ),
        )
        await wait_for(
            lambda: (
                {"dispatch-1", "simple-2", "simple-0"} <= {s["event_id"] for s in seen if s["kind"] == "opt"}
            )
        )
        opts = {s["event_id"]: s["opt"] for s in seen if s["kind"] == "opt"}
        assert opts == {"dispatch-1": "optIn", "simple-2": "optIn", "simple-0": "optOut"}
        assert aggregator.client.state.ven_id == "ven-derms"
        peak = sorted((o for o in created if o["source"] == "openadr:dispatch-1"), key=lambda o: o["start"])
        assert [(o["kind"], o["target_w"], o["duration_s"]) for o in peak] == [
            ("peak_reduction", 400_000.0, 900.0),
            ("peak_reduction", 350_000.0, 900.0),
        ]
        shed = [o for o in created if o["source"] == "openadr:simple-2"]
        assert [(o["kind"], o["target_w"]) for o in shed] == [("capacity_target", 100_000.0)]
        assert not any(o["source"] == "openadr:simple-0" for o in created)
        # the VTN cancels simple-2: the objective is withdrawn
        await wait_for(lambda: any(c["source"] == "openadr:simple-2" for c in cancelled))
        assert [c["id"] for c in cancelled] == [shed[0]["id"]]
        # delivered load reaches the utility: 150 kW of load
        await wait_for(lambda: any(s["kind"] == "report" for s in seen))
        report = next(s for s in seen if s["kind"] == "report")
        assert report["value"] == pytest.approx(150.0)
        assert any(s["kind"] == "register_report" and s["resource_id"] == "derms-agg" for s in seen)
    finally:
        if aggregator is not None:
            await aggregator.stop()
        await asyncio.wait_for(peer.wait(), 30)
        reader.cancel()
        await bus.close()
