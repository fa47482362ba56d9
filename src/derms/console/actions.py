"""Operator interventions. Each checks the caller's scope, acts through the runtime (the one
path to a device is :meth:`Runtime.send_control`), and appends to the audit log in the same
step; refusals are audited too.

Cancelling a command supersedes it: the same control is re-sent for one second, so the
adapter reports the original SUPERSEDED and the device returns to its default behaviour
when the one-second command completes (every adapter in derms keeps one command per device
control slot).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from derms.api.audit import audit
from derms.api.auth import Forbidden, Principal
from derms.console.monitor import ConsoleMonitor, DispatchEvent
from derms.core.controls import (
    ActivePowerTarget,
    Control,
    GenerationLimit,
    LoadLimit,
    LoadShed,
    LoadUp,
    control_from_dict,
    control_to_dict,
)
from derms.core.der import DerKind
from derms.core.dispatch import Reason
from derms.core.errors import LimitViolation, NotFound, ValidationFailed
from derms.core.events import TOPOLOGY
from derms.orchestration.tables import commands as orch_commands
from derms.runtime import Runtime
from derms.store import audit as audit_store
from derms.store import registry as reg
from derms.store.schema import ders, sites

KINDS = list(DerKind)


async def override(
    rt: Runtime,
    monitor: ConsoleMonitor,
    principal: Principal,
    der_id: str,
    control_data: dict[str, Any],
    duration_s: float,
    reason: str,
    *,
    action: str = "console.override",
    event_id: str | None = None,
) -> str:
    """Send one control to one DER by hand; returns the command id."""
    try:
        control = control_from_dict(control_data)
    except ValueError as exc:
        raise ValidationFailed([str(exc)]) from exc
    if not 0 < duration_s <= 86_400:
        raise ValidationFailed(["duration_s must be within (0, 86400]"])
    with rt.engine.connect() as conn:
        der = reg.get_der(conn, der_id, scope=principal.scope)
    detail: dict[str, Any] = {"control": control_to_dict(control), "duration_s": duration_s, "reason": reason}
    try:
        command = await rt.send_control(
            der, control, duration=timedelta(seconds=duration_s), reason=Reason(event_id, "operator", reason)
        )
    except LimitViolation as exc:
        with rt.engine.begin() as conn:
            audit(
                conn,
                rt.clock,
                principal,
                f"{action}.refused",
                f"der/{der_id}",
                {**detail, "error": exc.reason},
            )
        raise
    monitor.note_command(
        command.command_id, der_id, control_to_dict(control), f"operator:{principal.username}", event_id
    )
    with rt.engine.begin() as conn:
        audit(
            conn, rt.clock, principal, action, f"der/{der_id}", {**detail, "command_id": command.command_id}
        )
    return command.command_id


def _sent_control(rt: Runtime, monitor: ConsoleMonitor, command_id: str) -> tuple[str, dict[str, Any]]:
    """The DER and control of a command: the console's own record, the orchestrator's
    dispatch table, or the API's ``command.send`` audit entry."""
    if command_id in monitor.sent:
        return monitor.sent[command_id]
    with rt.engine.connect() as conn:
        planned = conn.execute(
            select(orch_commands.c.der_id, orch_commands.c.control).where(orch_commands.c.id == command_id)
        ).first()
        if planned is not None:
            return planned.der_id, dict(planned.control)
        for entry in reversed(audit_store.entries(conn, limit=100_000)):
            if entry.detail.get("command_id") == command_id and "control" in entry.detail:
                return entry.target.removeprefix("der/"), entry.detail["control"]
    raise NotFound("command", command_id)


async def cancel(rt: Runtime, monitor: ConsoleMonitor, principal: Principal, command_id: str) -> str:
    """Cancel a live command by superseding it with a one-second command on the same slot."""
    rec = monitor.commands.get(command_id)
    if rec is not None and rec.state not in ("sent", "acknowledged", "active"):
        raise ValidationFailed([f"command {command_id} is already {rec.state}"])
    der_id, control = _sent_control(rt, monitor, command_id)
    return await override(
        rt, monitor, principal, der_id, control, 1.0, f"cancel {command_id}", action="console.cancel"
    )


