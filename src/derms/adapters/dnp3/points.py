"""The IEEE 1815.2 (MESA-DER) point map of a plant controller.

The point list comes from the MESA-DER PICS profile shipped inside dnp3py
(``dnp3/mesa/data/profiles/full.json``, generated from the IEEE 1815.2 spreadsheet) and is
loaded from the installed package, never copied. Each analog point carries a multiplier and
offset that are profile metadata, not transmitted (IEEE 1815.2 clause 5.5; dnp3py
``dnp3.mesa.scaling``)::

    engineering = transmission * multiplier + offset

so an analog output carries an integer transmission value and a setpoint is quantised to
the point's multiplier: 55.55 % on ``DWMX.WLimPct`` (multiplier 0.1) is sent as 556.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from dnp3.mesa.scaling import engineering_to_transmission

PROFILE_PACKAGE = "dnp3.mesa"


class PointKind(StrEnum):
    BINARY_INPUT = "BI"
    BINARY_OUTPUT = "BO"
    ANALOG_INPUT = "AI"
    ANALOG_OUTPUT = "AO"


@dataclass(frozen=True, slots=True)
class Point:
    """One point of the map: its IEC 61850 name, index, scaling and unit."""

    kind: PointKind
    index: int
    uid: str
    name: str
    units: str = ""
    multiplier: float = 1.0
    offset: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    associated: str | None = None
    """The status point an output mirrors to, e.g. ``"AI148"`` for AO 87."""

    def to_engineering(self, transmission: float) -> float:
        return transmission * self.multiplier + self.offset

    def to_transmission(self, engineering: float) -> int:
        """Transmission integer for ``engineering`` (raises ``ValueError`` when it cannot be
        scaled or falls outside the profile's minimum/maximum)."""
        raw = engineering_to_transmission(engineering, self.multiplier, self.offset)
        if (self.minimum is not None and raw < self.minimum) or (
            self.maximum is not None and raw > self.maximum
        ):
            low = self.to_engineering(self.minimum) if self.minimum is not None else "-inf"
            high = self.to_engineering(self.maximum) if self.maximum is not None else "inf"
            raise ValueError(f"{self.uid} {engineering} {self.units} outside [{low}, {high}]")
        return raw


class PointMap:
    """Points of one MESA-DER profile, by kind and IEC 61850 name or index."""

    def __init__(self, points: list[Point], source: str) -> None:
        self.source = source
        self._by_uid: dict[tuple[PointKind, str], Point] = {}
        self._by_index: dict[tuple[PointKind, int], Point] = {}
        for point in points:
            self._by_uid.setdefault((point.kind, point.uid), point)
            self._by_index[(point.kind, point.index)] = point

    def __len__(self) -> int:
        return len(self._by_index)

    def get(self, kind: PointKind, uid: str) -> Point:
        try:
            return self._by_uid[(kind, uid)]
        except KeyError:
            raise KeyError(f"{kind}:{uid} is not in the point map ({self.source})") from None

    def at(self, kind: PointKind, index: int) -> Point | None:
        return self._by_index.get((kind, index))

    @classmethod
    def from_profile(cls, data: dict[str, Any], source: str) -> PointMap:
        """Build from a MESA PICS profile document (top-level ``AI``/``AO``/``BI``/``BO``)."""
        points: list[Point] = []
        for kind in PointKind:
            for raw in data.get(kind.value, {}).get("points", []):
                points.append(
                    Point(
                        kind=kind,
                        index=int(raw["point_index"]),
                        uid=str(raw.get("iec_61850_uid") or f"{kind.value}{raw['point_index']}"),
                        name=str(raw.get("name", "")),
                        units=str(raw.get("units") or ""),
                        multiplier=float(raw.get("multiplier", 1.0)),
                        offset=float(raw.get("offset", 0.0)),
                        minimum=raw.get("minimum"),
                        maximum=raw.get("maximum"),
                        associated=raw.get("assoc_ai") or raw.get("assoc_bi"),
                    )
                )
        return cls(points, source)

    @classmethod
    def load(cls, path: Path) -> PointMap:
        return cls.from_profile(json.loads(path.read_text()), str(path))


@cache
def mesa_der_map(profile: str = "full") -> PointMap:
    """The MESA-DER point map bundled with dnp3py (``full``, ``mandatory_1815``, ...)."""
    resource = files(PROFILE_PACKAGE) / "data" / "profiles" / f"{profile}.json"
    return PointMap.from_profile(json.loads(resource.read_text()), f"dnp3py:{profile}.json")


# System-level plant controller points used by derms (IEEE 1815.2 tables, IEC 61850 names).
AI_ACTIVE_POWER = "SYS.MMXU.TotW"
AI_REACTIVE_POWER = "SYS.MMXU.TotVAr"
AI_FREQUENCY = "SYS.MMXU.Hz"
AI_VOLTAGE_A = "SYS.MMXU.PhV.phsA.mag"
AI_SOC = "DSTO.SocPct"
AI_WMAX = "DGEN.WMax"
AO_WLIM_PCT = "DWMX.WLimPct"
AO_WLIM_W = "DWMX.WLimSpt"
AO_CHARGE_DISCHARGE_PCT = "DWGC.GnWPctSpt"
AO_CHARGE_DISCHARGE_W = "DWGC.GnWSpt"
AO_AGC_W = "DAGC.WSpt"
AO_VAR_TARGET = "DVAR.DVar.Tgt"
AO_PF_GEN = "DFPF.PFGnTgt"
BO_WLIM_ENABLE = "DWMX.Mod"
BO_CHARGE_DISCHARGE_ENABLE = "DWGC.Mod"
BO_AGC_ENABLE = "DAGC.Mod"
BO_VAR_ENABLE = "DVAR.Mod"
BO_PF_ENABLE = "DFPF.Mod"
BO_PF_ABSORBING = "DFPF.PFGnExtSet"
BO_CONNECT = "CSWI.Pos"
