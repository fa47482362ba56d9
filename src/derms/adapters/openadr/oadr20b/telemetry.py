"""2.0b report data points → derms :class:`Telemetry`.

Real power (``power:powerReal``) of report types usage, demand and reading is load, positive
when consuming (2.0b 9.2, EMIX power); derms counts consumption negative, so ``p_w = -value``.
``power:powerReactive`` maps to ``q_var`` the same way, ``power:voltage`` to ``v_v``,
``oadr:frequency`` to ``f_hz``. ``x-resourceStatus`` points set ``available``. Values are
scaled by their ``siScaleCode``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from derms.adapters.openadr.oadr20b.model import ReportDescription, ReportValue
from derms.adapters.openadr.oadr20b.vocabulary import SI_SCALE, ReportType
from derms.core.telemetry import OperationalStatus, Telemetry

_LOAD_TYPES = frozenset({ReportType.USAGE, ReportType.DEMAND, ReportType.READING, ReportType.AVG_DEMAND})


def to_telemetry(
    points: Sequence[tuple[ReportDescription, ReportValue]], der_for: Callable[[str | None], str | None]
) -> list[Telemetry]:
    """One :class:`Telemetry` per (DER, timestamp); points of unknown resources are skipped."""
    rows: dict[tuple[str, object], dict[str, object]] = {}
    for description, value in points:
        der_id = der_for(description.resource_id)
        if der_id is None:
            continue
        row = rows.setdefault((der_id, value.dtstart), {})
        item = description.item
        scaled = value.value * (SI_SCALE.get(item.scale, 1.0) if item is not None else 1.0)
        element = item.element if item is not None else ""
        if description.report_type is ReportType.X_RESOURCE_STATUS:
            row["available"] = bool(value.value)
            row["status"] = OperationalStatus.ON if value.value else OperationalStatus.OFF
        elif description.report_type in _LOAD_TYPES:
            if element == "power:powerReal":
                row["p_w"] = -scaled
            elif element == "power:powerReactive":
                row["q_var"] = -scaled
            elif element == "power:voltage":
                row["v_v"] = scaled
            elif element == "oadr:frequency":
                row["f_hz"] = scaled
    return [Telemetry(der_id=der_id, ts=ts, **fields) for (der_id, ts), fields in rows.items() if fields]  # type: ignore[arg-type]
