"""From an optimizer solution to a ``derms.core.DispatchPlan`` of explained setpoints."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from derms.core.controls import (
    ActivePowerTarget,
    ChargingLimit,
    Control,
    FixedReactivePower,
    GenerationLimit,
    LoadLimit,
    LoadUp,
)
from derms.core.der import DerKind
from derms.core.dispatch import DispatchPlan, Reason, Setpoint
from derms.orchestration.inputs import KINDS
from derms.orchestration.problem import Problem
from derms.orchestration.solution import Solution


def active_control(kind: DerKind, p_w: float, base_w: float) -> Control:
    """The control that carries an active-power setpoint for a device kind.

    Storage and C&I load take a net target; PV a generation cap (curtailment); an EV charger a
    charging limit; thermostats and water heaters a load cap to shed, or load-up to consume more.
    """
    if kind.is_generation:
        return GenerationLimit(w=max(p_w, 0.0))
    if kind is DerKind.EV_CHARGER:
        return ChargingLimit(limit=max(-p_w, 0.0), unit="W")
    if kind in (DerKind.THERMOSTAT, DerKind.WATER_HEATER):
        return LoadLimit(w=max(-p_w, 0.0)) if p_w >= base_w else LoadUp(level=1)
    return ActivePowerTarget(w=p_w)


def to_plan(
    problem: Problem,
    solution: Solution,
    kind: np.ndarray,
    *,
    plan_id: str,
    created_at: datetime,
    start: datetime,
    inputs_digest: str,
    tol_w: float = 1.0,
) -> DispatchPlan:
    """Setpoints for the first interval of every DER whose dispatch differs from its baseline.

    ``kind`` holds the DERs' kind codes (``FleetInput.kind``). Active power becomes the control
    of :func:`active_control` and a reactive change a :class:`FixedReactivePower`; each carries
    the :class:`Reason` of the solution's explanation.
    """
    f = problem.flex
    end = start + timedelta(seconds=f.dt_s)
    dp = solution.p_w[:, 0] - f.base[:, 0]
    dq = solution.q_var - f.q_base
    why = solution.why
    setpoints: list[Setpoint] = []
    for i in np.flatnonzero((np.abs(dp) > tol_w) | (np.abs(dq) > tol_w)):
        reason = Reason(why.objective(i), why.binding(i), why.detail(i))
        der_id = problem.der_ids[i]
        if abs(dp[i]) > tol_w:
            control = active_control(KINDS[int(kind[i])], float(solution.p_w[i, 0]), float(f.base[i, 0]))
            setpoints.append(Setpoint(der_id, control, start, end, reason))
        if abs(dq[i]) > tol_w:
            q_reason = Reason(why.objective(i), why.binding(i), "reactive power for voltage support")
            setpoints.append(
                Setpoint(der_id, FixedReactivePower(var=float(solution.q_var[i])), start, end, q_reason)
            )
    return DispatchPlan(
        id=plan_id,
        created_at=created_at,
        setpoints=tuple(setpoints),
        objective_ids=tuple(t.objective_id for t in problem.targets),
        solver=f"{solution.solver} ({solution.status})",
        inputs_digest=inputs_digest,
    )