def _control_for(kind: DerKind, p_w: float, share_w: float, up: bool) -> Control | None:
    """The control that moves one DER by ``share_w`` up (more injection / less load) or down."""
    if kind in (DerKind.HOME_BATTERY, DerKind.UTILITY_BATTERY, DerKind.CI_LOAD):
        return ActivePowerTarget(p_w + share_w if up else p_w - share_w)
    if kind == DerKind.EV_CHARGER:
        return LoadLimit(max(0.0, -(p_w + share_w))) if up else None
    if kind in (DerKind.THERMOSTAT, DerKind.WATER_HEATER):
        return LoadShed(1) if up else LoadUp(1)
    if kind in (DerKind.PV_INVERTER, DerKind.UTILITY_PV):
        return None if up else GenerationLimit(max(0.0, p_w - share_w))
    return None


async def dispatch_feeder(
    rt: Runtime,
    monitor: ConsoleMonitor,
    principal: Principal,
    feeder_id: str,
    target_w: float,
    direction: str,
    duration_s: float,
    kinds: list[str] | None = None,
) -> DispatchEvent:
    """Dispatch a feeder (or the group of given kinds on it) by hand: the DERs with the most
    flexibility in ``direction`` first, each asked for all of it, until ``target_w`` is met."""
    fleet = rt.fleet
    if feeder_id not in fleet.feeder_ids:
        raise NotFound("feeder", feeder_id)
    if direction not in ("up", "down") or target_w <= 0:
        raise ValidationFailed(["direction must be 'up' or 'down' and target_w positive"])
    up_flex, down_flex = fleet.flexibility()
    flex = up_flex if direction == "up" else down_flex
    mask = (fleet.feeder[: len(flex)] == fleet.feeder_ids.index(feeder_id)) & (flex > 0)
    if principal.scope.tenant_id is not None:
        mask &= fleet.tenant[: len(flex)] == (
            fleet.tenant_ids.index(principal.tenant_id) if principal.tenant_id in fleet.tenant_ids else -2
        )
    if kinds:
        codes = [KINDS.index(DerKind(k)) for k in kinds]
        mask &= np.isin(fleet.kind[: len(flex)], codes)
    rows = np.flatnonzero(mask)
    rows = rows[np.argsort(-flex[rows], kind="stable")]
    baseline = next((r["p_w"] for r in monitor.last_rollup.records() if r["feeder_id"] == feeder_id), 0.0)
    now = rt.clock.now()
    event = DispatchEvent(
        id=uuid.uuid4().hex[:10],
        feeder_id=feeder_id,
        direction=direction,
        target_w=target_w,
        baseline_p_w=baseline,
        started_at=now,
        end_at=now + timedelta(seconds=duration_s),
        actor=principal.username,
        command_ids=[],
    )
    planned = 0.0
    with rt.engine.connect() as conn:
        for r in rows:
            if planned >= target_w:
                break
            kind = KINDS[fleet.kind[r]]
            share = float(min(flex[r], target_w - planned))
            control = _control_for(kind, float(np.nan_to_num(fleet.p_w[r])), share, direction == "up")
            if control is None:
                continue
            der = reg.get_der(conn, fleet.der_ids[r], scope=principal.scope)
            try:
                command = await rt.send_control(
                    der,
                    control,
                    duration=timedelta(seconds=duration_s),
                    reason=Reason(event.id, "operator", f"feeder dispatch {direction}"),
                )
            except LimitViolation:
                event.refused += 1
                continue
            monitor.note_command(
                command.command_id,
                der.id,
                control_to_dict(control),
                f"operator:{principal.username}",
                event.id,
            )
            event.command_ids.append(command.command_id)
            planned += share if not isinstance(control, LoadShed | LoadUp) else float(flex[r])
    monitor.dispatches.append(event)
    with rt.engine.begin() as conn:
        audit(
            conn,
            rt.clock,
            principal,
            "console.dispatch",
            f"feeder/{feeder_id}",
            {**event.as_dict(), "planned_w": planned, "command_ids": event.command_ids, "kinds": kinds or []},
        )
    return event


