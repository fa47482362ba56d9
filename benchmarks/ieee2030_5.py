"""IEEE 2030.5 server throughput over mutual TLS with 10,000 registered EndDevices.

Prints one JSON object with, per scenario, requests/s (median over repeats) and latency
percentiles (p50/p99 over all requests of the repeats):

* ``get_dercontrol_list``: GET a device's DERControlList (``l=10``, three events listed);
* ``post_mirror_meter_reading``: POST a MirrorMeterReading to the device's MirrorUsagePoint;
* ``baseline_get_time``: GET /tm, the cheapest resource, measured in the same run as the
  floor of TLS + HTTP + framework cost; ``ratio_to_baseline`` compares each scenario to it;
* ``new_connection_get_time``: GET /tm on a new connection each time (full mutual-TLS
  handshake), i.e. the handshake rate; not what polling clients cost, reported apart.

The server runs in its own process (uvicorn with httptools on the stdlib asyncio loop as
`derms serve` runs it, or uvloop with ``--loop uvloop``; in-process mTLS with
ECDHE-ECDSA-AES128-CCM8). Every EndDevice is registered as the platform does it
(``register_device``: one dispatch DERProgram each), so per-request lookups run against a
realistic registry. The load runs in ``--load-processes`` separate processes (uvloop, raw
HTTP/1.1 over ``ssl``), each keeping its share of ``--connections`` persistent TLS
connections (keep-alive, no pipelining; handshakes happen before the clock starts),
authenticated with ``--clients`` device certificates, requests back to back. Because the
2-core machine is shared, the JSON also gives the server's and the load generator's CPU time
per request (``/proc``, ``time.process_time``) and the 1-minute load average around each
scenario. Target on the 2-core reference machine: ≥ 1,000 requests/s.
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
SCENARIOS = (
    "baseline_get_time",
    "get_dercontrol_list",
    "post_mirror_meter_reading",
    "new_connection_get_time",
)
"""The last one opens a new mutual-TLS connection (full handshake) for every GET /tm."""


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


def _der(name: str, lfdi: str) -> Der:
    return Der(name, "site", DerKind.PV_INVERTER, Capabilities(w_max=5000), "ieee2030_5", lfdi, "default")


def _serve(directory: str, lfdis: list[str], n_registered: int, port_out: Any, stop: Any, loop: str) -> None:
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
            await adapter.register_device(_der(f"bulk-{i}", f"{i:040X}"))
        now = clock.now()
        for i, lfdi in enumerate(lfdis):
            der = _der(f"bench-{i}", lfdi)
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

    if loop == "uvloop":
        _run_loop(main())
    else:
        asyncio.run(main())  # the stdlib loop, as `derms serve` runs it


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def _raw(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/sep+xml\r\n"
    if body:
        head += f"Content-Type: application/sep+xml\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes, bytes]:
    """One request on a keep-alive connection: (status, head, body)."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return int(head[9:12]), head, body


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_process(
    port: int,
    certs: list[tuple[str, str]],
    ca: str,
    paths: list[dict[str, str]],
    connections: list[int],
    commands: Any,
    results: Any,
) -> None:
    """One load generator process: opens its connections once, then runs each command.

    A command is ``(scenario, start_at, seconds)``: from wall time ``start_at`` send requests
    back to back for ``seconds``; the reply is (requests, latencies, CPU seconds, late start).
    """

    async def main() -> None:
        contexts = [client_context(Path(c), Path(k), Path(ca)) for c, k in certs]
        streams = [
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=contexts[i % len(contexts)], server_hostname="localhost"
            )
            for i in connections
        ]
        results.put("ready")
        while (command := commands.get()) is not None:
            results.put(await _timed(streams, contexts, port, connections, paths, *command))
        for _, writer in streams:
            writer.close()

    _run_loop(main())


async def _timed(
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    contexts: list[ssl.SSLContext],
    port: int,
    connections: list[int],
    paths: list[dict[str, str]],
    scenario: str,
    start_at: float,
    seconds: float,
) -> tuple[int, list[float], float, float]:
    latencies: list[float] = []
    late = time.time() - start_at
    await asyncio.sleep(max(0.0, -late))
    cpu0 = time.process_time()
    deadline = time.perf_counter() + seconds

    async def worker(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dev = paths[i % len(paths)]
        n = 0
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            if scenario == "new_connection_get_time":
                fresh_reader, fresh_writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=contexts[i % len(contexts)], server_hostname="localhost"
                )
                status, _, _ = await _exchange(fresh_reader, fresh_writer, _raw("GET", "/tm"))
                fresh_writer.close()
            else:
                status, _, _ = await _exchange(reader, writer, _request(scenario, dev, n))
            latencies.append(time.perf_counter() - t)
            if status >= 300:
                raise RuntimeError(f"{scenario}: HTTP {status}")
            n += 1

    await asyncio.gather(*(worker(i, r, w) for i, (r, w) in zip(connections, streams, strict=True)))
    return len(latencies), latencies, time.process_time() - cpu0, max(0.0, late)


def _request(scenario: str, dev: dict[str, str], n: int) -> bytes:
    if scenario == "get_dercontrol_list":
        return _raw("GET", dev["derc"])
    if scenario == "post_mirror_meter_reading":
        return _raw("POST", dev["mup"], _reading_xml(int(time.time()), 1000 + n % 500))
    return _raw("GET", "/tm")


