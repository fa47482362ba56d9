"""Drive a :class:`FleetSimulator` through a :class:`Scenario` on a clock.

Events become timed actions on the fleet. :meth:`ScenarioRunner.advance` steps the fleet to
each due action's exact time, applies it, then steps on to ``now``; the periodic loop of
the simulated adapter and :meth:`ScenarioRunner.run` both use it, so a scenario plays the
same in real time (:class:`~derms.core.clock.SystemClock` or ``ScaledClock(speed=1)``),
accelerated (:class:`~derms.core.clock.ScaledClock`) or as fast as possible
(:class:`~derms.core.clock.ManualClock`), see :func:`scenario_clock`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np

from derms.core.clock import Clock, ManualClock, ScaledClock, utc
from derms.core.der import DerKind
from derms.core.errors import ValidationFailed
from derms.sim.fleet import FleetSimulator
from derms.sim.physics.base import BoolArray
from derms.sim.scenario import CloudCover, DeviceDrop, DeviceFailure, EvArrivalSurge, HeatWave, Scenario


class ClockMode(StrEnum):
    REALTIME = "realtime"
    ACCELERATED = "accelerated"
    FAST = "fast"


def scenario_clock(scenario: Scenario, mode: ClockMode, speed: float | None = None) -> Clock:
    """A clock starting at the scenario's start: real time, accelerated (``speed`` or the
    scenario's own), or manual (as fast as possible)."""
    match mode:
        case ClockMode.REALTIME:
            return ScaledClock(scenario.start, 1.0)
        case ClockMode.ACCELERATED:
            return ScaledClock(scenario.start, speed or scenario.speed)
        case ClockMode.FAST:
            return ManualClock(scenario.start)


@dataclass(order=True, slots=True)
class _Action:
    t_s: float
    seq: int
    description: str = field(compare=False)
    run: Callable[[], str] = field(compare=False)
    """Performs the action and returns what it did."""


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    at: datetime
    description: str
    outcome: str


type StepCallback = Callable[[FleetSimulator], Awaitable[None] | None]


