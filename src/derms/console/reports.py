"""Compliance reports: event history, delivery against target per event, and the command
audit trail, as rows for the page, CSV, and PDF (reportlab's platypus tables)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from derms.console.monitor import ConsoleMonitor
from derms.runtime import Runtime
from derms.store import audit as audit_store

AUDIT_COLUMNS = ("seq", "at", "actor", "tenant_id", "action", "target", "detail", "hash")
EVENT_COLUMNS = (
    "kind",
    "id",
    "feeder_id",
    "started_at",
    "target_w",
    "delivered_w",
    "delivery_ratio",
    "detail",
)


def audit_rows(
    rt: Runtime, tenant_id: str | None, prefixes: Sequence[str] = ("command.", "console.")
) -> list[dict[str, Any]]:
    """The command audit trail (API commands and console actions), oldest first."""
    rows: list[dict[str, Any]] = []
    with rt.engine.connect() as conn:
        for prefix in prefixes:
            for e in audit_store.entries(conn, tenant_id=tenant_id, action_prefix=prefix, limit=100_000):
                rows.append(
                    {
                        "seq": e.seq,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "tenant_id": e.tenant_id or "",
                        "action": e.action,
                        "target": e.target,
                        "detail": e.detail,
                        "hash": e.hash,
                    }
                )
    return sorted(rows, key=lambda r: r["seq"])


def event_rows(monitor: ConsoleMonitor) -> list[dict[str, Any]]:
    """Event history: mass drops and hand dispatches (with delivery against target)."""
    rows: list[dict[str, Any]] = []
    for inc in monitor.incidents:
        rows.append(
            {
                "kind": "mass_drop",
                "id": str(inc.id),
                "feeder_id": "",
                "started_at": inc.started_at.isoformat(),
                "target_w": "",
                "delivered_w": "",
                "delivery_ratio": "",
                "detail": f"{len(inc.rows)} devices offline, {len(inc.recovered)} recovered, "
                f"{inc.lost_up_w.sum() / 1e3:.1f} kW up-flexibility lost",
            }
        )
    for d in monitor.dispatches:
        info = d.as_dict()
        rows.append(
            {
                "kind": f"dispatch_{d.direction}",
                "id": d.id,
                "feeder_id": d.feeder_id,
                "started_at": info["started_at"],
                "target_w": round(d.target_w, 1),
                "delivered_w": round(d.delivered_w, 1),
                "delivery_ratio": round(info["delivery_ratio"], 3),
                "detail": f"by {d.actor}: {len(d.command_ids)} commands, {d.refused} refused",
            }
        )
    for a in monitor.alarms:
        rows.append(
            {
                "kind": f"alarm_{a.kind}",
                "id": str(a.id),
                "feeder_id": "",
                "started_at": a.raised_at.isoformat(),
                "target_w": "",
                "delivered_w": "",
                "delivery_ratio": "",
                "detail": a.message + (f" (acknowledged by {a.acked_by})" if a.acked_by else ""),
            }
        )
    return sorted(rows, key=lambda r: r["started_at"])


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return out.getvalue()


def to_pdf(title: str, subtitle: str, rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """A landscape A4 PDF with one table; long cells are wrapped."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=6.5, leading=8)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), title=title, leftMargin=24, rightMargin=24)
    data = [[Paragraph(f"<b>{c}</b>", small) for c in columns]]
    for row in rows:
        data.append([Paragraph(_escape(str(row.get(c, "")))[:600], small) for c in columns])
    table = Table(data, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    doc.build([Paragraph(title, styles["Title"]), Paragraph(subtitle, styles["Normal"]), Spacer(1, 8), table])
    return buf.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
