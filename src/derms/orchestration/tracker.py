"""Dispatch tracking: plans go through the bridge to the adapters, every command is tracked.

Each setpoint becomes a command row (PENDING) and is translated by the bridge; a refused
translation is FAILED at once with the bridge's reason. The adapter's reports arrive on the
bus subject ``command.state`` and move the command through the life cycle of
:data:`derms.core.dispatch.ALLOWED_TRANSITIONS` (SENT, ACKNOWLEDGED, ACTIVE, COMPLETED,
FAILED, ...), each transition appended to the command's history; reports that the life cycle
does not allow (duplicates, late reports after a final state) are ignored. A command not
acknowledged by its deadline is sent again, up to ``max_attempts``, then FAILED. Delivery is
measured against telemetry while a command is active, one-sided: only a shortfall in the
direction the device was asked to move counts. Commands no longer wanted are released
(:meth:`DispatchTracker.release`): cancelled natively where the adapter can (OpenADR, IEEE 2030.5), else
superseded by a short command (``release_s``) on the same control slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import structlog
from sqlalchemy import Engine, insert, select, update

from derms.adapters.base import Adapter, NativeCommand
from derms.bridge.base import Bridge
from derms.bus.base import Bus, Message, Subscription
from derms.core.clock import Clock
from derms.core.controls import ControlKind, control_to_dict
from derms.core.der import Der
from derms.core.dispatch import ALLOWED_TRANSITIONS, CommandState, DispatchPlan, Reason, Setpoint
from derms.core.errors import DermsError, LimitViolation, NotFound
from derms.core.events import COMMAND_STATE
from derms.orchestration.replay import Record
from derms.orchestration.tables import command_events, commands, plans

log = structlog.get_logger(__name__)


@runtime_checkable
class Cancels(Protocol):
    """An adapter that can withdraw a sent command natively (OpenADR event cancellation, 2030.5
    DERControl cancelled) and reports it CANCELLED; raises NotFound for a command it no longer
    holds (never sent there, or finished)."""

    async def cancel(self, command_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Outstanding:
    der: Der
    setpoint: Setpoint
    plan_id: str


@dataclass(slots=True)
class Released:
    """What :meth:`DispatchTracker.release` did with each command."""

    cancelled: list[str] = field(default_factory=list)
    """Withdrawn through the adapter's native cancel."""
    superseded: dict[str, str] = field(default_factory=dict)
    """Command id → the release command sent to supersede it."""
    finished: list[str] = field(default_factory=list)
    """Already final, or not this tracker's: nothing to release."""