class ScenarioRunner:
    """Plays ``scenario`` on ``fleet``; raises :class:`ValidationFailed` if the scenario names
    devices, kinds or feeders the fleet cannot satisfy."""

    def __init__(self, fleet: FleetSimulator, scenario: Scenario) -> None:
        self.fleet = fleet
        self.scenario = scenario
        self.rng = np.random.default_rng(scenario.seed)
        self.applied: list[AppliedEvent] = []
        self._actions: list[_Action] = []
        self._check()
        for i, event in enumerate(scenario.events):
            self._schedule(i, event)
        self._actions.sort(reverse=True)

    @property
    def start(self) -> datetime:
        return self.scenario.start.astimezone(UTC)

    @property
    def end(self) -> datetime:
        return self.start + self.scenario.duration

    @property
    def pending(self) -> int:
        return len(self._actions)

    def _check(self) -> None:
        problems: list[str] = []
        known = set(self.fleet.der_ids)
        for i, event in enumerate(self.scenario.events):
            where = f"events.{i} ({event.type})"
            if isinstance(event, DeviceFailure) and event.der_id not in known:
                problems.append(f"{where}: no simulated DER {event.der_id!r}")
            if isinstance(event, DeviceDrop | EvArrivalSurge):
                kinds = [DerKind.EV_CHARGER] if isinstance(event, EvArrivalSurge) else event.kinds
                matching = int(self.fleet.select(kinds, event.feeders).sum())
                if matching == 0:
                    problems.append(f"{where}: no simulated device matches its kinds and feeders")
                elif event.count is not None and event.count > matching:
                    problems.append(f"{where}: count {event.count} exceeds the {matching} matching devices")
        if problems:
            raise ValidationFailed(problems)

    def _at(self, offset: timedelta) -> float:
        return (self.start + offset).timestamp()

    def _add(self, offset: timedelta, description: str, run: Callable[[], str]) -> None:
        self._actions.append(_Action(self._at(offset), len(self._actions), description, run))

    def _schedule(
        self, i: int, event: HeatWave | CloudCover | DeviceDrop | DeviceFailure | EvArrivalSurge
    ) -> None:
        fleet = self.fleet
        label = f"events.{i} {event.type}"
        match event:
            case HeatWave(delta_c=delta, feeders=feeders, at=at, duration=duration):
                mask = fleet.select(None, feeders)
                self._add(at, f"{label} +{delta} K", lambda: _done(fleet.set_temperature_offset(delta, mask)))
                self._add(
                    at + duration, f"{label} ends", lambda: _done(fleet.set_temperature_offset(0.0, mask))
                )
            case CloudCover(irradiance_factor=factor, feeders=feeders, at=at, duration=duration):
                mask = fleet.select(None, feeders)
                self._add(at, f"{label} x{factor}", lambda: _done(fleet.set_irradiance_factor(factor, mask)))
                self._add(
                    at + duration, f"{label} clears", lambda: _done(fleet.set_irradiance_factor(1.0, mask))
                )
            case DeviceDrop():
                dropped: list[BoolArray] = []
                self._add(event.at, label, lambda: self._drop(event, dropped))
                if event.recover_after is not None:
                    self._add(
                        event.at + event.recover_after, f"{label} recovery", lambda: self._recover(dropped)
                    )
            case DeviceFailure(der_id=der_id):
                mask = np.array(fleet.der_ids) == der_id
                self._add(
                    event.at,
                    f"{label} {der_id}",
                    lambda: _ids(fleet.set_online(mask, False, "device failure")),
                )
                if event.recover_after is not None:
                    self._add(
                        event.at + event.recover_after,
                        f"{label} {der_id} recovery",
                        lambda: _ids(fleet.set_online(mask, True, "device recovered")),
                    )
            case EvArrivalSurge():
                self._add(event.at, label, lambda: self._surge(event))

    def _pick(self, candidates: BoolArray, count: int | None, fraction: float | None) -> BoolArray:
        rows = np.flatnonzero(candidates)
        n = count if count is not None else round((fraction or 0.0) * len(rows))
        chosen = self.rng.choice(rows, size=min(n, len(rows)), replace=False)
        mask = np.zeros(len(candidates), dtype=bool)
        mask[chosen] = True
        return mask

    def _drop(self, event: DeviceDrop, dropped: list[BoolArray]) -> str:
        mask = self._pick(
            self.fleet.select(event.kinds, event.feeders, online=True), event.count, event.fraction
        )
        dropped.append(mask)
        return _ids(self.fleet.set_online(mask, False, "mass device drop"))

    def _recover(self, dropped: list[BoolArray]) -> str:
        return _ids(self.fleet.set_online(dropped[0], True, "recovered after mass drop"))

    def _surge(self, event: EvArrivalSurge) -> str:
        mask = self._pick(self.fleet.select([DerKind.EV_CHARGER], event.feeders), event.count, event.fraction)
        arrived = self.fleet.ev_surge(mask, event.energy_wh, event.dwell.total_seconds())
        return f"{arrived} vehicles arrived"

    def advance(self, now: datetime) -> list[AppliedEvent]:
        """Apply every action due by ``now`` at its own time, then step the fleet to ``now``."""
        t_now = utc(now).timestamp()
        done: list[AppliedEvent] = []
        while self._actions and self._actions[-1].t_s <= t_now:
            action = self._actions.pop()
            at = datetime.fromtimestamp(action.t_s, UTC)
            self.fleet.step(at)
            done.append(AppliedEvent(at, action.description, action.run()))
        self.fleet.step(now)
        self.applied.extend(done)
        return done

    async def run(
        self, clock: Clock, *, on_step: StepCallback | None = None, until: datetime | None = None
    ) -> None:
        """Step every ``scenario.step_s`` of ``clock`` time until the scenario (or ``until``) ends."""
        end = min(self.end, utc(until)) if until is not None else self.end
        if self.fleet.now < self.start:
            self.fleet.step(self.start)
        while True:
            now = min(clock.now(), end)
            self.advance(now)
            if on_step is not None:
                result = on_step(self.fleet)
                if inspect.isawaitable(result):
                    await result
            if now >= end:
                return
            await clock.sleep(min(self.scenario.step_s, (end - now).total_seconds()))


def _done(_: None) -> str:
    return "applied"


def _ids(ids: list[str]) -> str:
    return f"{len(ids)} devices"
