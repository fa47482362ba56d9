"""Pure conversions between core domain objects and table rows (JSON-ready dicts)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from derms.core.controls import ControlKind
from derms.core.der import Capabilities, Der, DerKind
from derms.core.site import Customer, Phase, Site


def capabilities_to_json(caps: Capabilities) -> dict[str, Any]:
    data = asdict(caps)
    data["controls"] = sorted(str(c) for c in caps.controls)
    return data


def capabilities_from_json(data: dict[str, Any]) -> Capabilities:
    fields = dict(data)
    fields["controls"] = frozenset(ControlKind(c) for c in fields.get("controls", ()))
    return Capabilities(**fields)


def der_to_row(der: Der) -> dict[str, Any]:
    return {
        "id": der.id,
        "site_id": der.site_id,
        "tenant_id": der.tenant_id,
        "kind": str(der.kind),
        "protocol": der.protocol,
        "address": der.address,
        "name": der.name,
        "enabled": der.enabled,
        "capabilities": capabilities_to_json(der.capabilities),
    }


def der_from_row(row: Any) -> Der:
    return Der(
        id=row.id,
        site_id=row.site_id,
        kind=DerKind(row.kind),
        capabilities=capabilities_from_json(row.capabilities),
        protocol=row.protocol,
        address=row.address,
        tenant_id=row.tenant_id,
        name=row.name,
        enabled=row.enabled,
    )


def site_to_row(site: Site) -> dict[str, Any]:
    row = asdict(site)
    row["phase"] = str(site.phase)
    return row


def site_from_row(row: Any) -> Site:
    data = dict(row._mapping)
    data["phase"] = Phase(data["phase"])
    return Site(**data)


def customer_to_row(customer: Customer) -> dict[str, Any]:
    return asdict(customer)


def customer_from_row(row: Any) -> Customer:
    return Customer(**dict(row._mapping))
