"""Build a SunSpec register image from the pysunspec2 model definitions.

Layout per the SunSpec Information Model Specification (clause 5): ``SunS`` at the base
address, each model as ID, L and its points (repeating groups sized by their count points),
then the end model 0xFFFF/0. Points not given are left unimplemented (clause 6.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derms.adapters.sunspec.models import (
    _UNIMPLEMENTED,
    END_MODEL_ID,
    SUNS_MARKER,
    GroupDef,
    ModelBlock,
    PointDef,
    decode_model,
    encode_raw,
    model_def,
)

type RawValues = Mapping[str, int | str]


def _unimplemented(defn: PointDef) -> list[int]:
    if defn.type == "string":
        return [0] * defn.size
    if defn.type == "float32":
        return [0x7FC0, 0]
    marker = _UNIMPLEMENTED.get(defn.type)
    raw = 0 if marker is None else marker
    return [(raw >> (16 * (defn.size - 1 - i))) & 0xFFFF for i in range(defn.size)]


def _group(group: GroupDef, prefix: str, raw: RawValues, scope: dict[str, Any], out: list[int]) -> None:
    local = dict(scope)
    for point in group.points:
        path = prefix + point.name
        if path in raw and point.name not in ("ID", "L"):
            out.extend(encode_raw(point, raw[path], path))
            local[point.name] = raw[path]
        elif point.name in ("ID", "L"):
            out.extend([0])  # patched once the length is known
        else:
            out.extend(_unimplemented(point))
    for sub in group.groups:
        if sub.count is None:
            _group(sub, f"{prefix}{sub.name}.", raw, local, out)
            continue
        count = (
            sub.count
            if isinstance(sub.count, int) and sub.count > 0
            else int(local.get(sub.count if isinstance(sub.count, str) else "NCrv", 0))
        )
        for index in range(count):
            _group(sub, f"{prefix}{sub.name}[{index}].", raw, local, out)


def build_model(model_id: int, raw: RawValues) -> list[int]:
    """Registers (ID, L, points) of one model instance from raw (unscaled) point values."""
    out: list[int] = []
    _group(model_def(model_id), "", raw, {}, out)
    out[0], out[1] = model_id, len(out) - 2
    return out


def build_image(
    models: list[tuple[int, RawValues]], base: int = 40000
) -> tuple[list[int], dict[int, ModelBlock]]:
    """Registers from ``base`` for the given models, and each model decoded (for its point addresses)."""
    registers = list(SUNS_MARKER)
    blocks: dict[int, ModelBlock] = {}
    for model_id, raw in models:
        address = base + len(registers)
        model = build_model(model_id, raw)
        blocks.setdefault(model_id, decode_model(address, model))
        registers.extend(model)
    registers.extend([END_MODEL_ID, 0])
    return registers, blocks
