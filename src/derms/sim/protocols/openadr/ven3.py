"""A simulated C&I load behind an OpenADR 3.0.1 VEN (REST/JSON) on loopback.

It takes an OAuth2 client-credentials token, creates its VEN object and resource, reads the
events addressed to it (3.0.1 VENs poll ``GET /events``), applies the interval in force
(payload types ``SIMPLE`` level, ``IMPORT_CAPACITY_LIMIT`` in kW, ``DISPATCH_SETPOINT`` in kW
as a consumption cap, since a load can only shed towards it; others ignored) and posts
``USAGE`` reports (kW, load positive) for the events it acts on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import structlog

from derms.adapters.openadr.oadr3.models import parse_duration
from derms.core.clock import Clock
from derms.sim.protocols.openadr.load import Command, SimulatedCiLoad

log = structlog.get_logger(__name__)


def _duration(text: str | None) -> timedelta:
    """ISO 8601 duration as in 3.0.1; absent means zero."""
    return parse_duration(text) if text else timedelta(0)


class CiLoadVen3:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        ven_name: str,
        clock: Clock,
        load: SimulatedCiLoad,
        resource_name: str = "load-1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.ven_name = ven_name
        self.clock = clock
        self.load = load
        self.resource_name = resource_name
        self.http = httpx.AsyncClient(timeout=10.0)
        self.headers: dict[str, str] = {}
        self.token_expires: datetime | None = None
        self.ven_id: str | None = None
        self.events: list[dict[str, object]] = []

    async def close(self) -> None:
        await self.http.aclose()

    async def authenticate(self) -> None:
        """Take a client-credentials token (RFC 6749 4.4) and note when it expires."""
        r = await self.http.post(
            f"{self.base_url}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
        )
        r.raise_for_status()
        token = r.json()
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}
        lifetime = token.get("expires_in")
        self.token_expires = (
            None if lifetime is None else self.clock.now() + timedelta(seconds=0.9 * float(lifetime))
        )

    async def connect(self) -> None:
        await self.authenticate()
        r = await self.http.get(f"{self.base_url}/vens", headers=self.headers)
        r.raise_for_status()
        mine = [v for v in r.json() if v["venName"] == self.ven_name]
        if mine:
            self.ven_id = mine[0]["id"]
        else:
            r = await self.http.post(
                f"{self.base_url}/vens", json={"venName": self.ven_name}, headers=self.headers
            )
            r.raise_for_status()
            self.ven_id = r.json()["id"]
            r = await self.http.post(
                f"{self.base_url}/vens/{self.ven_id}/resources",
                json={"resourceName": self.resource_name},
                headers=self.headers,
            )
            r.raise_for_status()

    async def poll(self) -> None:
        if self.token_expires is not None and self.clock.now() >= self.token_expires:
            await self.authenticate()
        r = await self.http.get(f"{self.base_url}/events", headers=self.headers)
        r.raise_for_status()
        self.events = r.json()

    def _in_force(self, now: datetime) -> list[tuple[dict[str, object], list[dict[str, object]]]]:
        found = []
        for event in self.events:
            default = event.get("intervalPeriod") or {}
            for interval in event.get("intervals", []):  # type: ignore[union-attr]
                period = interval.get("intervalPeriod") or default
                if not period or "start" not in period:
                    continue
                start = datetime.fromisoformat(str(period["start"]).replace("Z", "+00:00"))
                duration = _duration(period.get("duration"))
                if start <= now and (duration == timedelta(0) or now < start + duration):
                    found.append((event, interval["payloads"]))
        return found

    def command(self, now: datetime) -> Command:
        cmd = Command()
        for _event, payloads in self._in_force(now):
            for payload in payloads:
                values = payload.get("values") or []
                if not values or not isinstance(values[0], int | float):
                    continue
                value = float(values[0])
                if payload["type"] == "SIMPLE":
                    cmd.shed_level = max(cmd.shed_level, int(value))
                elif payload["type"] in ("IMPORT_CAPACITY_LIMIT", "DISPATCH_SETPOINT"):
                    cap = value * 1000.0
                    cmd.limit_w = cap if cmd.limit_w is None else min(cmd.limit_w, cap)
        return cmd

    def step(self, dt_s: float) -> float:
        now = self.clock.now()
        return self.load.step(now, dt_s, self.command(now))

    async def report(self) -> int:
        """Post a USAGE report for each event in force; returns how many were posted."""
        now = self.clock.now()
        posted = 0
        for event, _ in self._in_force(now):
            body = {
                "programID": event["programID"],
                "eventID": event["id"],
                "clientName": self.ven_name,
                "reportName": "usage",
                "payloadDescriptors": [{"payloadType": "USAGE", "units": "KW", "readingType": "DIRECT_READ"}],
                "resources": [
                    {
                        "resourceName": self.resource_name,
                        "intervalPeriod": {"start": now.isoformat(), "duration": "PT0S"},
                        "intervals": [
                            {"id": 0, "payloads": [{"type": "USAGE", "values": [-self.load.p_w / 1000.0]}]}
                        ],
                    }
                ],
            }
            r = await self.http.post(f"{self.base_url}/reports", json=body, headers=self.headers)
            r.raise_for_status()
            posted += 1
        return posted

    async def run(self, stop: asyncio.Event, poll_s: float = 10.0, dt_s: float = 1.0) -> None:
        await self.connect()
        elapsed = poll_s
        try:
            while not stop.is_set():
                if elapsed >= poll_s:
                    try:
                        await self.poll()
                        await self.report()
                    except httpx.HTTPError as exc:
                        log.warning("openadr.sim.ven3.poll_failed", ven=self.ven_name, error=str(exc))
                    elapsed = 0.0
                self.step(dt_s)
                await self.clock.sleep(dt_s)
                elapsed += dt_s
        finally:
            await self.close()
