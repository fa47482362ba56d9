"""Write-through persistence of the 2.0b VTN (:mod:`.tables`); each call is one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import Engine, delete, insert, select, update

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import Event, Opt, Registration
from derms.adapters.openadr.oadr20b.vocabulary import OptType
from derms.adapters.openadr.oadr20b.vtn import OptState, VenProfile, VenRecord
from derms.adapters.openadr.oadr20b.xmlutil import parse_xml
from derms.adapters.openadr.tables import records


def _xml(node: etree._Element) -> str:
    return etree.tostring(node, encoding="unicode")


class VtnStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        match = (records.c.kind == kind) & (records.c.id == key)
        with self.engine.begin() as conn:
            if not conn.execute(update(records).where(match).values(data=data)).rowcount:
                conn.execute(insert(records).values(kind=kind, id=key, data=data))

    def drop(self, kind: str, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(records).where((records.c.kind == kind) & (records.c.id == key)))

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for kind, key, data in conn.execute(select(records.c.kind, records.c.id, records.c.data)):
                out.setdefault(kind, {})[key] = data
        return out

    # ------------------------------------------------------------------ typed helpers

    def save_ven(self, ven: VenRecord) -> None:
        reg, profile = ven.registration, ven.profile
        self.put(
            "ven",
            ven.ven_id,
            {
                "registration_id": ven.registration_id,
                "registered_at": ven.registered_at.isoformat(),
                "registration": {
                    "ven_name": reg.ven_name,
                    "profile_name": reg.profile_name,
                    "transport_name": reg.transport_name,
                    "report_only": reg.report_only,
                    "xml_signature": reg.xml_signature,
                    "http_pull_model": reg.http_pull_model,
                    "transport_address": reg.transport_address,
                },
                "profile": {
                    "ven_name": profile.ven_name,
                    "fingerprint": profile.fingerprint,
                    "ven_id": profile.ven_id,
                    "group_ids": list(profile.group_ids),
                    "party_id": profile.party_id,
                    "resource_ids": list(profile.resource_ids),
                },
                "reports": [_xml(codec.report(r)) for r in ven.reports.values()],
                "report_requests": [_xml(codec.report_request(r)) for r in ven.report_requests.values()],
            },
        )

    def save_event(self, event: Event) -> None:
        self.put("event", event.event_id, {"xml": _xml(codec.oadr_event(event, event.status))})

    def save_opts(self, event_id: str, ven_id: str, history: list[OptState]) -> None:
        self.put(
            "opt",
            f"{event_id}|{ven_id}",
            {
                "history": [
                    {
                        "opt_type": h.opt_type.value,
                        "mod": h.modification_number,
                        "at": h.at.isoformat(),
                        "source": h.source,
                    }
                    for h in history
                ]
            },
        )

    def save_schedule(self, opt: Opt) -> None:
        self.put("optsched", opt.opt_id, {"xml": _xml(codec.create_opt(opt, "stored"))})


def restore(
    data: dict[str, dict[str, dict[str, Any]]],
) -> tuple[dict[str, VenRecord], dict[str, Event], dict[tuple[str, str], list[OptState]], dict[str, Opt]]:
    """Rebuild the VTN's working set from :meth:`VtnStore.load`."""
    vens = {}
    for ven_id, d in data.get("ven", {}).items():
        p = d["profile"]
        record = VenRecord(
            ven_id=ven_id,
            registration_id=d["registration_id"],
            registration=Registration(
                **d["registration"], ven_id=ven_id, registration_id=d["registration_id"]
            ),
            profile=VenProfile(
                p["ven_name"],
                p["fingerprint"],
                p["ven_id"],
                tuple(p["group_ids"]),
                p["party_id"],
                tuple(p["resource_ids"]),
            ),
            registered_at=datetime.fromisoformat(d["registered_at"]),
        )
        for text in d["reports"]:
            report = codec.decode_report(parse_xml(text.encode()))
            record.reports[report.report_specifier_id] = report
        for text in d["report_requests"]:
            rr = codec.decode_report_request(parse_xml(text.encode()))
            record.report_requests[rr.report_request_id] = rr
        vens[ven_id] = record
    events = {
        key: codec.decode_event(parse_xml(d["xml"].encode())) for key, d in data.get("event", {}).items()
    }
    opts = {}
    for key, d in data.get("opt", {}).items():
        event_id, _, ven_id = key.partition("|")
        opts[(event_id, ven_id)] = [
            OptState(OptType(h["opt_type"]), h["mod"], datetime.fromisoformat(h["at"]), h["source"])
            for h in d["history"]
        ]
    schedules = {
        key: codec.decode_opt(parse_xml(d["xml"].encode())) for key, d in data.get("optsched", {}).items()
    }
    return vens, events, opts, schedules
