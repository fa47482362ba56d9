"""The orchestration service: objectives on the bus to tracked commands on the devices.

Runs inside :class:`derms.runtime.Runtime` when a grid model and a fleet are loaded.

* ``objective.created`` (from ``POST /api/v1/objectives``, the OpenADR VEN, ...) stores the
  objective (idempotent by id) and plans for it; ``objective.cancelled`` withdraws it.
* Every ``dt_s`` interval with an objective active or starting within ``horizon_s`` gets one
  full plan from the live fleet state (:mod:`derms.orchestration.live`), over a receding
  horizon to the end of the last objective (at most ``horizon_s``) of which only the first
  step is dispatched: :class:`~derms.orchestration.engine.Orchestrator` solves, the plan and its recorded inputs are saved and the setpoints are sent through the
  :class:`~derms.orchestration.tracker.DispatchTracker` (bridge, adapter, command life cycle);
  commands run to the next interval boundary plus ``overlap_s``, so plans hand over without gaps.
* A DER under a command keeps its pre-command power as its baseline; a commanded C&I load's is
  refreshed at each interval plan from like days (:mod:`derms.orchestration.baseline_refresh`).
* Commands no longer wanted are released at once: those of DERs a new plan leaves out (an
  objective cancelled, a device no longer needed), and all of them when no objective is active
  (:meth:`~derms.orchestration.tracker.DispatchTracker.release`: native cancel, else superseded
  by a short command, ``release_s``), each release audited as ``orchestration.release``.
* Between plans, on the runtime clock every ``tick_s``: unacknowledged commands are retried or
  failed (``check_timeouts``); DERs under a command that go offline (``der.status.*`` or marked
  stale by the fleet tracker) trigger a re-plan of their feeders from backups; delivery is
  measured against telemetry and under-delivering DERs are held at what they deliver and
  replaced (and asked no more than that while the objectives last). Re-plans are debounced (``debounce_s``) and bounded per interval
  (``max_replans``); a re-plan sends only setpoints that differ from the commands in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import structlog
from sqlalchemy import Engine, func, select

from derms.adapters.base import Adapter
from derms.bridge.base import Bridge
from derms.bus.base import Bus, Message, Subscription
from derms.core.clock import Clock
from derms.core.controls import ControlKind, control_to_dict
from derms.core.der import Der
from derms.core.dispatch import CommandState, Setpoint
from derms.core.events import DER_STATUS, OBJECTIVE, TOPOLOGY, decode_objective
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.core.tasks import cancel_and_wait
from derms.fleet.state import KIND_CODES, SOC_MARGIN, FleetState
from derms.grid.model import NetworkModel
from derms.orchestration import live, objective_store
from derms.orchestration.ac import AcNetwork
from derms.orchestration.baseline_refresh import PROFILE_KINDS, Commanded, refreshed_baselines
from derms.orchestration.engine import Orchestrator, Outcome
from derms.orchestration.flexibility import stored_energy_wh
from derms.orchestration.grid import GridConstraints
from derms.orchestration.horizon_baselines import horizon_baselines, like_day_shapes
from derms.orchestration.inputs import FleetInput, Preferences
from derms.orchestration.tables import command_events, commands
from derms.orchestration.tracker import DispatchTracker
from derms.programs.baselines import CAISO_10_IN_10, LikeDayRule
from derms.store import audit
from derms.store import registry as reg
from derms.store.scope import TenantScope

log = structlog.get_logger(__name__)

_IN_FORCE = (CommandState.SENT, CommandState.ACKNOWLEDGED, CommandState.ACTIVE)


def _no_worse(grid: GridConstraints) -> GridConstraints:
    """Rows already outside their limits at the operating point may not get worse, but are not
    corrected either: correcting them is what a voltage-support objective asks for (its band
    replaces these limits)."""
    return replace(
        grid, limit_lo=np.fmin(grid.limit_lo, grid.value0), limit_hi=np.fmax(grid.limit_hi, grid.value0)
    )


def _ac_summary(outcome: Outcome) -> dict[str, Any] | None:
    """What the AC power flow said of the plan sent (None: planned without a network)."""
    if not outcome.ac_checks:
        return None
    last = outcome.ac_checks[-1]
    return {
        "ok": last.ok,
        "rounds": len(outcome.ac_checks),
        "violated": list(last.labels),
        "max_loading_percent": round(last.max_loading_percent, 3),
        "vm_min_pu": round(last.vm_min_pu, 5),
        "vm_max_pu": round(last.vm_max_pu, 5),
    }


def _key(sp: Setpoint) -> tuple[str, str]:
    """A device's control slot: one command in force per DER and control kind."""
    return sp.der_id, str(sp.control.kind)


