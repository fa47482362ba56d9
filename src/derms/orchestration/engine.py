"""The orchestrator: objectives and fleet state in, explained and recorded plans out, and
re-optimization of the affected feeders when something changes.

Triggers (each re-solves only the feeders concerned, within the time budget, replacing lost
flexibility with backups): a DER going offline (``der.status.*`` on the bus), under-delivery
measured by the dispatch tracker, a state of charge below what the plan assumed, a topology
change (``grid.topology``: new sensitivities for the feeders it names), a new objective.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import structlog

from derms.bus.base import Bus, Message, Subscription
from derms.core.clock import Clock
from derms.core.dispatch import DispatchPlan
from derms.core.events import DER_STATUS, TOPOLOGY
from derms.core.objectives import Objective
from derms.orchestration.ac import AcNetwork, AcResult, solve_checked
from derms.orchestration.flexibility import Binding, flexibility
from derms.orchestration.grid import GridConstraints
from derms.orchestration.inputs import FleetInput, Preferences
from derms.orchestration.objectives import Areas, translate
from derms.orchestration.optimizer import solve
from derms.orchestration.plan import to_plan
from derms.orchestration.problem import Problem
from derms.orchestration.reoptimize import hold, reoptimize
from derms.orchestration.replay import Record, record
from derms.orchestration.solution import Solution

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class Outcome:
    """One planning or re-planning result."""

    problem: Problem
    solution: Solution
    plan: DispatchPlan
    record: Record
    trigger: str
    ac_checks: tuple[AcResult, ...] = ()
    """AC power-flow checks of the plan's first step, the last one of the plan sent (empty when
    the orchestrator has no network to check against)."""


class Orchestrator:
    """Plans dispatch for the current fleet and objectives, and re-plans on events."""

    def __init__(
        self,
        fleet: FleetInput,
        prefs: Preferences,
        areas: Areas,
        clock: Clock,
        *,
        grid: GridConstraints | None = None,
        dt_s: float = 900.0,
        steps: int = 1,
        time_limit_s: float = 1.0,
        area_import_w: dict[str, np.ndarray] | None = None,
        ac: AcNetwork | None = None,
    ) -> None:
        """``ac``: the network the grid rows were computed on; every plan and re-plan is then
        checked by AC power flow before it is returned, and re-solved with the violated rows
        tightened (:func:`derms.orchestration.ac.solve_checked`)."""
        self.fleet, self.prefs, self.areas, self.clock = fleet, prefs, areas, clock
        self.ac = ac
        self.grid, self.dt_s, self.steps, self.time_limit_s = grid, dt_s, steps, time_limit_s
        self.area_import_w = area_import_w or {}
        self.objectives: list[Objective] = []
        self.current: Outcome | None = None
        self._subscriptions: list[Subscription] = []

    # ----------------------------------------------------------------- planning
    def _problem(self, start: datetime) -> Problem:
        t = translate(
            self.objectives,
            self.fleet,
            self.areas,
            start=start,
            dt_s=self.dt_s,
            steps=self.steps,
            area_import_w=self.area_import_w,
            grid=self.grid,
        )
        f = flexibility(self.fleet, self.prefs, dt_s=self.dt_s, steps=self.steps)
        return Problem.of(
            self.fleet,
            self.prefs,
            f,
            targets=t.targets,
            grid=t.grid,
            prices=t.prices,
            price_members=t.price_members,
        )

    def _solve(
        self, problem: Problem, run: Callable[[Problem], Solution]
    ) -> tuple[Solution, tuple[AcResult, ...]]:
        if self.ac is None or problem.grid is None:
            return run(problem), ()
        solution, checks = solve_checked(problem, self.ac, solver=run)
        if not checks[-1].ok:
            log.warning("plan still violates grid limits after tightening", rows=list(checks[-1].labels))
        return solution, tuple(checks)

    def _outcome(
        self,
        problem: Problem,
        solved: tuple[Solution, tuple[AcResult, ...]],
        trigger: str,
        start: datetime,
    ) -> Outcome:
        solution, checks = solved
        rec = record(problem, time_limit_s=self.time_limit_s)
        plan = to_plan(
            problem,
            solution,
            self.fleet.kind,
            plan_id=uuid.uuid4().hex,
            created_at=self.clock.now(),
            start=start,
            inputs_digest=rec.digest,
        )
        self.current = Outcome(problem, solution, plan, rec, trigger, checks)
        log.info(
            "dispatch planned",
            trigger=trigger,
            solver=solution.solver,
            setpoints=len(plan.setpoints),
            ac_checks=len(checks),
            ac_ok=checks[-1].ok if checks else None,
        )
        return self.current

    def plan(self, trigger: str = "schedule") -> Outcome:
        """A full plan from now for every feeder."""
        start = self.clock.now()
        problem = self._problem(start)
        solved = self._solve(problem, lambda p: solve(p, time_limit_s=self.time_limit_s))
        return self._outcome(problem, solved, trigger, start)

    def _replan(self, feeders: np.ndarray, trigger: str, problem: Problem | None = None) -> Outcome:
        if self.current is None:
            return self.plan(trigger)
        start = self.clock.now()
        problem = problem if problem is not None else self._problem(start)
        current, affected = self.current.solution, np.unique(feeders)
        solved = self._solve(
            problem, lambda p: reoptimize(p, current, affected, time_limit_s=self.time_limit_s)
        )
        return self._outcome(problem, solved, trigger, start)

    # ----------------------------------------------------------------- triggers
    def _rows(self, der_ids: Sequence[str]) -> np.ndarray:
        index = {d: i for i, d in enumerate(self.fleet.der_ids)}
        return np.array([index[d] for d in der_ids if d in index], np.int64)

    def _set(self, **columns: np.ndarray) -> None:
        self.fleet = replace(self.fleet, **columns)

    def devices_offline(self, der_ids: Sequence[str]) -> Outcome:
        rows = self._rows(der_ids)
        online = self.fleet.online.copy()
        online[rows] = False
        self._set(online=online)
        return self._replan(self.fleet.feeder[rows], f"offline: {len(rows)} DER(s)")

    def under_delivery(self, measured_w: dict[str, float]) -> Outcome:
        """DERs delivering ``measured_w`` instead of their setpoint are held at what they deliver."""
        rows = self._rows(list(measured_w))
        start = self.clock.now()
        problem = self._problem(start)
        held = np.array([measured_w[self.fleet.der_ids[i]] for i in rows])[:, None] * np.ones((1, self.steps))
        problem = replace(problem, flex=hold(problem.flex, rows, held, Binding.DEVICE))
        return self._replan(self.fleet.feeder[rows], f"under-delivery: {len(rows)} DER(s)", problem)

    def soc_update(self, soc: dict[str, float]) -> Outcome:
        rows = self._rows(list(soc))
        values = self.fleet.soc.copy()
        values[rows] = [soc[self.fleet.der_ids[i]] for i in rows]
        self._set(soc=values)
        return self._replan(self.fleet.feeder[rows], f"state of charge: {len(rows)} DER(s)")

    def topology_changed(
        self, grid: GridConstraints, feeders: np.ndarray, feeder_of_der: np.ndarray | None = None
    ) -> Outcome:
        """New sensitivities (and, after a transfer, new feeder assignments) for ``feeders``."""
        self.grid = grid
        if feeder_of_der is not None:
            moved = np.flatnonzero(feeder_of_der != self.fleet.feeder)
            feeders = np.union1d(feeders, np.union1d(self.fleet.feeder[moved], feeder_of_der[moved]))
            self._set(feeder=feeder_of_der.astype(np.int32))
        return self._replan(np.asarray(feeders), "topology change")

    def add_objective(self, objective: Objective) -> Outcome:
        self.objectives.append(objective)
        members = self.areas.members(objective, self.fleet)
        return self._replan(np.unique(self.fleet.feeder[members]), f"objective {objective.id}")

    # ----------------------------------------------------------------- bus
    async def attach(self, bus: Bus) -> None:
        """React to ``der.status.*`` (offline DERs) and ``grid.topology`` (full re-plan)."""
        self._subscriptions.append(await bus.subscribe(f"{DER_STATUS}.*", self._on_status))
        self._subscriptions.append(await bus.subscribe(TOPOLOGY, self._on_topology))

    async def detach(self) -> None:
        for sub in self._subscriptions:
            await sub.unsubscribe()
        self._subscriptions.clear()

    async def _on_status(self, message: Message) -> None:
        data = message.data
        der_id = data.get("der_id") if isinstance(data, dict) else None
        if der_id and data.get("online") is False and der_id in self.fleet.der_ids:
            self.devices_offline([der_id])

    async def _on_topology(self, message: Message) -> None:
        self.plan("topology change")
