"""The reference adapter: a :class:`~derms.sim.fleet.FleetSimulator` behind the adapter contract.

A periodic loop on the context clock steps the simulator (through a scenario when one is
configured), publishes one telemetry batch for the whole fleet per period, one batch of the
EV chargers', thermostats' and water heaters' kind-specific state
(:meth:`~derms.sim.fleet.FleetSimulator.device_state`, ``der.state.sim``) and every
online/offline change. ``send`` takes a :class:`NativeCommand` whose payload is a core
control (the simulator speaks derms' own vocabulary, see
:class:`derms.bridge.simulated.SimulatedTranslator`) and reports
SENT → ACKNOWLEDGED → ACTIVE → COMPLETED at the command's end, or FAILED with the reason,
or SUPERSEDED when a later command takes the same control slot of the device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import structlog

from derms.adapters.base import Adapter, AdapterContext, NativeCommand
from derms.adapters.simulated.settings import SimulatedSettings
from derms.core.columns import to_ms
from derms.core.controls import CONTROL_TYPES, ControlKind
from derms.core.der import Der
from derms.core.dispatch import CommandState
from derms.core.errors import LimitViolation, NotFound, ValidationFailed
from derms.core.site import Site
from derms.core.tasks import cancel_and_wait
from derms.sim.fleet import FleetSimulator
from derms.sim.runner import ScenarioRunner
from derms.sim.scenario import Scenario, resolve_scenario
from derms.sim.supported import SUPPORTED_CONTROLS

log = structlog.get_logger(__name__)

PROTOCOL = "sim"
_CONTROL_CLASSES = tuple(CONTROL_TYPES.values())


@dataclass(slots=True)
class _Tracked:
    command: NativeCommand
    slot: str = ""


class SimulatedAdapter(Adapter):
    """Simulated DERs (``Der.protocol == "sim"``); ``Der.address`` is ignored."""

    protocol: ClassVar[str] = PROTOCOL
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset().union(*SUPPORTED_CONTROLS.values())

    def __init__(
        self,
        context: AdapterContext,
        settings: SimulatedSettings | None = None,
        *,
        ders: Iterable[Der] = (),
        sites: Iterable[Site] = (),
        scenario: Scenario | None = None,
    ) -> None:
        super().__init__(context)
        self.settings = settings or SimulatedSettings()
        self._registered: dict[str, Der] = {}
        for der in ders:
            self._check_protocol(der)
            self._registered[der.id] = der
        self._sites = list(sites)
        if scenario is None and self.settings.scenario:
            scenario = resolve_scenario(self.settings.scenario)
        self._scenario = scenario
        self._fleet: FleetSimulator | None = None
        self._runner: ScenarioRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._scheduled: dict[str, _Tracked] = {}
        self._active: dict[str, _Tracked] = {}

    @property
    def fleet(self) -> FleetSimulator:
        """The running simulator (after :meth:`start`)."""
        if self._fleet is None:
            raise RuntimeError("the simulated adapter has not been started")
        return self._fleet

    @property
    def runner(self) -> ScenarioRunner | None:
        return self._runner

    def _check_protocol(self, der: Der) -> None:
        if der.protocol != PROTOCOL:
            raise ValidationFailed([f"DER {der.id} uses protocol {der.protocol!r}, not {PROTOCOL!r}"])

    async def register_device(self, der: Der) -> None:
        self._check_protocol(der)
        if der.id in self._registered:
            return
        self._registered[der.id] = der
        if self._fleet is not None:
            self._fleet.add([der])
            await self.context.publish_status(der.id, der.enabled, "simulated device registered")

    async def start(self) -> None:
        if self._task is not None:
            return
        clock = self.context.clock
        if self._fleet is None:
            self._fleet = FleetSimulator(
                list(self._registered.values()),
                self._sites,
                start=clock.now(),
                seed=self.settings.seed,
                f_nom_hz=self.settings.f_nom_hz,
                max_substep_s=self.settings.max_substep_s,
            )
            if self._scenario is not None:
                self._runner = ScenarioRunner(self._fleet, self._scenario)
        for der_id in self._fleet.der_ids:
            online = self._fleet.is_online(der_id)
            await self.context.publish_status(
                der_id, online, "simulated device " + ("online" if online else "offline")
            )
        self._task = asyncio.create_task(self._loop(), name="sim-adapter")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("simulated adapter step failed")
            await self.context.clock.sleep(self.settings.period_s)

    async def tick(self) -> None:
        """One period: step to the clock's now, settle commands, publish status and telemetry."""
        fleet = self.fleet
        now = self.context.clock.now()
        if self._runner is not None:
            self._runner.advance(now)
        else:
            fleet.step(now)
        for change in fleet.drain_status_changes():
            await self.context.publish_status(change.der_id, change.online, change.detail)
            if not change.online:
                await self._fail_device_commands(change.der_id, f"device went offline: {change.detail}")
        for cid, tracked in sorted(self._scheduled.items(), key=lambda item: item[1].command.start):
            if tracked.command.start <= now:
                del self._scheduled[cid]
                await self._activate(tracked)
        for cid, tracked in list(self._active.items()):
            if tracked.command.end <= now:
                del self._active[cid]
                await self._report(tracked.command, CommandState.COMPLETED)
        await self.context.publish_telemetry(fleet.samples())
        ids, cols = fleet.device_state()
        await self.context.publish_state_columns(ids, to_ms(fleet.now), cols)

    async def send(self, command: NativeCommand) -> None:
        if command.der_id not in self._registered:
            raise NotFound("der", command.der_id)
        await self._report(command, CommandState.SENT)
        control = command.payload
        if not isinstance(control, _CONTROL_CLASSES):
            await self._report(
                command, CommandState.FAILED, f"payload {type(control).__name__} is not a derms control"
            )
            return
        if self._fleet is None:
            await self._report(command, CommandState.FAILED, "the simulated adapter is not running")
            return
        now = self.context.clock.now()
        if command.end <= now:
            await self._report(command, CommandState.FAILED, "the command's window ended before delivery")
            return
        try:
            self._fleet.check(command.der_id, control)
        except LimitViolation as exc:
            await self._report(command, CommandState.FAILED, exc.reason)
            return
        await self._report(command, CommandState.ACKNOWLEDGED)
        tracked = _Tracked(command)
        if command.start > now:
            self._scheduled[command.command_id] = tracked
        else:
            await self._activate(tracked)

    async def _activate(self, tracked: _Tracked) -> None:
        command = tracked.command
        try:
            tracked.slot = self.fleet.apply(command.der_id, command.payload, until=command.end)
        except LimitViolation as exc:
            await self._report(command, CommandState.FAILED, exc.reason)
            return
        for cid, other in list(self._active.items()):
            if other.command.der_id == command.der_id and other.slot == tracked.slot:
                del self._active[cid]
                await self._report(
                    other.command, CommandState.SUPERSEDED, f"superseded by {command.command_id}"
                )
        self._active[command.command_id] = tracked
        await self._report(command, CommandState.ACTIVE)

    async def _fail_device_commands(self, der_id: str, reason: str) -> None:
        for table in (self._scheduled, self._active):
            for cid, tracked in list(table.items()):
                if tracked.command.der_id == der_id:
                    del table[cid]
                    await self._report(tracked.command, CommandState.FAILED, reason)

    async def _report(self, command: NativeCommand, state: CommandState, detail: str = "") -> None:
        await self.context.report_command(command.command_id, command.der_id, state, detail)


def create_adapter(
    context: AdapterContext,
    settings: SimulatedSettings | None = None,
    *,
    ders: Iterable[Der] = (),
    sites: Iterable[Site] = (),
    scenario: Scenario | None = None,
) -> SimulatedAdapter:
    """Factory the platform calls; ``ders``/``sites`` pre-register a generated fleet."""
    return SimulatedAdapter(context, settings, ders=ders, sites=sites, scenario=scenario)
