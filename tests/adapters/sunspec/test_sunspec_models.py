"""The SunSpec codec on every model definition pysunspec2 ships."""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from derms.adapters.sunspec.models import (
    PointDef,
    SunSpecError,
    decode_model,
    decode_raw,
    encode_raw,
)
from derms.sim.protocols.sunspec.image import build_image, build_model

ALL_MODELS = sorted(
    int(p.name.removeprefix("model_").removesuffix(".json"))
    for p in (resources.files("sunspec2") / "models" / "json").iterdir()
    if p.name.startswith("model_")
)


def test_every_shipped_definition_loads() -> None:
    assert len(ALL_MODELS) >= 100
    for model_id in (1, 101, 102, 103, *range(120, 127), *range(701, 714), 802):
        assert model_id in ALL_MODELS


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_unimplemented_image_decodes_to_none(model_id: int) -> None:
    registers = build_model(model_id, {})
    block = decode_model(40002, registers)
    assert block.model_id == model_id and block.length == len(registers) - 2
    assert all(p.value is None for path, p in block.points.items() if path not in ("ID", "L") and p.defn.type
               not in ("pad", "count", "acc16", "acc32", "acc64", "ipaddr", "ipv6addr", "eui48"))  # fmt: skip


def test_scale_factors_resolve_to_enclosing_groups() -> None:
    raw = {"NPt": 2, "NCrv": 1, "V_SF": -2, "DeptRef_SF": -1, "Crv[0].Pt[0].V": 9200, "Crv[0].Pt[0].Var": 300,
           "Crv[0].Pt[1].V": 10800, "Crv[0].Pt[1].Var": -300}  # fmt: skip
    _, blocks = build_image([(705, raw)])
    block = blocks[705]
    assert block.value("Crv[0].Pt[0].V") == pytest.approx(92.0)
    assert block.value("Crv[0].Pt[1].Var") == pytest.approx(-30.0)
    address, registers, delivered = block.encode("Crv[0].Pt[0].V", 91.234)
    assert registers == [9123] and delivered == pytest.approx(91.23)
    assert address == block["Crv[0].Pt[0].V"].address


def test_truncated_or_inconsistent_models_are_refused() -> None:
    registers = build_model(701, {})
    with pytest.raises(SunSpecError, match="header says"):
        decode_model(0, registers[:-3])
    with pytest.raises(SunSpecError, match="truncated"):
        decode_model(0, [701])
    short = [704, 3, 0, 0, 0]
    with pytest.raises(SunSpecError, match="past the model end"):
        decode_model(0, short)


def test_encoding_refuses_out_of_range_and_marker_values() -> None:
    with pytest.raises(SunSpecError, match="outside uint16"):
        encode_raw(PointDef("WMaxLimPct", "uint16", 1), 70000)
    with pytest.raises(SunSpecError, match="not implemented"):
        encode_raw(PointDef("W", "int16", 1), -32768)
    with pytest.raises(SunSpecError, match="longer"):
        encode_raw(PointDef("SN", "string", 2), "too long")


@given(st.integers(-(2**31) + 1, 2**31 - 1))
def test_int32_round_trip(value: int) -> None:
    defn = PointDef("WSet", "int32", 2)
    assert decode_raw(defn, encode_raw(defn, value)) == value


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=16))
def test_string_round_trip(text: str) -> None:
    defn = PointDef("Mn", "string", 8)
    assert decode_raw(defn, encode_raw(defn, text)) == text
