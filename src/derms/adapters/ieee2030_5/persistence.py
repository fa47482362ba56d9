"""Write-through persistence of repository records (``tables.records``), one query per call."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select, update

from derms.adapters.ieee2030_5.codec import KINDS, Record, decode, encode
from derms.adapters.ieee2030_5.tables import records

LOAD_ORDER = ("end_device", "program", "control", "curve", "mup", "response", "log_event", "subscription")


def _edev_id(record: Record) -> int | None:
    if KINDS[type(record)] == "end_device":
        return record.id
    return getattr(record, "edev_id", None)


class Persistence:
    """Saves and loads records; each call is its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, record: Record) -> None:
        kind = KINDS[type(record)]
        values = {
            "tenant_id": getattr(record, "tenant_id", None),
            "edev_id": _edev_id(record),
            "data": encode(record),
        }
        key = (records.c.kind == kind) & (records.c.id == record.id)
        with self.engine.begin() as conn:
            if not conn.execute(update(records).where(key).values(**values)).rowcount:
                conn.execute(insert(records).values(kind=kind, id=record.id, **values))

    def delete(self, record: Record) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(records).where((records.c.kind == KINDS[type(record)]) & (records.c.id == record.id))
            )

    def load(self) -> list[Record]:
        """Every stored record, end devices first, then in the order they reference each other."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(records.c.kind, records.c.data).order_by(records.c.id)).all()
        rank = {kind: i for i, kind in enumerate(LOAD_ORDER)}
        return [decode(kind, data) for kind, data in sorted(rows, key=lambda r: rank[r.kind])]
