"""What the console watches: commands, device drops, alarms and a history of fleet roll-ups.

One :class:`ConsoleMonitor` per runtime subscribes to ``command.state`` and ``der.status.>``
on the bus and samples the columnar fleet state once per wall second. A mass drop is many
devices going offline within a short window of simulated/real time (default: at least 20
within 5 minutes); it opens a :class:`DropIncident` holding the per-feeder roll-up taken
just before the first device of the burst went offline, so the drill view can say what was
lost against what was there.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray
from sqlalchemy import select

from derms.bus import Message, Subscription
from derms.core.errors import NotFound
from derms.core.events import COMMAND_STATE, DER_STATUS, OBJECTIVE
from derms.core.tasks import cancel_and_wait
from derms.fleet import FeederRollup, rollup
from derms.orchestration.tables import commands as orch_commands
from derms.runtime import Runtime

log = structlog.get_logger(__name__)

TERMINAL_STATES = frozenset({"completed", "failed", "superseded", "cancelled", "rejected", "expired"})


@dataclass(slots=True)
class Alarm:
    """One alarm; ``kind`` is ``violation``, ``lost_devices``, ``under_delivery`` or ``command``."""

    id: int
    kind: str
    severity: str
    message: str
    raised_at: datetime
    target: str = ""
    acked_by: str | None = None
    acked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "raised_at": self.raised_at.isoformat(),
            "target": self.target,
            "acked_by": self.acked_by,
            "acked_at": None if self.acked_at is None else self.acked_at.isoformat(),
        }


@dataclass(slots=True)
class CommandRecord:
    """A command as the console saw it on the bus (every adapter reports every transition)."""

    command_id: str
    der_id: str
    feeder_id: str | None
    state: str
    detail: str
    first_seen: datetime
    updated: datetime
    source: str = "api"
    event_id: str | None = None
    labelled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "der_id": self.der_id,
            "feeder_id": self.feeder_id,
            "state": self.state,
            "detail": self.detail,
            "first_seen": self.first_seen.isoformat(),
            "updated": self.updated.isoformat(),
            "source": self.source,
            "event_id": self.event_id,
        }


@dataclass(slots=True)
class DropIncident:
    """A mass drop: the rows that went offline, when, and the roll-up just before it."""

    id: int
    started_at: datetime
    detected_wall: float
    rows: set[int]
    baseline: FeederRollup
    lost_up_w: NDArray[np.float64]
    lost_down_w: NDArray[np.float64]
    recovered: set[int] = field(default_factory=set)
    alarm_id: int | None = None

    @property
    def active(self) -> bool:
        return len(self.recovered) < len(self.rows)


@dataclass(slots=True)
class DispatchEvent:
    """A hand dispatch of a feeder or group: its target and what was measured since."""

    id: str
    feeder_id: str
    direction: str
    target_w: float
    baseline_p_w: float
    started_at: datetime
    end_at: datetime
    actor: str
    command_ids: list[str]
    refused: int = 0
    delivered_w: float = 0.0
    under_delivery_alarm: int | None = None

    def as_dict(self) -> dict[str, Any]:
        ratio = self.delivered_w / self.target_w if self.target_w > 0 else 0.0
        return {
            "id": self.id,
            "feeder_id": self.feeder_id,
            "direction": self.direction,
            "target_w": self.target_w,
            "delivered_w": self.delivered_w,
            "delivery_ratio": ratio,
            "started_at": self.started_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "actor": self.actor,
            "commands": len(self.command_ids),
            "refused": self.refused,
        }


class ConsoleMonitor:
    """Bus subscriptions and a once-a-second sampler of the fleet state for the console."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        drop_threshold: int = 20,
        drop_window: timedelta = timedelta(minutes=5),
        sample_s: float = 1.0,
        history_every: timedelta = timedelta(minutes=1),
        max_commands: int = 20_000,
    ) -> None:
        self.rt = runtime
        self.drop_threshold = drop_threshold
        self.drop_window = drop_window
        self.sample_s = sample_s
        self.history_every = history_every
        self.max_commands = max_commands
        self.commands: OrderedDict[str, CommandRecord] = OrderedDict()
        self.sent: dict[str, tuple[str, dict[str, Any]]] = {}
        """Command id → (DER id, control dict) of every command the console sent."""
        self.alarms: list[Alarm] = []
        self.incidents: list[DropIncident] = []
        self.dispatches: list[DispatchEvent] = []
        self.objectives: dict[str, dict[str, Any]] = {}
        """Objectives announced on the bus (``objective.created``), until cancelled or over."""
        self.history: deque[dict[str, Any]] = deque(maxlen=2000)
        self.last_rollup: FeederRollup = rollup(runtime.fleet)
        self.last_sample_wall = 0.0
        self.version = 0
        self.grid: Any = None
        self._recent_offline: deque[tuple[datetime, int]] = deque()
        self._ids = itertools.count(1)
        self._prev_up = np.zeros(0)
        self._prev_down = np.zeros(0)
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._raised: dict[tuple[str, str], int] = {}
        self.sample()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        bus = self.rt.bus
        self._subs = [
            await bus.subscribe(COMMAND_STATE, self._on_command, durable="console-commands"),
            await bus.subscribe(f"{DER_STATUS}.>", self._on_status, durable="console-status"),
            await bus.subscribe(f"{OBJECTIVE}.>", self._on_objective, durable="console-objectives"),
        ]
        self._task = asyncio.create_task(self._sampler(), name="console-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs = []

    async def _sampler(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("console sample failed")
            await asyncio.sleep(self.sample_s)

    # -- sampling ----------------------------------------------------------------------

    def _flex_prev(self) -> None:
        """Remember each online DER's flexibility, so a DER that drops keeps its last value."""
        fleet = self.rt.fleet
        up, down = fleet.flexibility()
        n = len(up)
        if len(self._prev_up) < n:
            self._prev_up = np.concatenate([self._prev_up, np.zeros(n - len(self._prev_up))])
            self._prev_down = np.concatenate([self._prev_down, np.zeros(n - len(self._prev_down))])
        online = fleet.online[:n]
        self._prev_up[:n][online] = up[online]
        self._prev_down[:n][online] = down[online]

    def sample(self) -> None:
        """Refresh the roll-up, power flow, history, alarms and delivery tracking."""
        now = self.rt.clock.now()
        self._flex_prev()
        self.last_rollup = rollup(self.rt.fleet)
        if self.grid is not None:
            self.grid.solve()
            self._grid_alarms()
        if not self.history or now - self.history[-1]["at"] >= self.history_every:
            fleet = self.last_rollup.fleet()
            point = {"at": now, **{k: fleet[k] for k in ("p_w", "flex_up_w", "flex_down_w", "online")}}
            point["feeders"] = {
                rec["feeder_id"]: rec["p_w"] for rec in self.last_rollup.records() if rec["feeder_id"]
            }
            if self.grid is not None and self.grid.result is not None:
                point["substation_p_w"] = self.grid.substation_load()
            self.history.append(point)
        self._track_dispatches(now)
        self.last_sample_wall = time.monotonic()
        self.version += 1

    # -- alarms ------------------------------------------------------------------------

    def raise_alarm(self, kind: str, severity: str, message: str, target: str = "") -> Alarm:
        """Raise an alarm once per (kind, target) while it is unacknowledged."""
        key = (kind, target)
        if key in self._raised:
            existing = next(a for a in self.alarms if a.id == self._raised[key])
            existing.message = message
            return existing
        alarm = Alarm(next(self._ids), kind, severity, message, self.rt.clock.now(), target)
        self.alarms.append(alarm)
        self._raised[key] = alarm.id
        self.version += 1
        return alarm

    def acknowledge(self, alarm_id: int, username: str) -> Alarm:
        for alarm in self.alarms:
            if alarm.id == alarm_id:
                if alarm.acked_by is None:
                    alarm.acked_by = username
                    alarm.acked_at = self.rt.clock.now()
                    self._raised.pop((alarm.kind, alarm.target), None)
                    self.version += 1
                return alarm
        raise NotFound("alarm", str(alarm_id))

    def open_alarms(self) -> list[Alarm]:
        return [a for a in self.alarms if a.acked_by is None]

    def _grid_alarms(self) -> None:
        for kind, target, message in self.grid.violations():
            self.raise_alarm("violation", "high", message, f"{kind}:{target}")

    # -- bus handlers ------------------------------------------------------------------

    def _feeder_of(self, der_id: str) -> str | None:
        fleet = self.rt.fleet
        row = fleet.index.get(der_id)
        if row is None or fleet.feeder[row] < 0:
            return None
        return fleet.feeder_ids[fleet.feeder[row]]

    def note_command(
        self,
        command_id: str,
        der_id: str,
        control: dict[str, Any],
        source: str,
        event_id: str | None = None,
    ) -> None:
        """Record a command the console itself sent (before or after its first bus report)."""
        self.sent[command_id] = (der_id, control)
        now = self.rt.clock.now()
        rec = self.commands.get(command_id)
        if rec is None:
            rec = CommandRecord(command_id, der_id, self._feeder_of(der_id), "sent", "", now, now)
            self._remember(rec)
        rec.source = source
        rec.event_id = event_id

    def _remember(self, rec: CommandRecord) -> None:
        self.commands[rec.command_id] = rec
        while len(self.commands) > self.max_commands:
            self.commands.popitem(last=False)

    async def _on_command(self, message: Message) -> None:
        data = message.data
        ts = datetime.fromisoformat(data["ts"]) if data.get("ts") else self.rt.clock.now()
        rec = self.commands.get(data["command_id"])
        state = str(data["state"]).lower()
        if rec is None:
            rec = CommandRecord(
                data["command_id"], data["der_id"], self._feeder_of(data["der_id"]), state, "", ts, ts
            )
            self._remember(rec)
        rec.state, rec.detail, rec.updated = state, data.get("detail", ""), ts
        if state == "failed":
            self.raise_alarm(
                "command", "medium", f"command to {rec.der_id} failed: {rec.detail}", f"der/{rec.der_id}"
            )
        self.version += 1

    async def _on_objective(self, message: Message) -> None:
        data = message.data
        if message.subject.endswith(".created") and "id" in data:
            self.objectives[str(data["id"])] = data
        elif message.subject.endswith(".cancelled"):
            self.objectives.pop(str(data.get("id")), None)
        self.version += 1

    def objectives_for(self, feeder_id: str | None) -> list[dict[str, Any]]:
        """Objectives not yet over that apply to the whole system or name ``feeder_id``
        (``feeder_id=None``: all of them)."""
        now = self.rt.clock.now()
        out = []
        for obj in self.objectives.values():
            start = datetime.fromisoformat(obj["start"])
            if start + timedelta(seconds=float(obj.get("duration_s", 0))) <= now:
                continue
            area = obj.get("area") or {}
            level, ids = area.get("level", "system"), area.get("ids") or []
            if feeder_id is None or level == "system" or (level == "feeder" and feeder_id in ids):
                out.append({**obj, "active": start <= now})
        return out

    async def _on_status(self, message: Message) -> None:
        data = message.data
        der_id = data.get("der_id")
        row = self.rt.fleet.index.get(der_id) if der_id else None
        if row is None:
            return
        ts = datetime.fromisoformat(data["ts"]) if data.get("ts") else self.rt.clock.now()
        if data.get("online"):
            for incident in self.incidents:
                if row in incident.rows:
                    incident.recovered.add(row)
            self.version += 1
            return
        self._offline(ts, row)

    def _offline(self, ts: datetime, row: int) -> None:
        current = self.incidents[-1] if self.incidents else None
        if current is not None and current.active and ts - current.started_at <= self.drop_window:
            self._add_to_incident(current, [row])
            return
        recent = self._recent_offline
        recent.append((ts, row))
        while recent and ts - recent[0][0] > self.drop_window:
            recent.popleft()
        if len(recent) >= self.drop_threshold:
            rows = [r for _, r in recent]
            incident = DropIncident(
                id=next(self._ids),
                started_at=recent[0][0],
                detected_wall=time.monotonic(),
                rows=set(),
                baseline=self.last_rollup,
                lost_up_w=np.zeros(len(self.last_rollup.feeder_ids)),
                lost_down_w=np.zeros(len(self.last_rollup.feeder_ids)),
            )
            recent.clear()
            self.incidents.append(incident)
            self._add_to_incident(incident, rows)
        self.version += 1

    def _add_to_incident(self, incident: DropIncident, rows: list[int]) -> None:
        fleet = self.rt.fleet
        new = np.array([r for r in rows if r not in incident.rows], np.int64)
        if len(new) == 0:
            return
        incident.rows.update(new.tolist())
        n_slots = len(incident.lost_up_w)
        slot = np.where(fleet.feeder[new] >= 0, fleet.feeder[new], n_slots - 1)
        slot = np.minimum(slot, n_slots - 1)
        up = self._prev_up[new] if len(self._prev_up) > new.max() else np.zeros(len(new))
        down = self._prev_down[new] if len(self._prev_down) > new.max() else np.zeros(len(new))
        np.add.at(incident.lost_up_w, slot, up)
        np.add.at(incident.lost_down_w, slot, down)
        feeders = sorted({fleet.feeder_ids[f] for f in fleet.feeder[list(incident.rows)] if f >= 0})
        alarm = self.raise_alarm(
            "lost_devices",
            "high",
            f"mass drop: {len(incident.rows)} devices offline on {', '.join(feeders) or 'unmapped'}; "
            f"{incident.lost_up_w.sum() / 1e3:.0f} kW up-flexibility lost",
            f"incident/{incident.id}",
        )
        incident.alarm_id = alarm.id
        self.version += 1

    def label_sources(self, records: list[CommandRecord]) -> None:
        """Name the orchestrator's plan and objective for commands found in its dispatch
        table (``orchestration_command``, written by ``derms.orchestration.tracker``); the
        rest stay ``api`` (direct API commands) unless the console sent them itself."""
        todo = {r.command_id: r for r in records if not r.labelled and r.source == "api"}
        if not todo:
            return
        with self.rt.engine.connect() as conn:
            rows = conn.execute(
                select(orch_commands.c.id, orch_commands.c.plan_id, orch_commands.c.objective_id).where(
                    orch_commands.c.id.in_(list(todo))
                )
            ).all()
        for cid, plan_id, objective_id in rows:
            todo[cid].source = f"orchestrator:{plan_id}"
            todo[cid].event_id = objective_id
        for rec in todo.values():
            rec.labelled = True

    # -- dispatch delivery -------------------------------------------------------------

    def _track_dispatches(self, now: datetime) -> None:
        if not self.dispatches:
            return
        by_feeder = {rec["feeder_id"]: rec["p_w"] for rec in self.last_rollup.records()}
        for event in self.dispatches:
            if now > event.end_at:
                continue
            delta = by_feeder.get(event.feeder_id, event.baseline_p_w) - event.baseline_p_w
            event.delivered_w = max(0.0, delta if event.direction == "up" else -delta)
            settled = now - event.started_at >= timedelta(minutes=2)
            if settled and event.target_w > 0 and event.delivered_w < 0.8 * event.target_w:
                alarm = self.raise_alarm(
                    "under_delivery",
                    "medium",
                    f"dispatch {event.id} on {event.feeder_id}: {event.delivered_w / 1e3:.0f} of "
                    f"{event.target_w / 1e3:.0f} kW delivered",
                    f"dispatch/{event.id}",
                )
                event.under_delivery_alarm = alarm.id