class DispatchTracker:
    """Sends plans and tracks their commands in the database (tables of ``orchestration_0001``)."""

    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        bridge: Bridge,
        adapters: Mapping[str, Adapter],
        clock: Clock,
        *,
        ack_timeout_s: float = 30.0,
        max_attempts: int = 3,
        release_s: float = 1.0,
    ) -> None:
        if ack_timeout_s <= 0 or max_attempts < 1 or release_s <= 0:
            raise ValueError("need ack_timeout_s > 0, max_attempts >= 1 and release_s > 0")
        self.engine, self.bus, self.bridge, self.adapters, self.clock = engine, bus, bridge, adapters, clock
        self.ack_timeout = timedelta(seconds=ack_timeout_s)
        self.max_attempts = max_attempts
        self.release_for = timedelta(seconds=release_s)
        """How long a release command holds the control it supersedes (it must reach the device
        before it ends)."""
        self._outstanding: dict[str, _Outstanding] = {}
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        if self._subscription is None:
            self._subscription = await self.bus.subscribe(COMMAND_STATE, self._on_state)

    async def stop(self) -> None:
        sub, self._subscription = self._subscription, None
        if sub is not None:
            await sub.unsubscribe()

    def save_plan(
        self,
        plan: DispatchPlan,
        record: Record,
        *,
        status: str,
        cost: float | None,
        tenant_id: str | None = None,
    ) -> None:
        """Store the plan with its recorded inputs (for replay)."""
        if record.digest != plan.inputs_digest:
            raise ValueError("the record does not match the plan's inputs digest")
        with self.engine.begin() as conn:
            conn.execute(
                insert(plans).values(
                    id=plan.id,
                    created_at=plan.created_at,
                    tenant_id=tenant_id,
                    objective_ids=list(plan.objective_ids),
                    solver=plan.solver[:64],
                    status=status[:200],
                    cost=cost,
                    inputs_digest=record.digest,
                    inputs=record.data,
                    setpoints=len(plan.setpoints),
                )
            )

    def recorded_inputs(self, plan_id: str) -> bytes:
        with self.engine.connect() as conn:
            data = conn.execute(select(plans.c.inputs).where(plans.c.id == plan_id)).scalar_one_or_none()
        if data is None:
            raise LookupError(f"no plan {plan_id!r}")
        return bytes(data)

    async def dispatch(self, plan: DispatchPlan, ders: Mapping[str, Der]) -> list[str]:
        """Translate and send every setpoint; returns the command ids in setpoint order.

        Every command is written in one transaction: a refused translation (or an unknown DER,
        or no adapter for its protocol) FAILED with the reason, the others SENT (handed to the
        adapter, acknowledgement due by the deadline); then each goes to its adapter, so the
        adapter's reports always find their command.
        """
        now = self.clock.now()
        deadline = now + self.ack_timeout
        ids = [uuid.uuid4().hex for _ in plan.setpoints]
        rows: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        sends: list[tuple[str, Adapter, NativeCommand]] = []
        for cid, sp in zip(ids, plan.setpoints, strict=True):
            der = ders.get(sp.der_id)
            try:
                if der is None:
                    raise LimitViolation(sp.der_id, f"unknown DER {sp.der_id!r}")
                adapter = self.adapters.get(der.protocol)
                if adapter is None:
                    raise LimitViolation(der.id, f"no adapter for protocol {der.protocol!r}")
                sends.append((cid, adapter, self.bridge.translate(der, sp, cid)))
                self._outstanding[cid] = _Outstanding(der, sp, plan.id)
                state, detail = CommandState.SENT, "sent by the orchestrator"
            except DermsError as exc:
                state, detail = CommandState.FAILED, str(exc)
            sent = state is CommandState.SENT
            rows.append(
                {
                    "id": cid,
                    "plan_id": plan.id,
                    "der_id": sp.der_id,
                    "protocol": der.protocol if der is not None else "",
                    "start": sp.start,
                    "end": sp.end,
                    "control": control_to_dict(sp.control),
                    "objective_id": sp.reason.objective_id,
                    "binding": sp.reason.binding[:200],
                    "detail": sp.reason.detail[:200],
                    "state": str(state),
                    "attempts": 1 if sent else 0,
                    "deadline": deadline if sent else None,
                    "updated_at": now,
                    "delivered_w": None,
                }
            )
            events.append(
                {"command_id": cid, "state": str(CommandState.PENDING), "ts": now, "detail": "planned"}
            )
            events.append({"command_id": cid, "state": str(state), "ts": now, "detail": detail})
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(commands), rows)
                conn.execute(insert(command_events), events)
        for cid, adapter, native in sends:
            try:
                await adapter.send(native)
            except DermsError as exc:
                self.apply(cid, CommandState.FAILED, str(exc))
        return ids

    async def release(self, cids: Sequence[str], detail: str) -> Released:
        """End commands before their window closes, so their devices return to their defaults.

        An adapter with a native cancel (:class:`Cancels`) withdraws the command and reports it
        CANCELLED. Otherwise the same control is sent again for ``release_s`` on the same
        control slot, under the original command's plan: the adapter reports the original
        SUPERSEDED (every adapter keeps one command per device control slot, as the console's
        cancel relies on) and the device returns to its default when the release completes.
        """
        done = Released()
        now = self.clock.now()
        releases: dict[str, list[tuple[str, Setpoint]]] = {}
        for cid in cids:
            item = self._outstanding.get(cid)
            if item is None:
                done.finished.append(cid)
                continue
            adapter = self.adapters.get(item.der.protocol)
            if isinstance(adapter, Cancels):
                try:
                    await adapter.cancel(cid)
                except NotFound:
                    done.finished.append(cid)
                    continue
                self.apply(cid, CommandState.CANCELLED, detail)
                done.cancelled.append(cid)
                continue
            reason = Reason(item.setpoint.reason.objective_id, "released", f"release of {cid}: {detail}")
            sp = replace(item.setpoint, start=now, end=now + self.release_for, reason=reason)
            releases.setdefault(item.plan_id, []).append((cid, sp))
        for plan_id, items in releases.items():
            plan = DispatchPlan(plan_id, now, tuple(sp for _, sp in items))
            ids = await self.dispatch(plan, {sp.der_id: self._outstanding[cid].der for cid, sp in items})
            done.superseded.update((cid, rid) for (cid, _), rid in zip(items, ids, strict=True))
        return done

    async def _on_state(self, message: Message) -> None:
        data = message.data
        try:
            state = CommandState(data["state"])
            cid = str(data["command_id"])
        except (KeyError, ValueError, TypeError):
            log.warning("malformed command state report", data=data)
            return
        self.apply(cid, state, str(data.get("detail", "")))

    def apply(self, cid: str, state: CommandState, detail: str = "") -> bool:
        """Move a command to ``state`` if its life cycle allows; returns whether it moved."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            current = conn.execute(select(commands.c.state).where(commands.c.id == cid)).scalar_one_or_none()
            if current is None:
                return False  # another orchestrator's command
            if state not in ALLOWED_TRANSITIONS.get(CommandState(current), frozenset()):
                return False
            values: dict[str, object] = {"state": str(state), "updated_at": now}
            if state is not CommandState.SENT:
                values["deadline"] = None
            conn.execute(update(commands).where(commands.c.id == cid).values(**values))
            conn.execute(
                insert(command_events).values(command_id=cid, state=str(state), ts=now, detail=detail)
            )
        if state.is_final:
            self._outstanding.pop(cid, None)
        return True

    async def check_timeouts(self) -> list[str]:
        """Resend commands still unacknowledged past their deadline, or fail them; returns the ids failed."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(commands.c.id, commands.c.attempts).where(
                    commands.c.state == str(CommandState.SENT), commands.c.deadline < now
                )
            ).all()
        failed = []
        for cid, attempts in rows:
            if attempts >= self.max_attempts or cid not in self._outstanding:
                self.apply(cid, CommandState.FAILED, f"no acknowledgement after {attempts} attempt(s)")
                failed.append(cid)
            else:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(command_events).values(
                            command_id=cid,
                            state=str(CommandState.SENT),
                            ts=now,
                            detail=f"retry {attempts + 1}",
                        )
                    )
                await self._send_again(cid)
        return failed

    async def _send_again(self, cid: str) -> None:
        # The command is SENT already: resend without a new SENT transition.
        item = self._outstanding[cid]
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(
                update(commands)
                .where(commands.c.id == cid)
                .values(attempts=commands.c.attempts + 1, deadline=now + self.ack_timeout, updated_at=now)
            )
        adapter = self.adapters[item.der.protocol]
        try:
            await adapter.send(self.bridge.translate(item.der, item.setpoint, cid))
        except DermsError as exc:
            self.apply(cid, CommandState.FAILED, str(exc))

    def measure(
        self,
        measured_w: Mapping[str, float],
        *,
        tolerance_w: float = 100.0,
        baseline_w: Mapping[str, float] | None = None,
        tolerance_share: float = 0.0,
    ) -> list[str]:
        """Record delivered power of commands in force; returns the DERs that under-deliver.

        A target is missed when the measurement falls short of it, in the direction the device
        was asked to move from ``baseline_w`` (its pre-command power), by more than
        ``tolerance_w`` or ``tolerance_share`` of the baseline's magnitude, whichever is larger
        (a large load's own demand drifts by per cents): going further than asked is not a
        failure. Without a baseline for the
        DER a target is missed in either direction. A cap (generation, load or charging limit)
        is missed when the device exceeds it by more than that.
        """
        now = self.clock.now()
        short = []
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(commands.c.id, commands.c.der_id, commands.c.control).where(
                    commands.c.state.in_([str(CommandState.ACKNOWLEDGED), str(CommandState.ACTIVE)]),
                    commands.c.start <= now,
                    commands.c.end > now,
                )
            ).all()
            for cid, der_id, control in rows:
                if der_id not in measured_w:
                    continue
                got = float(measured_w[der_id])
                base = None if baseline_w is None else baseline_w.get(der_id)
                miss = _miss(control, got, base)
                if miss is None:
                    continue
                conn.execute(update(commands).where(commands.c.id == cid).values(delivered_w=got))
                if miss > max(tolerance_w, tolerance_share * abs(base or 0.0)):
                    short.append(der_id)
        return short

    def history(self, cid: str) -> list[tuple[str, datetime, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(command_events.c.state, command_events.c.ts, command_events.c.detail)
                .where(command_events.c.command_id == cid)
                .order_by(command_events.c.id)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def states(self, cids: list[str]) -> dict[str, CommandState]:
        """Current state of each command in ``cids`` (one query per 500)."""
        out: dict[str, CommandState] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(cids), 500):
                rows = conn.execute(
                    select(commands.c.id, commands.c.state).where(commands.c.id.in_(cids[i : i + 500]))
                ).all()
                out.update({r[0]: CommandState(r[1]) for r in rows})
        return out

    def state(self, cid: str) -> CommandState:
        with self.engine.connect() as conn:
            value = conn.execute(select(commands.c.state).where(commands.c.id == cid)).scalar_one()
        return CommandState(value)


def _miss(control: Mapping[str, object], p_w: float, baseline_w: float | None = None) -> float | None:
    """How far a measured output ``p_w`` falls short of a control [W] (negative: beyond it);
    None for controls without a power. A target asked above its baseline is missed from below,
    one asked below it from above; with no baseline, in either direction."""
    kind = control.get("kind")
    if kind == ControlKind.ACTIVE_POWER_TARGET:
        target = float(control["w"])  # type: ignore[arg-type]
        if baseline_w is None or target == baseline_w:
            return abs(p_w - target)
        return target - p_w if target > baseline_w else p_w - target
    if kind == ControlKind.GENERATION_LIMIT:
        return p_w - float(control["w"])  # type: ignore[arg-type]
    if kind == ControlKind.LOAD_LIMIT:
        return -p_w - float(control["w"])  # type: ignore[arg-type]
    if kind == ControlKind.CHARGING_LIMIT and control.get("unit") == "W":
        return -p_w - float(control["limit"])  # type: ignore[arg-type]
    return None