async def retrace_fleet(rt: Runtime, principal: Principal, what: str) -> dict[str, Any]:
    """After a topology change: move sites (registry) and DERs (fleet state) to the feeders the
    network now traces them to, and tell the bus (an orchestrator re-optimises on it)."""
    model = rt.network
    with rt.engine.connect() as conn:
        site_rows = conn.execute(select(sites.c.id, sites.c.bus, sites.c.feeder_id)).all()
    assignments: dict[str, tuple[str | None, str | None]] = {}
    for sid, bus, _ in site_rows:
        if bus is not None and bus in model.buses.index:
            assignments[sid] = (model.feeder_of_bus(bus), bus)
    at = rt.clock.now()
    with rt.engine.begin() as conn:
        changed = reg.set_site_feeders(conn, assignments, at=at, actor=principal.username)
        site_feeder = {sid: fb[0] for sid, fb in assignments.items()}
        der_rows = conn.execute(select(ders.c.idx, ders.c.site_id)).all()
    rows = [idx for idx, site_id in der_rows if site_id in site_feeder]
    rt.fleet.set_feeders(rows, [site_feeder[site_id] for _, site_id in der_rows if site_id in site_feeder])
    await rt.bus.publish(TOPOLOGY, {"change": what, "sites_moved": changed, "by": principal.username})
    return {"sites_moved": changed, "feeders": model.feeder_ids}


def _utility_only(principal: Principal) -> None:
    if not principal.is_utility:
        raise Forbidden("only the utility's operators switch the network")


async def set_switch(rt: Runtime, principal: Principal, switch_id: str, closed: bool) -> dict[str, Any]:
    _utility_only(principal)
    if rt.network is None:
        raise NotFound("network", "runtime")
    rt.network.set_switch(switch_id, closed)
    result = await retrace_fleet(rt, principal, f"switch {switch_id} {'closed' if closed else 'opened'}")
    with rt.engine.begin() as conn:
        audit(
            conn, rt.clock, principal, "console.switch", f"switch/{switch_id}", {"closed": closed, **result}
        )
    return result


async def planned_outage(
    rt: Runtime, principal: Principal, branch_id: str, out: bool, note: str
) -> dict[str, Any]:
    """Mark a branch out of service for a planned outage (``out``) or back in service."""
    _utility_only(principal)
    if rt.network is None:
        raise NotFound("network", "runtime")
    rt.network.set_in_service(branch_id, not out)
    result = await retrace_fleet(rt, principal, f"outage {branch_id} {'on' if out else 'off'}")
    with rt.engine.begin() as conn:
        audit(
            conn,
            rt.clock,
            principal,
            "console.outage",
            f"branch/{branch_id}",
            {"out": out, "note": note, **result},
        )
    return result


def opt_out_site(rt: Runtime, principal: Principal, site_id: str, opt_out: bool) -> list[str]:
    """Opt a site out of (or back into) dispatch: its DERs are disabled (enabled) in the
    registry and the fleet state, so no roll-up or dispatch counts them."""
    at = rt.clock.now()
    with rt.engine.begin() as conn:
        reg.get_site(conn, site_id, scope=principal.scope)
        ids = [r.id for r in conn.execute(select(ders.c.id).where(ders.c.site_id == site_id))]
        for der_id in ids:
            der = reg.get_der(conn, der_id, scope=principal.scope)
            reg.update_der(
                conn,
                dataclasses.replace(der, enabled=not opt_out),
                scope=principal.scope,
                at=at,
                actor=principal.username,
            )
            row = rt.fleet.index.get(der_id)
            if row is not None:
                rt.fleet.enabled[row] = not opt_out
        audit(
            conn,
            rt.clock,
            principal,
            "console.opt_out" if opt_out else "console.opt_in",
            f"site/{site_id}",
            {"ders": ids},
        )
    return ids


def acknowledge(rt: Runtime, monitor: ConsoleMonitor, principal: Principal, alarm_id: int) -> dict[str, Any]:
    alarm = monitor.acknowledge(alarm_id, principal.username)
    with rt.engine.begin() as conn:
        audit(conn, rt.clock, principal, "console.ack", f"alarm/{alarm_id}", {"message": alarm.message})
    return alarm.as_dict()
