"""Fleet import and export as CSV (one row per DER, with its site and customer) or JSON.

Import validates the whole file first and writes nothing if any row is wrong; every
problem is reported with its row number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from derms.api.schemas import CapabilitiesIn, CustomerIn, DerIn, SiteIn
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der
from derms.core.errors import ValidationFailed
from derms.core.site import Customer, Site
from derms.store import audit
from derms.store import registry as reg
from derms.store.mappers import capabilities_to_json
from derms.store.scope import TenantScope

CAPABILITY_FIELDS = tuple(CapabilitiesIn.model_fields)
CSV_FIELDS = (
    "tenant_id",
    "customer_id",
    "customer_name",
    "customer_email",
    "site_id",
    "latitude",
    "longitude",
    "feeder_id",
    "bus",
    "phase",
    "meter_id",
    "import_limit_w",
    "export_limit_w",
    "der_id",
    "kind",
    "protocol",
    "address",
    "name",
    "enabled",
    *CAPABILITY_FIELDS,
)


def _blank_to_none(row: dict[str, str]) -> dict[str, Any]:
    return {k: (None if v == "" else v) for k, v in row.items()}


def _parse_csv_row(row: dict[str, Any]) -> tuple[str, CustomerIn, SiteIn, DerIn]:
    caps = {k: row[k] for k in CAPABILITY_FIELDS if row.get(k) is not None}
    if "controls" in caps:
        caps["controls"] = [c for c in str(caps["controls"]).split("|") if c]
    customer = CustomerIn(
        id=row["customer_id"],
        name=row.get("customer_name") or row["customer_id"],
        email=row.get("customer_email") or "",
    )
    site_fields = {
        k: row.get(k)
        for k in SiteIn.model_fields
        if k not in ("id", "customer_id") and row.get(k) is not None
    }
    site = SiteIn(id=row["site_id"], customer_id=row["customer_id"], **site_fields)
    der = DerIn(
        id=row["der_id"],
        site_id=row["site_id"],
        kind=row["kind"],
        protocol=row["protocol"],
        address=row["address"],
        name=row.get("name") or "",
        enabled=str(row.get("enabled") or "true").lower() in ("1", "true", "yes"),
        capabilities=CapabilitiesIn(**caps),
    )
    return str(row["tenant_id"]), customer, site, der


def read_rows(path: Path) -> Iterable[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            yield from (_blank_to_none(r) for r in csv.DictReader(handle))
    elif path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValidationFailed(["a JSON fleet file is a list of rows (see `derms fleet export`)"])
        for item in data:
            yield _flatten(item) if isinstance(item, dict) and "der" in item else item
    else:
        raise ValidationFailed([f"unsupported file type {path.suffix!r}: use .csv or .json"])


def _flatten(item: dict[str, Any]) -> dict[str, Any]:
    c, s, d = item["customer"], item["site"], item["der"]
    return {
        "tenant_id": item["tenant_id"],
        "customer_id": c["id"],
        "customer_name": c.get("name"),
        "customer_email": c.get("email"),
        **{k: v for k, v in s.items() if k not in ("tenant_id", "customer_id")},
        "site_id": s["id"],
        **{k: v for k, v in d.items() if k not in ("site_id", "tenant_id", "capabilities", "id")},
        "der_id": d["id"],
        **{k: ("|".join(v) if k == "controls" else v) for k, v in d["capabilities"].items()},
    }


def import_fleet(
    engine: Engine, path: Path, *, clock: Clock, actor: str, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Import customers, sites and DERs; all-or-nothing. Returns counts of what was created."""
    problems: list[str] = []
    parsed: list[tuple[str, CustomerIn, SiteIn, DerIn]] = []
    for number, row in enumerate(read_rows(path), start=2 if path.suffix.lower() == ".csv" else 0):
        try:
            parsed.append(_parse_csv_row(row))
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"row {number}: {exc}".replace("\n", " "))
    if problems:
        raise ValidationFailed(problems)
    scope = TenantScope.utility()
    at = clock.now()
    created = {"customers": 0, "sites": 0, "ders": 0}
    with engine.begin() as conn:
        known_customers = {c.id for c in reg.list_customers(conn, scope=scope, limit=10**9)}
        known_sites = {s.id for s in reg.list_sites(conn, scope=scope, limit=10**9)}
        ders: list[Der] = []
        for tenant_id, customer, site, der in parsed:
            if customer.id not in known_customers:
                reg.create_customer(
                    conn,
                    Customer(customer.id, tenant_id, customer.name, customer.email),
                    scope=scope,
                    at=at,
                    actor=actor,
                )
                known_customers.add(customer.id)
                created["customers"] += 1
            if site.id not in known_sites:
                reg.create_site(
                    conn, Site(tenant_id=tenant_id, **site.model_dump()), scope=scope, at=at, actor=actor
                )
                known_sites.add(site.id)
                created["sites"] += 1
            caps = der.capabilities.model_dump()
            caps["controls"] = frozenset(caps["controls"])
            ders.append(
                Der(
                    der.id,
                    der.site_id,
                    der.kind,
                    Capabilities(**caps),
                    der.protocol,
                    der.address,
                    tenant_id,
                    der.name,
                    der.enabled,
                )
            )
        for start in range(0, len(ders), 1000):
            chunk = ders[start : start + 1000]
            reg.create_ders(conn, chunk, scope=scope, at=at, actor=actor)
            if progress:
                progress(len(chunk))
        created["ders"] = len(ders)
        audit.append(conn, at=at, actor=actor, action="fleet.import", target=str(path.name), detail=created)
    return created


def export_fleet(engine: Engine, path: Path) -> int:
    """Write every DER with its site and customer; returns how many DERs."""
    scope = TenantScope.utility()
    with engine.connect() as conn:
        customers = {c.id: c for c in reg.list_customers(conn, scope=scope, limit=10**9)}
        sites = {s.id: s for s in reg.list_sites(conn, scope=scope, limit=10**9)}
        ders = reg.list_ders(conn, scope=scope, limit=None)
    rows = []
    for der in ders:
        site = sites[der.site_id]
        customer = customers[site.customer_id]
        rows.append(
            {
                "tenant_id": der.tenant_id,
                "customer": {"id": customer.id, "name": customer.name, "email": customer.email},
                "site": {k: v for k, v in asdict(site).items() if k not in ("tenant_id",)}
                | {"phase": str(site.phase)},
                "der": {
                    "id": der.id,
                    "site_id": der.site_id,
                    "kind": str(der.kind),
                    "protocol": der.protocol,
                    "address": der.address,
                    "name": der.name,
                    "enabled": der.enabled,
                    "capabilities": capabilities_to_json(der.capabilities),
                },
            }
        )
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=1))
    elif path.suffix.lower() == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for row in rows:
                flat = _flatten(row)
                writer.writerow({k: ("" if flat.get(k) is None else flat[k]) for k in CSV_FIELDS})
    else:
        raise ValidationFailed([f"unsupported file type {path.suffix!r}: use .csv or .json"])
    return len(rows)
