"""openleadr 0.5.36 VTN driven by the interop tests (runs in .peers/openleadr, Python 3.11).

Binds port 0 and prints it, registers the VEN named on the command line, queues three events
for it (LOAD_DISPATCH setpoint, SIMPLE level 2, SIMPLE level 0), requests its usage report,
cancels the SIMPLE level 2 event once the VEN has answered it, and prints one JSON line per
thing it sees (opt responses, report values).
"""

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta
from functools import partial

from openleadr import OpenADRServer


def emit(**kw):
    print(json.dumps(kw, default=str), flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ven-name", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    server = OpenADRServer(
        vtn_id="UTILITY_VTN", http_port=0, requested_poll_freq=timedelta(seconds=1), show_fingerprint=False
    )
    ven_id = "ven-derms"
    answered = asyncio.Event()

    async def on_create_party_registration(info):
        emit(kind="registration", ven_name=info["ven_name"])
        if info["ven_name"] != args.ven_name:
            return False
        return ven_id, "reg-derms"

    async def on_update_report(data, ven_id, resource_id, measurement):
        for _ts, value in data:
            emit(kind="report", resource_id=resource_id, measurement=measurement, value=value)

    async def on_register_report(
        ven_id, resource_id, measurement, unit, scale, min_sampling_interval, max_sampling_interval
    ):
        emit(kind="register_report", resource_id=resource_id, measurement=measurement, unit=unit, scale=scale)
        return partial(
            on_update_report, ven_id=ven_id, resource_id=resource_id, measurement=measurement
        ), min_sampling_interval

    async def on_opt(ven_id, event_id, opt_type):
        emit(kind="opt", event_id=event_id, opt=opt_type)
        if event_id == "simple-2":
            answered.set()

    server.add_handler("on_create_party_registration", on_create_party_registration)
    server.add_handler("on_register_report", on_register_report)
    start = datetime.now(UTC) + timedelta(minutes=30)
    events = [
        ("dispatch-1", "LOAD_DISPATCH", "setpoint", [400.0, 350.0]),
        ("simple-2", "SIMPLE", "level", [2.0]),
        ("simple-0", "SIMPLE", "level", [0.0]),
    ]
    for event_id, name, kind, values in events:
        intervals = [
            {
                "dtstart": start + i * timedelta(minutes=15),
                "duration": timedelta(minutes=15),
                "signal_payload": v,
            }
            for i, v in enumerate(values)
        ]
        server.add_event(
            ven_id=ven_id,
            signal_name=name,
            signal_type=kind,
            intervals=intervals,
            event_id=event_id,
            callback=on_opt,
            market_context="http://utility.example/dr",
        )
    await server.run()
    port = server.app_runner.addresses[0][1]
    emit(kind="port", port=port)
    try:
        await asyncio.wait_for(answered.wait(), args.seconds)
        await asyncio.sleep(0.5)
        server.cancel_event(ven_id, "simple-2")
        emit(kind="cancelled", event_id="simple-2")
    except TimeoutError:
        emit(kind="timeout")
    await asyncio.sleep(args.seconds / 2)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
