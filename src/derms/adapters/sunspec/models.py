"""SunSpec point maps from the model definitions shipped with pysunspec2, and their codec.

The SunSpec Information Model Specification (v1.2, clauses 4–6) lays a device out as a chain
of models after the ``SunS`` marker: each starts with its ID and length L (registers after
L), then its fixed points, then repeating groups whose count is a point of the parent group
(or, for the older 12x curve models, fills the rest of the model: ``count: 0``). Values are
big-endian registers; a scaled point's value is ``raw * 10**sf`` where ``sf`` names a
``sunssf`` point of the same or an enclosing group (or is a constant). Each type has an
"unimplemented" marker (clause 6.3), decoded as ``None``.

We read the JSON definitions (``sunspec2/models/json/model_<id>.json``) but none of
pysunspec2's Modbus or device code.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

SUNS_MARKER = (0x5375, 0x6E53)
"""'SunS' at the base address (40000, 0 or 50000)."""
END_MODEL_ID = 0xFFFF

_UNIMPLEMENTED: dict[str, int | None] = {
    "int16": 0x8000, "sunssf": 0x8000, "uint16": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF,
    "count": None, "acc16": None, "pad": None,
    "int32": 0x80000000, "uint32": 0xFFFFFFFF, "enum32": 0xFFFFFFFF, "bitfield32": 0xFFFFFFFF,
    "acc32": None, "ipaddr": None,
    "int64": 0x8000000000000000, "uint64": 0xFFFFFFFFFFFFFFFF, "acc64": None,
}  # fmt: skip
_SIGNED = {"int16", "sunssf", "int32", "int64"}


class SunSpecError(Exception):
    """A register image that does not follow the SunSpec layout, or a value that cannot be encoded."""


@dataclass(frozen=True, slots=True)
class PointDef:
    name: str
    type: str
    size: int
    sf: str | int | None = None
    units: str | None = None
    writable: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PointDef:
        return cls(
            name=data["name"], type=data["type"], size=int(data.get("size", 1)), sf=data.get("sf"),
            units=data.get("units"), writable=data.get("access") == "RW",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupDef:
    name: str
    points: tuple[PointDef, ...]
    groups: tuple[GroupDef, ...] = ()
    count: int | str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupDef:
        return cls(
            name=data["name"],
            points=tuple(PointDef.from_json(p) for p in data.get("points", [])),
            groups=tuple(cls.from_json(g) for g in data.get("groups", [])),
            count=data.get("count"),
        )

    @property
    def fixed_size(self) -> int:
        """Registers of this group's own points (without its sub-groups)."""
        return sum(p.size for p in self.points)