@dataclass(frozen=True, slots=True)
class _Command:
    command_id: str
    control: dict[str, Any]
    end: datetime
    sent_at: datetime
    baseline_w: float
    """The DER's power before its run of commands began (at ``since``)."""
    since: datetime
    soc: float = float("nan")
    """Storage: its state of charge when the run began (NaN: none reported)."""


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """Timing and limits of the service (times in the runtime clock's seconds)."""

    dt_s: float = 900.0
    """Planning interval (one full plan per interval while an objective is active) [s]."""
    horizon_s: float = 4 * 3600.0
    """Each plan looks this far ahead in ``dt_s`` steps (to the end of the last objective it
    sees, if sooner) and only its first step is dispatched: a receding horizon (model predictive
    control), so storage keeps energy for an objective's later intervals and charges ahead of
    an objective that starts within the horizon. ``dt_s`` plans one interval at a time."""
    tick_s: float = 30.0
    """Clock seconds between checks (timeouts, offline, delivery); 0: the caller drives :meth:`step`
    (needed with a ``ManualClock``, whose ``sleep`` moves the clock)."""
    ack_timeout_s: float = 60.0
    max_attempts: int = 3
    debounce_s: float = 60.0
    """Least clock time between two re-plans."""
    max_replans: int = 8
    """Re-plans per interval at most."""
    overlap_s: float = 300.0
    """A command runs to the next interval boundary plus this, so the next plan takes over
    from it without a gap."""
    release_s: float = 60.0
    """A command released without a native cancel is superseded by the same control for this
    long; it must reach the device before it ends (at the demo's 480x speed one second of clock
    time passed before the simulated adapter saw the release, which it then refused as ended)."""
    measure_after_s: float = 120.0
    """Measure delivery only for commands sent at least this long ago (the device has responded)."""
    soc_short_share: float = 0.2
    """A battery under a command whose reported energy falls short of carrying it to the next
    interval by more than this share triggers a re-plan of its feeder (its SoC is below what
    the plan assumed)."""
    tolerance_w: float = 250.0
    tolerance_share: float = 0.02
    """A miss within this share of the DER's pre-command power is no miss: a load's own demand
    drifts (the simulated C&I loads' AR(1) noise moves them about 1.3 % in three minutes)."""
    time_limit_s: float = 1.0
    with_grid: bool = True
    """Grid limits as linear sensitivities of the network model (AC power flow)."""
    baseline_rule: LikeDayRule | None = CAISO_10_IN_10
    """Like-day rule of the baselines of commanded loads, refreshed at each interval plan
    (:mod:`derms.orchestration.baseline_refresh`); None keeps their pre-command values."""

    def __post_init__(self) -> None:
        if self.baseline_rule is not None and (86_400 % self.dt_s or 86_400 // self.dt_s % 24):
            raise ValueError("like-day baselines need dt_s to divide a day into a multiple of 24 intervals")


class OrchestrationService:
    """Composes the orchestrator, the dispatch tracker and the live fleet (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        clock: Clock,
        fleet: FleetState,
        network: NetworkModel,
        bridge: Bridge,
        adapters: Mapping[str, Adapter],
        options: ServiceOptions | None = None,
    ) -> None:
        self.engine, self.bus, self.clock, self.state, self.network = engine, bus, clock, fleet, network
        self.options = o = options or ServiceOptions()
        self.tracker = DispatchTracker(
            engine,
            bus,
            bridge,
            adapters,
            clock,
            ack_timeout_s=o.ack_timeout_s,
            max_attempts=o.max_attempts,
            release_s=o.release_s,
        )
        self.objectives: dict[str, Objective] = {}
        self.orchestrator: Orchestrator | None = None
        self.plans = 0
        self.replans = 0
        self.last_outcome: Outcome | None = None
        self._in_force: dict[tuple[str, str], _Command] = {}
        self._refreshed: dict[str, tuple[datetime, float]] = {}
        self._shapes: dict[str, np.ndarray] = {}
        """Like-day shape of C&I loads' baselines over the horizon at this interval (factors)."""
        """Like-day baseline [W] of commanded loads at this interval, by the start of their run."""
        self._offline: set[str] = set()
        self.held: set[str] = set()
        """DERs held at what they deliver for the rest of the interval (not measured again)."""
        self.caps: dict[str, tuple[float, float]] = {}
        """Learned deviation caps (up, down) [W] of DERs that under-delivered, while objectives last."""
        self._slot: int | None = None
        self._changed = False
        self._replans_in_slot = 0
        self._last_replan: datetime | None = None
        self._grid: GridConstraints | None = None
        self._ac: AcNetwork | None = None
        """The network the grid rows come from: every plan is checked on it by AC power flow."""
        self._grid_version = -1
        self._bus_pos = np.zeros(0, np.int64)
        self._lat = self._lon = np.zeros(0)
        """Site latitude/longitude per fleet row [degrees] (NaN unknown): PV baselines ahead."""
        self._ders: dict[str, Der] = {}
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- life cycle
    async def start(self) -> None:
        await self.tracker.start()
        self.refresh()
        await asyncio.to_thread(self._grid_rows)  # sensitivities ready before the first objective
        with self.engine.connect() as conn:
            for obj in objective_store.active_objectives(conn, self.clock.now()):
                self.objectives[obj.id] = obj
        self._changed = bool(self.objectives)
        self._subs = [
            await self.bus.subscribe(f"{OBJECTIVE}.>", self._on_objective),
            await self.bus.subscribe(f"{DER_STATUS}.>", self._on_status),
            await self.bus.subscribe(TOPOLOGY, self._on_topology),
        ]
        if self.options.tick_s > 0:
            self._task = asyncio.create_task(self._loop(), name="orchestration")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs = []
        await self.tracker.stop()

    def refresh(self) -> None:
        """Re-read the registry (DERs with their ratings, their buses, their sites' locations);
        new buses need new grid sensitivities."""
        bus_pos = live.der_bus_positions(self.engine, self.network, len(self.state))
        if not np.array_equal(bus_pos, self._bus_pos):
            self._bus_pos, self._grid_version = bus_pos, -1
        self._lat, self._lon = live.der_locations(self.engine, len(self.state))
        with self.engine.connect() as conn:
            self._ders = {d.id: d for d in reg.list_ders(conn, scope=TenantScope.utility(), limit=None)}

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("orchestration step failed")
            sleeper = asyncio.ensure_future(self.clock.sleep(self.options.tick_s))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for f in (sleeper, woken):
                    f.cancel()
            self._wake.clear()

    # ----------------------------------------------------------------- bus
    async def _on_objective(self, message: Message) -> None:
        data = message.data
        if message.subject.endswith(".cancelled"):
            oid = str(data.get("id")) if isinstance(data, dict) else ""
            with self.engine.begin() as conn:
                objective_store.cancel(conn, oid)
            if self.objectives.pop(oid, None) is not None:
                self._changed = True
                self._wake.set()
            return
        if not message.subject.endswith(".created"):
            return
        try:
            obj = decode_objective(data)
        except ValueError as exc:
            log.warning("ignored malformed objective", error=str(exc))
            return
        await self.submit(obj, actor=obj.source)

    async def submit(self, objective: Objective, *, actor: str) -> bool:
        """Take an objective (stored if new); returns False when its id is known already."""
        if objective.id in self.objectives:
            return False
        with self.engine.begin() as conn:
            objective_store.save(conn, objective, at=self.clock.now(), actor=actor)
        self.objectives[objective.id] = objective
        self._changed = True
        self._wake.set()
        return True

    async def _on_status(self, message: Message) -> None:
        data = message.data
        if isinstance(data, dict) and data.get("online") is False and data.get("der_id") in self._ders:
            der_id = str(data["der_id"])
            if any(k[0] == der_id for k in self._in_force):
                self._offline.add(der_id)
                self._wake.set()

    async def _on_topology(self, message: Message) -> None:
        self._grid_version = -1
        self._changed = True
        self._wake.set()

    # ----------------------------------------------------------------- the step
    async def step(self) -> None:
        """One pass: timeouts, then a full plan, a re-plan or a delivery check as due."""
        async with self._lock:
            await self.tracker.check_timeouts()
            now = self.clock.now()
            self._expire(now)
            for oid in [o.id for o in self.objectives.values() if o.end <= now]:
                del self.objectives[oid]
            ahead = now + timedelta(seconds=self.options.horizon_s)
            active = [o for o in self.objectives.values() if o.start < ahead and o.end > now]
            if not active:
                self._slot, self.orchestrator = None, None
                self.caps.clear()
                await self._release(list(self._in_force), "no objective active or ahead")
                return
            slot = int(now.timestamp() // self.options.dt_s)
            if slot != self._slot or self._changed or self.orchestrator is None:
                await self._plan(active, now, slot)
                return
            offline = self._offline | {d for d, _ in self._in_force if not self._online(d)}
            if offline and self._may_replan(now):
                self._offline.clear()
                for key in [k for k in self._in_force if k[0] in offline]:
                    del self._in_force[key]
                await self._replan(lambda o: o.devices_offline(sorted(offline)), now)
                return
            low = self._running_out(now)
            if low and self._may_replan(now):
                await self._replan(lambda o: o.soc_update(low), now)
                return
            short = self._under_delivering(now)
            if short and self._may_replan(now):
                self.held |= set(short)
                self._learn_caps(short)
                await self._replan(lambda o: o.under_delivery(short), now)

    def _running_out(self, now: datetime) -> dict[str, float]:
        """Storage under a net-power command whose reported state of charge cannot carry the
        command to the next interval boundary (short by more than ``soc_short_share``): its SoC
        is lower (or, charging, higher) than the plan assumed, so its feeders are re-planned from
        the reported SoC before it runs empty or full. Returns the DERs' reported SoC."""
        boundary = (int(now.timestamp() // self.options.dt_s) + 1) * self.options.dt_s
        hours = (boundary - now.timestamp()) / 3600.0
        if hours <= 0:
            return {}
        fresh_ms = (now - timedelta(seconds=self.options.tick_s + 60.0)).timestamp() * 1000.0
        low: dict[str, float] = {}
        for (der_id, _), cmd in self._in_force.items():
            row, der = self.state.index.get(der_id), self._ders.get(der_id)
            w = (
                cmd.control.get("w")
                if cmd.control.get("kind") == str(ControlKind.ACTIVE_POWER_TARGET)
                else None
            )
            if row is None or der is None or not der.kind.is_storage or w is None or der_id in self.held:
                continue
            soc, wh_max = float(self.state.soc[row]), float(self.state.wh_max[row])
            if not (np.isfinite(soc) and wh_max > 0 and self.state.last_seen_ms[row] >= fresh_ms):
                continue
            eta = live.one_way_efficiency(der.capabilities)
            drain = float(stored_energy_wh(w, eta, eta, hours))
            if w > 0:
                floor = max(der.capabilities.soc_reserve, SOC_MARGIN)
                need, have = drain, (soc - floor) * wh_max
            else:
                need, have = -drain, (1.0 - SOC_MARGIN - soc) * wh_max
            if need > 0 and have < (1.0 - self.options.soc_short_share) * need:
                low[der_id] = soc
        return low

    def _learn_caps(self, measured_w: dict[str, float]) -> None:
        """Cap each under-delivering DER's deviation, in the direction it was asked to move, at
        what it delivered; later plans of these objectives ask no more of it."""
        assert self.orchestrator is not None and self.orchestrator.current is not None
        orch, current = self.orchestrator, self.orchestrator.current
        row = {der_id: i for i, der_id in enumerate(orch.fleet.der_ids)}
        for der_id, got in measured_w.items():
            i = row[der_id]
            base = float(current.problem.flex.base[i, 0])
            asked = float(current.solution.p_w[i, 0]) - base
            up, down = self.caps.get(der_id, (np.inf, np.inf))
            if asked > 0:
                up = min(up, max(got - base, 0.0))
            elif asked < 0:
                down = min(down, max(base - got, 0.0))
            self.caps[der_id] = (up, down)

    def _online(self, der_id: str) -> bool:
        row = self.state.index.get(der_id)
        return row is not None and bool(self.state.online[row])

    def _expire(self, now: datetime) -> None:
        for key in [k for k, c in self._in_force.items() if c.end <= now]:
            del self._in_force[key]

    def _may_replan(self, now: datetime) -> bool:
        o = self.options
        recent = self._last_replan is not None and now - self._last_replan < timedelta(seconds=o.debounce_s)
        return not recent and self._replans_in_slot < o.max_replans

    def _grid_rows(self) -> GridConstraints | None:
        if not self.options.with_grid:
            return None
        if self._grid_version != self.network.topology_version:
            self._grid_version = self.network.topology_version
            buses = self._bus_pos[self._bus_pos >= 0]
            self._ac, self._grid = None, None
            try:
                if len(buses):
                    self._ac = AcNetwork(self.network, buses)
                    self._grid = _no_worse(self._ac.sensitivities())
            except Exception:  # e.g. a model the power-flow engine cannot take, or no convergence
                log.exception(
                    "no grid sensitivities: planning without grid limits until the topology changes"
                )
                self._ac, self._grid = None, None
        return self._grid

    def _steps(self, active: list[Objective], now: datetime) -> int:
        """Steps of ``dt_s`` to the end of the last objective, at most ``horizon_s``."""
        dt, last = self.options.dt_s, max(o.end for o in active)
        to_end = int(np.ceil((last - now).total_seconds() / dt - 1e-9))
        return max(1, min(to_end, int(np.ceil(self.options.horizon_s / dt - 1e-9))))

    def _inputs(self, active: list[Objective], grid: GridConstraints | None) -> Orchestrator:
        base = live.baseline_p(self.state, self._baselines())
        now = self.clock.now()
        steps = self._steps(active, now)
        n = len(base)
        ahead, unlocated = horizon_baselines(
            self.state.kind[:n],
            base,
            self.state.w_max[:n],
            self._lat[:n],
            self._lon[:n],
            now,
            dt_s=self.options.dt_s,
            steps=steps,
        )
        if unlocated and steps > 1:
            log.info("PV baseline ahead by persistence: sites without a location", ders=unlocated)
        for der_id, factors in self._shapes.items():
            if (row := self.state.index.get(der_id)) is not None and row < n:
                ahead[row] = base[row] * factors[:steps]
        now_ms = now.timestamp() * 1000.0
        rows = live.planned_rows(self.state, now_ms)
        fleet = live.fleet_input(self.state, rows, self._bus_pos, base, now_ms, ahead)
        eta, reserve = live.storage_terms(fleet, self._ders)
        fleet = replace(
            fleet,
            eta_charge=eta,
            eta_discharge=eta,
            baseline_soc=self._baseline_soc(fleet, eta, reserve, now),
        )
        where = live.areas(self.state, self.network)
        planned: list[Objective] = []
        imports: dict[str, np.ndarray] = {}
        for obj in active:
            try:
                members = live.area_rows(obj, self.state, where)[rows]
            except ValueError as exc:  # an area without registered DERs: the others still plan
                log.warning("objective not planned", objective=obj.id, reason=str(exc))
                continue
            if obj.kind is ObjectiveKind.PEAK_REDUCTION:
                imports[obj.id] = live.area_import_steps_w(obj, self.state, where, self.network, ahead)
            if obj.tenant_id is not None:  # a tenant's objective moves only the tenant's DERs
                ids = tuple(fleet.der_ids[i] for i in np.flatnonzero(members))
                if not ids:
                    log.warning("objective has no DERs of its tenant to plan", objective=obj.id)
                    continue
                obj = replace(obj, area=Area(AreaLevel.GROUP, ids))
            planned.append(obj)
        caps = live.load_deviation_caps(fleet, self._ders, steps)
        row = {der_id: i for i, der_id in enumerate(fleet.der_ids)}
        for der_id, (up, down) in self.caps.items():
            if (i := row.get(der_id)) is not None:
                caps[:, i] = np.minimum(caps[:, i], np.array([[up], [down]]))
        orch = Orchestrator(
            fleet,
            Preferences.build(
                fleet.n, steps, soc_min=reserve, contract_up_w=caps[0], contract_down_w=caps[1]
            ),
            where,
            self.clock,
            grid=grid,
            dt_s=self.options.dt_s,
            steps=steps,
            time_limit_s=self.options.time_limit_s,
            area_import_w=imports,
            ac=self._ac if grid is not None else None,
        )
        orch.objectives = planned
        return orch

    def _baseline_soc(
        self, fleet: FleetInput, eta: np.ndarray, reserve: np.ndarray, now: datetime
    ) -> np.ndarray:
        """State of charge each commanded battery would have now had it kept its pre-command
        power since its run began (its baseline's own trajectory, not the one our commands
        made), so its baseline over the horizon stops where that one would have: a battery we
        charged ahead of an objective keeps the baseline it had before, not a longer discharge
        (NaN: not commanded, the reported SoC is the baseline's)."""
        out = np.full(fleet.n, np.nan)
        row = {der_id: i for i, der_id in enumerate(fleet.der_ids)}
        for (der_id, _), c in self._in_force.items():
            i = row.get(der_id)
            if i is None or not np.isfinite(c.soc) or not fleet.wh_max[i] > 0:
                continue
            hours = (now - c.since).total_seconds() / 3600.0
            moved = float(stored_energy_wh(c.baseline_w, eta[i], eta[i], hours))
            out[i] = float(np.clip(c.soc - moved / fleet.wh_max[i], min(reserve[i], c.soc), 1.0))
        return out

    def _baselines(self) -> dict[str, float]:
        """Baseline [W] of each DER under a command: its like-day value at this interval when
        refreshed for its current run, else its pre-command power."""
        out = {}
        for (der_id, _), c in self._in_force.items():
            since, w = self._refreshed.get(der_id, (None, c.baseline_w))
            out[der_id] = w if since == c.since else c.baseline_w
        return out

    def _refresh_baselines(self, now: datetime) -> dict[str, tuple[datetime, float]]:
        """Like-day baselines of the commanded C&I loads (three statements for all of them)."""
        rule = self.options.baseline_rule
        loads = {
            der_id: Commanded(self.state.index[der_id], c.since, c.baseline_w)
            for (der_id, _), c in self._in_force.items()
            if der_id in self.state.index
            and (der := self._ders.get(der_id)) is not None
            and der.kind in PROFILE_KINDS
        }
        if rule is None or not loads:
            return {}
        got = refreshed_baselines(self.engine, loads, now, dt_s=self.options.dt_s, rule=rule)
        return {der_id: (loads[der_id].since, w) for der_id, w in got.items()}

    def _load_shapes(self, now: datetime) -> dict[str, np.ndarray]:
        """Like-day shapes of the enabled C&I loads' baselines over the longest horizon."""
        rule = self.options.baseline_rule
        if rule is None:
            return {}
        n = len(self.state)
        kinds = [KIND_CODES[k] for k in PROFILE_KINDS]
        rows = np.flatnonzero(
            np.isin(self.state.kind[:n], kinds) & self.state.registered & self.state.enabled
        )
        steps = int(np.ceil(self.options.horizon_s / self.options.dt_s - 1e-9))
        loads = {self.state.der_ids[i]: int(i) for i in rows}
        return like_day_shapes(self.engine, loads, now, dt_s=self.options.dt_s, steps=steps, rule=rule)

    async def _plan(self, active: list[Objective], now: datetime, slot: int) -> None:
        self.refresh()
        grid = await asyncio.to_thread(self._grid_rows)
        same_slot = slot == self._slot
        if not same_slot:
            self._refreshed = await asyncio.to_thread(self._refresh_baselines, now)
            self._shapes = await asyncio.to_thread(self._load_shapes, now)
        orch = self._inputs(active, grid)
        if not orch.objectives:
            self._slot, self._changed = slot, False
            await self._release(list(self._in_force), "no objective planned")
            return
        outcome = await asyncio.to_thread(orch.plan, "objectives changed" if same_slot else "interval")
        self.orchestrator, self._slot, self._changed = orch, slot, False
        if not same_slot:
            self._replans_in_slot, self._last_replan, self.held = 0, None, set()
        self.plans += 1
        await self._dispatch(outcome, only_changed=same_slot)

    async def _replan(self, how: Any, now: datetime) -> None:
        assert self.orchestrator is not None
        outcome = await asyncio.to_thread(how, self.orchestrator)
        self._replans_in_slot += 1
        self._last_replan = now
        self.replans += 1
        await self._dispatch(outcome, only_changed=True)

    def _under_delivering(self, now: datetime) -> dict[str, float]:
        due = now - timedelta(seconds=self.options.measure_after_s)
        measured: dict[str, float] = {}
        for (der_id, _), cmd in self._in_force.items():
            row = self.state.index.get(der_id)
            if row is None or cmd.sent_at > due or not self.state.online[row] or der_id in self.held:
                continue
            seen = self.state.last_seen_ms[row]
            if np.isfinite(seen) and seen >= due.timestamp() * 1000 and np.isfinite(self.state.p_w[row]):
                measured[der_id] = float(self.state.p_w[row])
        short = self.tracker.measure(
            measured,
            tolerance_w=self.options.tolerance_w,
            baseline_w=self._baselines(),
            tolerance_share=self.options.tolerance_share,
        )
        return {d: measured[d] for d in short}

    async def _dispatch(self, outcome: Outcome, *, only_changed: bool) -> None:
        now = self.clock.now()
        # Commands last until the next interval's plan replaces them, with overlap_s to spare.
        boundary = (int(now.timestamp() // self.options.dt_s) + 1) * self.options.dt_s
        end = datetime.fromtimestamp(boundary + self.options.overlap_s, UTC)
        plan = replace(outcome.plan, setpoints=tuple(replace(s, end=end) for s in outcome.plan.setpoints))
        setpoints = plan.setpoints
        if only_changed:
            setpoints = tuple(
                s
                for s in setpoints
                if (c := self._in_force.get(_key(s))) is None or c.control != control_to_dict(s.control)
            )
        self.tracker.save_plan(
            plan, outcome.record, status=outcome.solution.status, cost=outcome.solution.cost
        )
        ids = await self.tracker.dispatch(replace(plan, setpoints=setpoints), self._ders)
        planned = {_key(s) for s in plan.setpoints}
        await self._release([k for k in self._in_force if k not in planned], f"not in plan {plan.id}")
        states = self.tracker.states(ids)
        for cid, sp in zip(ids, setpoints, strict=True):
            if states[cid] not in _IN_FORCE:
                continue
            previous = self._in_force.get(_key(sp))
            row = self.state.index.get(sp.der_id)
            measured = float(np.nan_to_num(self.state.p_w[row])) if row is not None else 0.0
            soc = float(self.state.soc[row]) if row is not None else float("nan")
            baseline, since, soc = (
                (previous.baseline_w, previous.since, previous.soc)
                if previous is not None
                else (measured, now, soc)
            )
            self._in_force[_key(sp)] = _Command(
                cid, control_to_dict(sp.control), sp.end, now, baseline, since, soc
            )
        shortfall = {k: float(np.nansum(v)) for k, v in outcome.solution.shortfall_w.items()}
        with self.engine.begin() as conn:
            audit.append(
                conn,
                at=now,
                actor="orchestrator",
                action="orchestration.plan",
                target=f"plan/{plan.id}",
                detail={
                    "trigger": outcome.trigger,
                    "objectives": list(plan.objective_ids),
                    "setpoints": len(plan.setpoints),
                    "commands": len(ids),
                    "solver": plan.solver,
                    "shortfall_w": shortfall,
                    "ac_check": _ac_summary(outcome),
                },
            )
        log.info(
            "plan dispatched",
            plan=plan.id,
            trigger=outcome.trigger,
            setpoints=len(plan.setpoints),
            sent=len(ids),
        )
        self.last_outcome = outcome

    async def _release(self, keys: list[tuple[str, str]], why: str) -> None:
        """End the commands in force on ``keys`` now and audit it."""
        if not keys:
            return
        cids = [self._in_force.pop(k).command_id for k in keys]
        done = await self.tracker.release(cids, why)
        now = self.clock.now()
        with self.engine.begin() as conn:
            audit.append(
                conn,
                at=now,
                actor="orchestrator",
                action="orchestration.release",
                target=f"der/{keys[0][0]}" if len(keys) == 1 else "orchestration/commands",
                detail={
                    "reason": why,
                    "der_ids": sorted({d for d, _ in keys}),
                    "cancelled": done.cancelled,
                    "superseded": done.superseded,
                    "finished": done.finished,
                },
            )
        log.info("commands released", reason=why, released=len(cids))

    # ----------------------------------------------------------------- reporting
    def command_counts(self) -> dict[str, int]:
        """Commands by current state, and how many were ever acknowledged."""
        with self.engine.connect() as conn:
            by_state = dict(
                conn.execute(select(commands.c.state, func.count()).group_by(commands.c.state)).all()
            )
            acked = conn.execute(
                select(func.count(func.distinct(command_events.c.command_id))).where(
                    command_events.c.state == str(CommandState.ACKNOWLEDGED)
                )
            ).scalar_one()
        return {**{str(k): int(v) for k, v in by_state.items()}, "acknowledged_ever": int(acked)}
