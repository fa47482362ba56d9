"""SunSpec translation on a device image: which models, what scaling, which refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from derms.adapters.sunspec import SunSpecWrite
from derms.bridge.sunspec import SunSpecTranslator
from derms.core.controls import ActivePowerLimit, ChargeDischarge, FixedPowerFactor, GenerationLimit
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation
from derms.sim.protocols.sunspec import battery_inverter, build_image, pv_inverter

T0 = datetime(2026, 6, 1, tzinfo=UTC)
DER = Der(id="d", site_id="s", kind=DerKind.HOME_BATTERY, protocol="sunspec", address="127.0.0.1:502",
          tenant_id="t", capabilities=Capabilities(w_max=5000, w_max_consume=5000))  # fmt: skip


def maps(models: list) -> dict:  # type: ignore[type-arg]
    _, blocks = build_image(models)
    return {model_id: [block] for model_id, block in blocks.items()}


def translate(models: dict, control: object) -> tuple[SunSpecWrite, tuple]:  # type: ignore[type-arg]
    command = SunSpecTranslator(lambda _: models).translate(
        DER,
        Setpoint("d", control, T0, T0 + timedelta(hours=1)),
        "c",  # type: ignore[arg-type]
    )
    return command.payload, command.losses


def test_1547_models_are_preferred() -> None:
    models = maps(battery_inverter("B")[1])
    payload, losses = translate(models, FixedPowerFactor(pf=0.95, absorbing=False))
    assert [(w.model_id, w.path, w.value) for w in payload.writes] == [
        (704, "PFWInj.PF", 0.95), (704, "PFWInj.Ext", 0), (704, "PFWInjEna", 1)]  # fmt: skip
    assert losses == ()


def test_legacy_models_when_the_device_has_no_704() -> None:
    models = {k: v for k, v in maps(pv_inverter("P")[1]).items() if k not in (704, 705)}
    payload, losses = translate(models, ActivePowerLimit(pct=42.26))
    assert [(w.model_id, w.path) for w in payload.writes] == [(123, "WMaxLimPct"), (123, "WMaxLim_Ena")]
    (loss,) = losses  # 123 WMaxLimPct_SF = -1
    assert loss.delivered == pytest.approx(42.3)
    payload, _ = translate(models, FixedPowerFactor(pf=0.9, absorbing=True))
    assert payload.writes[0].value == -0.9


def test_generation_limit_uses_the_device_wmax_and_refuses_beyond_it() -> None:
    models = maps(pv_inverter("P", w_rated=8000)[1])
    payload, _ = translate(models, GenerationLimit(w=2000))
    assert payload.writes[0].value == pytest.approx(25.0)
    with pytest.raises(LimitViolation, match="exceeds WMax 8000"):
        translate(models, GenerationLimit(w=9000))


def test_storage_needs_model_124() -> None:
    with pytest.raises(LimitViolation, match="models \\[124\\]"):
        translate(maps(pv_inverter("P")[1]), ChargeDischarge(w=100))
    payload, _ = translate(maps(battery_inverter("B")[1]), ChargeDischarge(w=0))
    assert [(w.path, w.value) for w in payload.writes] == [("StorCtl_Mod", 0)]