@cache
def model_def(model_id: int) -> GroupDef:
    """The definition of SunSpec model ``model_id``; raises KeyError if pysunspec2 has none."""
    try:
        text = (resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json").read_text()
    except FileNotFoundError:
        raise KeyError(f"no SunSpec definition for model {model_id}") from None
    return GroupDef.from_json(json.loads(text)["group"])


@dataclass(frozen=True, slots=True)
class Point:
    """One decoded point: where it is, its definition, raw value and resolved scale factor."""

    path: str
    address: int
    defn: PointDef
    raw: int | float | str | None
    sf: int | None

    @property
    def value(self) -> float | int | str | None:
        """Engineering value (``raw * 10**sf``), or ``None`` if unimplemented. An unimplemented
        scale factor counts as 0, as the SunSpec reference implementation (pysunspec2) reads it."""
        if self.raw is None or isinstance(self.raw, str) or not self.sf:
            return self.raw
        return self.raw * 10.0**self.sf


@dataclass(slots=True)
class ModelBlock:
    """A decoded model instance at ``address`` (the register holding its ID)."""

    model_id: int
    address: int
    length: int
    registers: list[int]
    points: dict[str, Point] = field(default_factory=dict)

    def __getitem__(self, path: str) -> Point:
        return self.points[path]

    def value(self, path: str) -> Any:
        return self.points[path].value

    def encode(self, path: str, value: float | int | str) -> tuple[int, list[int], float | int | str]:
        """Registers that set ``path`` to ``value`` (engineering units): (address, registers,
        value actually delivered after scaling and rounding). Raises SunSpecError if it cannot."""
        point = self.points[path]
        if point.sf and not isinstance(value, str):
            raw: Any = round(value / 10.0**point.sf)
            delivered: float | int | str = raw * 10.0**point.sf
        else:
            raw = round(value) if isinstance(value, float) and point.defn.type != "float32" else value
            delivered = raw
        return point.address, encode_raw(point.defn, raw, path), delivered


def decode_raw(defn: PointDef, regs: list[int]) -> int | float | str | None:
    kind = defn.type
    if kind == "string":
        data = b"".join(r.to_bytes(2, "big") for r in regs)
        text = data.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
        return text or None
    if kind == "float32":
        number = struct.unpack(">f", struct.pack(">HH", *regs))[0]
        return None if math.isnan(number) else number
    if kind == "float64":
        number = struct.unpack(">d", struct.pack(">HHHH", *regs))[0]
        return None if math.isnan(number) else number
    raw = 0
    for r in regs:
        raw = (raw << 16) | r
    if kind in ("ipv6addr", "eui48"):
        return raw
    marker = _UNIMPLEMENTED.get(kind)
    if marker is not None and raw == marker:
        return None
    if kind in _SIGNED and raw >= 1 << (16 * len(regs) - 1):
        raw -= 1 << (16 * len(regs))
    return raw


def encode_raw(defn: PointDef, raw: Any, path: str = "") -> list[int]:
    """Big-endian registers of a raw value of ``defn``'s type, with range checks."""
    name = path or defn.name
    if defn.type == "string":
        data = str(raw).encode("utf-8")
        if len(data) > 2 * defn.size:
            raise SunSpecError(f"{name}: string longer than {2 * defn.size} bytes")
        data = data.ljust(2 * defn.size, b"\0")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if defn.type == "float32":
        return list(struct.unpack(">HH", struct.pack(">f", float(raw))))
    bits = 16 * defn.size
    raw = int(raw)
    signed = defn.type in _SIGNED
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    marker = _UNIMPLEMENTED.get(defn.type)
    if not low <= raw <= high:
        raise SunSpecError(f"{name}: raw value {raw} outside {defn.type} range [{low}, {high}]")
    if marker is not None and (raw & ((1 << bits) - 1)) == marker:
        raise SunSpecError(f"{name}: raw value {raw} is the 'not implemented' marker of {defn.type}")
    raw &= (1 << bits) - 1
    return [(raw >> (16 * (defn.size - 1 - i))) & 0xFFFF for i in range(defn.size)]


def decode_model(address: int, registers: list[int]) -> ModelBlock:
    """Decode one model instance; ``registers`` start with ID and L and hold L + 2 registers."""
    if len(registers) < 2:
        raise SunSpecError(f"model at {address}: truncated header")
    model_id, length = registers[0], registers[1]
    if len(registers) != length + 2:
        raise SunSpecError(
            f"model {model_id} at {address}: {len(registers)} registers, header says {length + 2}"
        )
    block = ModelBlock(model_id, address, length, list(registers))
    defn = model_def(model_id)
    end = _decode_group(block, defn, "", 0, {}, length + 2)
    if end > length + 2:
        raise SunSpecError(
            f"model {model_id} at {address}: definition needs {end} registers, L gives {length + 2}"
        )
    _resolve_scale_factors(block)
    return block


def _decode_group(
    block: ModelBlock, group: GroupDef, prefix: str, offset: int, scope: dict[str, Any], limit: int
) -> int:
    local: dict[str, Any] = dict(scope)
    for point in group.points:
        if offset + point.size > limit:
            raise SunSpecError(f"model {block.model_id}: point {prefix}{point.name} past the model end")
        raw = (
            None if point.type == "pad" else decode_raw(point, block.registers[offset : offset + point.size])
        )
        path = prefix + point.name
        block.points[path] = Point(path, block.address + offset, point, raw, None)
        local[point.name] = raw
        offset += point.size
    for sub in group.groups:
        if sub.count is None:
            count = 1
        elif isinstance(sub.count, int) and sub.count > 0:
            count = sub.count
        elif isinstance(sub.count, int):  # 0: repeat to the end of the model
            size = _group_size(sub, local)
            count = (limit - offset) // size if size else 0
        else:
            count = int(local.get(sub.count) or 0)
        for index in range(count):
            name = f"{prefix}{sub.name}" if sub.count is None else f"{prefix}{sub.name}[{index}]"
            offset = _decode_group(block, sub, name + ".", offset, local, limit)
    return offset


def _group_size(group: GroupDef, scope: dict[str, Any]) -> int:
    size = group.fixed_size
    for sub in group.groups:
        count = (
            1
            if sub.count is None
            else sub.count
            if isinstance(sub.count, int)
            else int(scope.get(sub.count) or 0)
        )
        size += count * _group_size(sub, scope)
    return size


def _resolve_scale_factors(block: ModelBlock) -> None:
    """Attach to each scaled point the sunssf found in its own group or the nearest enclosing one."""
    for path, point in block.points.items():
        sf = point.defn.sf
        if sf is None:
            continue
        if isinstance(sf, int) or (isinstance(sf, str) and sf.lstrip("-").isdigit()):
            value: int | None = int(sf)
        else:
            value = None
            parts = path.split(".")[:-1]
            for depth in range(len(parts), -1, -1):
                candidate = ".".join([*parts[:depth], sf])
                if candidate in block.points:
                    raw = block.points[candidate].raw
                    value = int(raw) if isinstance(raw, int) else None
                    break
        block.points[path] = Point(path, point.address, point.defn, point.raw, value)
