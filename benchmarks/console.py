"""Time from a mass device drop to the console's drill view showing it.

A real runtime with a simulated fleet (default 10,000 DERs on mv_oberrhein, accelerated
clock, the heat-event scenario's heat wave) serves the console with uvicorn on a free port.
Each repeat drops ``--drop`` online devices at once through the simulator (the same call the
scenario's ``device_drop`` event makes), then polls the rendered drill page (``GET
/console/drill``, as the operator) until it shows an incident with all of them; the time
from the drop to that page is the latency. The devices then recover before the next repeat.
The target is at most 5 s with 10,000 DERs. Prints one JSON object (medians over repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from datetime import timedelta

import httpx
import numpy as np

from derms.console.sandbox import Sandbox, drill_scenario

TARGET_S = 5.0
INCIDENT = re.compile(r'data-incident="(?P<id>\d+)"[^>]*>\s*<p id="drill-summary"><b>(?P<devices>\d+)</b>')


async def one_drop(box: Sandbox, client: httpx.AsyncClient, rng: np.random.Generator, count: int) -> float:
    sim = box.adapter.fleet
    online = np.array([sim.is_online(d) for d in sim.der_ids])
    mask = np.zeros(len(online), bool)
    mask[rng.choice(np.flatnonzero(online), count, replace=False)] = True
    monitor = box.monitor
    assert monitor is not None
    before = monitor.incidents[-1].id if monitor.incidents else None
    t0 = time.perf_counter()
    sim.set_online(mask, False, "mass device drop")
    while True:
        page = await client.get("/console/drill")
        shown = INCIDENT.search(page.text)
        if shown and shown["id"] != str(before) and int(shown["devices"]) == count:
            latency = time.perf_counter() - t0
            break
        if time.perf_counter() - t0 > 60:
            raise TimeoutError("the drill view did not show the drop within 60 s")
        await asyncio.sleep(0.05)
    sim.set_online(mask, True, "recovered after mass drop")
    for _ in range(600):  # wait (up to a minute) until every device is back
        if not monitor.incidents[-1].active:
            break
        await asyncio.sleep(0.1)
    return latency


async def run(n_ders: int, drop: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    box = await Sandbox.start(n_ders=n_ders, scenario=drill_scenario(timedelta(hours=12)), speed=60.0)
    startup = time.perf_counter() - t0
    try:
        async with httpx.AsyncClient(base_url=box.url, timeout=30) as client:
            r = await client.post("/console/api/session", json={"token": box.tokens["operator"]})
            r.raise_for_status()
            await asyncio.sleep(3)  # a few telemetry periods, so every device has reported
            rng = np.random.default_rng(1)
            latencies = [await one_drop(box, client, rng, drop) for _ in range(repeats)]
            drill = (await client.get("/console/api/drill")).json()
    finally:
        await box.stop()
    median = statistics.median(latencies)
    return {
        "benchmark": "console_drop_to_drill_view",
        "ders": n_ders,
        "dropped": drop,
        "repeats": repeats,
        "startup_s": round(startup, 2),
        "latency_s": [round(v, 3) for v in latencies],
        "median_latency_s": round(median, 3),
        "target_s": TARGET_S,
        "meets_target": median <= TARGET_S,
        "feeders_named": [f["feeder_id"] for f in drill["feeders"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 DERs, one repeat (smoke test)")
    parser.add_argument("--ders", type=int, default=10_000)
    parser.add_argument("--drop", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, repeats = (2_000, 1) if args.quick else (args.ders, args.repeats)
    print(json.dumps(asyncio.run(run(n, args.drop, repeats)), indent=1))


if __name__ == "__main__":
    main()
