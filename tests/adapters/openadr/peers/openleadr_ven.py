"""openleadr 0.5.36 VEN driven by the interop tests (runs in .peers/openleadr, Python 3.11).

Prints one JSON object per line on stdout for everything it sees, so the test can follow it.
Events whose ID starts with ``out-`` are opted out; for events starting with ``flip-`` the VEN
opts in, then sends an oadrCreateOpt opting out, then cancels that opt (EiOpt).
"""

import argparse
import asyncio
import json
import sys
from datetime import timedelta

from openleadr import OpenADRClient, enums


def emit(**kw):
    print(json.dumps(kw, default=str), flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--vtn-fingerprint")
    args = ap.parse_args()
    tls = {}
    if args.cert:
        tls = dict(
            cert=args.cert,
            key=args.key,
            ca_file=args.ca,
            vtn_fingerprint=args.vtn_fingerprint,
            show_fingerprint=False,
            check_hostname=False,
            disable_signature=False,
        )
    client = OpenADRClient(ven_name=args.name, vtn_url=args.url, **tls)
    tasks = []

    async def flip(event_id, mod):
        await asyncio.sleep(0.5)
        opt_id = await client.create_opt(
            opt_type="optOut", opt_reason="economic", targets=[], event_id=event_id, modification_number=mod
        )
        emit(kind="opt", opt_id=opt_id, event_id=event_id)
        await asyncio.sleep(0.5)
        await client.cancel_opt(opt_id)
        emit(kind="cancel_opt", opt_id=opt_id, event_id=event_id)

    async def on_event(event):
        desc = event["event_descriptor"]
        signals = [
            {
                "name": s["signal_name"],
                "type": s["signal_type"],
                "values": [i["signal_payload"] for i in s["intervals"]],
            }
            for s in event["event_signals"]
        ]
        event_id = desc["event_id"]
        choice = "optOut" if event_id.startswith("out-") else "optIn"
        emit(
            kind="event",
            event_id=event_id,
            status=desc["event_status"],
            modification_number=desc["modification_number"],
            priority=desc.get("priority"),
            signals=signals,
            targets=event.get("targets"),
            choice=choice,
        )
        if event_id.startswith("flip-"):
            tasks.append(asyncio.create_task(flip(event_id, desc["modification_number"])))
        return choice

    async def on_update_event(event):
        desc = event["event_descriptor"]
        emit(
            kind="update",
            event_id=desc["event_id"],
            status=desc["event_status"],
            modification_number=desc["modification_number"],
        )
        return "optIn"

    def collect():
        return 42.5

    client.add_handler("on_event", on_event)
    client.add_handler("on_update_event", on_update_event)
    client.add_report(
        callback=collect,
        resource_id="load-1",
        measurement=enums.MEASUREMENTS.POWER_REAL,
        report_specifier_id="spec-usage",
        r_id="rid-power",
        unit="W",
        scale="k",
        sampling_rate=timedelta(seconds=1),
        report_duration=timedelta(seconds=1),
    )
    await client.run()
    emit(kind="registered", ven_id=client.ven_id, registration_id=client.registration_id)
    await asyncio.sleep(args.seconds)
    await client.stop()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
