"""The native command the bridge produces for 2030.5: a DERControlBase, optionally with a curve."""

from __future__ import annotations

from dataclasses import dataclass

from envoy_schema.server.schema.sep2.der import DERControlBase


@dataclass(frozen=True, slots=True)
class CurveSpec:
    """A DERCurve to publish with the control; ``mode`` is the opMod* field that links to it."""

    mode: str
    curve_type: int
    points: tuple[tuple[float, float], ...]
    y_ref_type: int
    x_multiplier: int = 0
    y_multiplier: int = 0
    excitation: tuple[bool, ...] | None = None
    open_loop_tms: int | None = None


@dataclass(frozen=True, slots=True)
class DerControlCommand:
    """Payload of a 2030.5 :class:`~derms.adapters.base.NativeCommand`."""

    base: DERControlBase
    curve: CurveSpec | None = None
    randomize_start: int | None = None
    randomize_duration: int | None = None
