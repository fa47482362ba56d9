"""Scenario files: YAML scripts of events (heat wave, cloud cover, device drops and failures,
EV arrival surges) at offsets from a start time, validated with pydantic.

Example (``src/derms/sim/scenarios/heat_event_drop.yaml``)::

    name: heat_event_drop
    start: 2026-07-15T05:00:00Z     # 00:00 local standard time at the weather station
    duration: PT24H                 # ISO 8601 durations, or seconds
    events:
      - {type: heat_wave, at: PT11H, duration: PT9H, delta_c: 5.0}
      - {type: device_drop, at: PT15H, count: 200, recover_after: PT90M}

Use :func:`load_scenario` for a file or :func:`builtin_scenario` for one shipped with derms;
both raise :class:`derms.core.errors.ValidationFailed` listing every problem with its place.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from derms.core.der import DerKind
from derms.core.errors import ValidationFailed

PositiveDuration = Annotated[timedelta, Field(gt=timedelta(0))]
Offset = Annotated[timedelta, Field(ge=timedelta(0), description="offset from the scenario start")]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Offset

    def end_offset(self) -> timedelta:
        """Offset by which the event is over (its last action)."""
        return self.at


class _Windowed(_Event):
    duration: PositiveDuration
    feeders: list[str] | None = None
    """Feeder ids affected; all feeders when omitted."""

    def end_offset(self) -> timedelta:
        return self.at + self.duration


class HeatWave(_Windowed):
    """Outdoor temperature raised by ``delta_c`` [K] over ``[at, at + duration)``."""

    type: Literal["heat_wave"]
    delta_c: Annotated[float, Field(gt=0.0, le=20.0)]


class CloudCover(_Windowed):
    """Plane-of-array irradiance scaled by ``irradiance_factor`` over the window."""

    type: Literal["cloud_cover"]
    irradiance_factor: Annotated[float, Field(ge=0.0, le=1.0)]


class _Counted(_Event):
    count: Annotated[int, Field(gt=0)] | None = None
    fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    feeders: list[str] | None = None

    @model_validator(mode="after")
    def _count_or_fraction(self) -> Self:
        if (self.count is None) == (self.fraction is None):
            raise ValueError("give exactly one of count or fraction")
        return self


class DeviceDrop(_Counted):
    """``count`` devices (or a ``fraction`` of the matching ones) go offline at once."""

    type: Literal["device_drop"]
    kinds: list[DerKind] | None = None
    recover_after: PositiveDuration | None = None

    def end_offset(self) -> timedelta:
        return self.at + (self.recover_after or timedelta(0))


class DeviceFailure(_Event):
    """One device fails (goes offline), optionally recovering."""

    type: Literal["device_failure"]
    der_id: str
    recover_after: PositiveDuration | None = None

    def end_offset(self) -> timedelta:
        return self.at + (self.recover_after or timedelta(0))


class EvArrivalSurge(_Counted):
    """Vehicles plug in at once at idle chargers, each wanting ``energy_wh`` within ``dwell``."""

    type: Literal["ev_arrival_surge"]
    energy_wh: Annotated[float, Field(gt=0.0)] = 20_000.0
    dwell: PositiveDuration = timedelta(hours=4)


type Event = Annotated[
    HeatWave | CloudCover | DeviceDrop | DeviceFailure | EvArrivalSurge, Field(discriminator="type")
]


class Scenario(BaseModel):
    """A scripted simulation: start, duration, step and events at offsets from the start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    start: AwareDatetime
    duration: PositiveDuration
    step_s: Annotated[float, Field(gt=0.0)] = 60.0
    """Simulated seconds between telemetry samples."""
    speed: Annotated[float, Field(gt=0.0)] = 360.0
    """Simulated seconds per wall-clock second in accelerated mode."""
    seed: int = 0
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _events_inside(self) -> Self:
        late = [
            f"events.{i}: starts at {e.at} but the scenario lasts {self.duration}"
            for i, e in enumerate(self.events)
            if e.at >= self.duration
        ]
        if late:
            raise ValueError("; ".join(late))
        return self


SCENARIOS = resources.files("derms.sim") / "scenarios"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario YAML; raises :class:`ValidationFailed` naming every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed([f"{source}: not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ValidationFailed([f"{source}: a scenario is a YAML mapping, got {type(data).__name__}"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            [
                f"{source}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                for err in exc.errors()
            ]
        ) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed([f"{path}: cannot read scenario: {exc.strerror or exc}"]) from exc
    return parse_scenario(text, str(path))


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with derms."""
    return sorted(p.name.removesuffix(".yaml") for p in SCENARIOS.iterdir() if p.name.endswith(".yaml"))


def builtin_scenario(name: str) -> Scenario:
    """A scenario shipped with derms, by name (e.g. ``summer_day``)."""
    if name not in builtin_scenarios():
        raise ValidationFailed([f"no built-in scenario {name!r}; have {', '.join(builtin_scenarios())}"])
    resource = SCENARIOS / f"{name}.yaml"
    return parse_scenario(resource.read_text(encoding="utf-8"), f"derms.sim/scenarios/{name}.yaml")


def resolve_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, else a scenario file by path."""
    if isinstance(name_or_path, str) and name_or_path in builtin_scenarios():
        return builtin_scenario(name_or_path)
    return load_scenario(name_or_path)
