"""IEEE 2030.5 server throughput over mutual TLS with 10,000 registered EndDevices.

Prints one JSON object with, per scenario, requests/s (median over repeats) and latency
percentiles (p50/p99 over all requests of the repeats):

* ``get_dercontrol_list``: GET a device's DERControlList (``l=10``, three events listed);
* ``post_mirror_meter_reading``: POST a MirrorMeterReading to the device's MirrorUsagePoint;
* ``baseline_get_time``: GET /tm, the cheapest resource, measured in the same run as the
  floor of TLS + HTTP + framework cost; ``ratio_to_baseline`` compares each scenario to it.

The server runs in its own process (uvicorn, in-process mTLS with ECDHE-ECDSA-AES128-CCM8);
the load generator keeps ``--connections`` TLS connections open (HTTP/1.1 keep-alive), each
authenticated with one of ``--clients`` device certificates, and issues requests back to
back. 10,000 further EndDevices are registered out of band so per-request lookups run
against a realistic registry. Target on the 2-core reference machine: ≥ 1,000 requests/s.
Because the machine is shared, the server process's CPU time per request (from ``/proc``)
is reported too, with the request rate one server core sustains at that cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import ssl
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.pki import TestPki
from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.adapters.ieee2030_5.tls import client_context
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from derms.core.der import Capabilities, Der, DerKind

MUP_MRID = "AB000000000000000000000000000001"
MMR_MRID = "AB000000000000000000000000000002"


def _mup_xml(lfdi: str) -> bytes:
    return (
        '<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns">'
        f"<mRID>{MUP_MRID}</mRID><description>site</description><roleFlags>03</roleFlags>"
        f"<serviceCategoryKind>0</serviceCategoryKind><status>1</status><deviceLFDI>{lfdi}</deviceLFDI>"
        f"<MirrorMeterReading><mRID>{MMR_MRID}</mRID><description>W</description>"
        "<ReadingType><kind>37</kind><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>38</uom></ReadingType>"
        "</MirrorMeterReading></MirrorUsagePoint>"
    ).encode()


def _reading_xml(ts: int, value: int) -> bytes:
    return (
        '<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns">'
        f"<mRID>{MMR_MRID}</mRID><Reading><timePeriod><duration>0</duration><start>{ts}</start></timePeriod>"
        f"<value>{value}</value></Reading></MirrorMeterReading>"
    ).encode()


def _serve(directory: str, lfdis: list[str], n_registered: int, port_out: Any, stop: Any) -> None:
    async def main() -> None:
        d = Path(directory)
        clock = SystemClock()
        adapter = create_adapter(
            AdapterContext(bus=MemoryBus(clock), clock=clock, protocol="ieee2030_5"),
            Ieee2030_5Settings(
                port=0, cert_file=d / "server.pem", key_file=d / "server.key", ca_file=d / "ca.pem"
            ),
        )
        for i in range(n_registered):
            adapter.manager.register_out_of_band(f"{i:040X}", "default", der_id=f"bulk-{i}")
        now = clock.now()
        for i, lfdi in enumerate(lfdis):
            der = Der(
                f"bench-{i}",
                "site",
                DerKind.PV_INVERTER,
                Capabilities(w_max=5000),
                "ieee2030_5",
                lfdi,
                "default",
            )
            await adapter.register_device(der)
            edev = adapter.repo.end_device_by_der(der.id)
            program = adapter.manager.create_program("default", "bench", 1, frozenset({edev.id}))
            for k in range(3):
                await adapter.manager.create_control(
                    program.id,
                    DERControlBase(opModExpLimW=ActivePower(value=1000 + k, multiplier=0)),
                    int((now + timedelta(hours=k)).timestamp()),
                    3600,
                )
        await adapter.start()
        port_out.put(adapter._server.port)  # type: ignore[union-attr]
        await asyncio.to_thread(stop.wait)
        await adapter.stop()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover
        asyncio.run(main())


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _raw(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/sep+xml\r\n"
    if body:
        head += f"Content-Type: application/sep+xml\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _load(
    port: int,
    contexts: list[ssl.SSLContext],
    paths: list[dict[str, str]],
    scenario: str,
    connections: int,
    seconds: float,
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    count = 0

    async def worker(i: int) -> None:
        nonlocal count
        ctx = contexts[i % len(contexts)]
        dev = paths[i % len(contexts)]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
        )
        n = 0
        try:
            while time.perf_counter() < deadline:
                if scenario == "get_dercontrol_list":
                    raw = _raw("GET", dev["derc"])
                elif scenario == "post_mirror_meter_reading":
                    raw = _raw("POST", dev["mup"], _reading_xml(int(time.time()), 1000 + n % 500))
                else:
                    raw = _raw("GET", "/tm")
                t = time.perf_counter()
                status = await _request(reader, writer, raw)
                latencies.append(time.perf_counter() - t)
                if status >= 300:
                    raise RuntimeError(f"{scenario}: HTTP {status}")
                n += 1
                count += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return count / (time.perf_counter() - start), latencies


async def _prepare(port: int, contexts: list[ssl.SSLContext], lfdis: list[str]) -> list[dict[str, str]]:
    paths = []
    for ctx, lfdi in zip(contexts, lfdis, strict=True):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
        )
        writer.write(_raw("POST", "/mup", _mup_xml(lfdi)))
        head = await reader.readuntil(b"\r\n\r\n")
        location = next(
            line.split(b": ", 1)[1].decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"location:")
        )
        writer.write(_raw("GET", "/edev?l=1"))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        body = (await reader.readexactly(length)).decode()
        edev = body.split('<EndDevice href="')[1].split('"')[0]
        writer.close()
        paths.append({"mup": location, "edev": edev})
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run for tests")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8, help="distinct device certificates")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.clients, args.connections, args.seconds, args.repeats = 1000, 2, 4, 0.5, 1

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pki = TestPki(datetime.now(UTC))
        (d / "ca.pem").write_bytes(pki.serca.cert_pem)
        pki.server().write(d, "server")
        issued = [pki.device(f"BENCH-{i}") for i in range(args.clients)]
        contexts = []
        for i, cert in enumerate(issued):
            cert_path, key_path = cert.write(d, f"dev{i}", chain=(pki.mca,))
            contexts.append(client_context(cert_path, key_path, d / "ca.pem"))
        lfdis = [c.lfdi for c in issued]
        ctx = mp.get_context("spawn")
        port_q, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(target=_serve, args=(tmp, lfdis, args.devices, port_q, stop), daemon=True)
        server.start()
        try:
            port = port_q.get(timeout=300)
            results = asyncio.run(_run(port, contexts, lfdis, args, server.pid or 0))
        finally:
            stop.set()
            server.join(timeout=20)
            if server.is_alive():
                server.terminate()
    print(json.dumps(results, indent=2))


async def _run(
    port: int, contexts: list[ssl.SSLContext], lfdis: list[str], args: argparse.Namespace, server_pid: int
) -> dict[str, Any]:
    paths = await _prepare(port, contexts, lfdis)
    for p in paths:
        edev = p["edev"]
        # the bench program is listed after the device's dispatch program (same primacy, later id)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=contexts[paths.index(p)], server_hostname="localhost"
        )
        writer.write(_raw("GET", f"{edev}/derp?l=10"))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        body = (await reader.readexactly(length)).decode()
        writer.close()
        p["derc"] = body.split('<DERControlListLink href="')[-1].split('"')[0] + "?l=10"
    out: dict[str, Any] = {
        "benchmark": "ieee2030_5",
        "registered_end_devices": args.devices + args.clients,
        "tls": "TLSv1.2 ECDHE-ECDSA-AES128-CCM8 P-256, mutual",
        "connections": args.connections,
        "seconds_per_repeat": args.seconds,
        "repeats": args.repeats,
    }
    for scenario in ("baseline_get_time", "get_dercontrol_list", "post_mirror_meter_reading"):
        rates, lat = [], []
        cpu_before = _cpu_s(server_pid)
        for _ in range(args.repeats):
            rate, latencies = await _load(port, contexts, paths, scenario, args.connections, args.seconds)
            rates.append(rate)
            lat += latencies
        cpu_after = _cpu_s(server_pid)
        lat.sort()
        cpu_ms = (
            None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / len(lat) * 1000
        )
        out[scenario] = {
            "requests_per_s": round(statistics.median(rates), 1),
            "server_cpu_ms_per_request": None if cpu_ms is None else round(cpu_ms, 3),
            "capacity_per_server_core_rps": None if not cpu_ms else round(1000 / cpu_ms, 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
            "requests": len(lat),
        }
    base = out["baseline_get_time"]["requests_per_s"]
    for scenario in ("get_dercontrol_list", "post_mirror_meter_reading"):
        out[scenario]["ratio_to_baseline"] = (
            round(out[scenario]["requests_per_s"] / base, 3) if base else None
        )
    return out


if __name__ == "__main__":
    main()