class LoadGenerators:
    """Load processes sharing ``connections`` keep-alive TLS connections, opened once for every run."""

    def __init__(self, ctx: Any, n: int, port: int, setup: dict[str, Any], connections: int) -> None:
        self._results = ctx.Queue()
        shares = [s for s in (list(range(k, connections, n)) for k in range(n)) if s]
        self._commands = [ctx.Queue() for _ in shares]
        self._procs = [
            ctx.Process(
                target=_load_process,
                args=(port, setup["certs"], setup["ca"], setup["paths"], share, q, self._results),
                daemon=True,
            )
            for share, q in zip(shares, self._commands, strict=True)
        ]
        for p in self._procs:
            p.start()
        for _ in self._procs:
            self._results.get(timeout=300)

    def run(self, server_pid: int, scenario: str, seconds: float) -> dict[str, Any]:
        """One timed repeat; the server's CPU is read at the start and the end of the window."""
        start_at = time.time() + 0.5
        for q in self._commands:
            q.put((scenario, start_at, seconds))
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = _cpu_s(server_pid)
        time.sleep(seconds)
        cpu1 = _cpu_s(server_pid)
        results = [self._results.get(timeout=60 + seconds) for _ in self._procs]
        count = sum(r[0] for r in results)
        return {
            "rate": count / seconds,
            "latencies": [x for r in results for x in r[1]],
            "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            "load_cpu_s": sum(r[2] for r in results),
            "late_start_s": max(r[3] for r in results),
            "count": count,
        }

    def close(self) -> None:
        for q in self._commands:
            q.put(None)
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


async def _discover(port: int, contexts: list[ssl.SSLContext], lfdis: list[str]) -> list[dict[str, str]]:
    """Per device certificate: its MirrorUsagePoint (created here), EndDevice and DERControlList."""
    paths = []
    for ctx, lfdi in zip(contexts, lfdis, strict=True):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
        )
        _, head, _ = await _exchange(reader, writer, _raw("POST", "/mup", _mup_xml(lfdi)))
        location = next(
            line.split(b": ", 1)[1].decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"location:")
        )
        _, _, body = await _exchange(reader, writer, _raw("GET", "/edev?l=1"))
        edev = body.decode().split('<EndDevice href="')[1].split('"')[0]
        # the bench program is listed after the device's dispatch program (same primacy, later id)
        _, _, body = await _exchange(reader, writer, _raw("GET", f"{edev}/derp?l=10"))
        derc = body.decode().split('<DERControlListLink href="')[-1].split('"')[0] + "?l=10"
        writer.close()
        paths.append({"mup": location, "edev": edev, "derc": derc})
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run for tests")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8, help="distinct device certificates")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--load-processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="server event loop (derms serve: asyncio)",
    )
    args = parser.parse_args()
    if args.quick:
        args.devices, args.clients, args.connections, args.seconds, args.repeats = 1000, 2, 4, 0.5, 1

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pki = TestPki(datetime.now(UTC))
        (d / "ca.pem").write_bytes(pki.serca.cert_pem)
        pki.server().write(d, "server")
        issued = [pki.device(f"BENCH-{i}") for i in range(args.clients)]
        certs = [cert.write(d, f"dev{i}", chain=(pki.mca,)) for i, cert in enumerate(issued)]
        contexts = [client_context(c, k, d / "ca.pem") for c, k in certs]
        lfdis = [c.lfdi for c in issued]
        ctx = mp.get_context("spawn")
        port_q, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(
            target=_serve, args=(tmp, lfdis, args.devices, port_q, stop, args.loop), daemon=True
        )
        server.start()
        try:
            port = port_q.get(timeout=600)
            setup = {
                "certs": [(str(c), str(k)) for c, k in certs],
                "ca": str(d / "ca.pem"),
                "paths": asyncio.run(_discover(port, contexts, lfdis)),
            }
            load = LoadGenerators(ctx, args.load_processes, port, setup, args.connections)
            try:
                results = _measure(load, server.pid or 0, args)
            finally:
                load.close()
        finally:
            stop.set()
            server.join(timeout=20)
            if server.is_alive():
                server.terminate()
    print(json.dumps(results, indent=2))


def _measure(load: LoadGenerators, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "benchmark": "ieee2030_5",
        "registered_end_devices": args.devices + args.clients,
        "tls": "TLSv1.2 ECDHE-ECDSA-AES128-CCM8 P-256, mutual",
        "connections": args.connections,
        "load_processes": args.load_processes,
        "server_loop": args.loop,
        "seconds_per_repeat": args.seconds,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
    }
    for scenario in SCENARIOS:
        load_before = os.getloadavg()[0]
        runs = [load.run(server_pid, scenario, args.seconds) for _ in range(args.repeats)]
        lat = sorted(x for r in runs for x in r["latencies"])
        count = sum(r["count"] for r in runs)
        server_cpu = [r["server_cpu_s"] for r in runs]
        cpu_ms = None if None in server_cpu else sum(server_cpu) / count * 1000  # type: ignore[arg-type]
        out[scenario] = {
            "requests_per_s": round(statistics.median(r["rate"] for r in runs), 1),
            "requests_per_s_each_repeat": [round(r["rate"], 1) for r in runs],
            "server_cpu_ms_per_request": None if cpu_ms is None else round(cpu_ms, 3),
            "capacity_per_server_core_rps": None if not cpu_ms else round(1000 / cpu_ms, 1),
            "load_generator_cpu_ms_per_request": round(sum(r["load_cpu_s"] for r in runs) / count * 1000, 3),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
            "requests": count,
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "latest_start_s": round(max(r["late_start_s"] for r in runs), 3),
        }
    base = out["baseline_get_time"]["requests_per_s"]
    for scenario in SCENARIOS[1:3]:
        out[scenario]["ratio_to_baseline"] = (
            round(out[scenario]["requests_per_s"] / base, 3) if base else None
        )
    return out


if __name__ == "__main__":
    main()
