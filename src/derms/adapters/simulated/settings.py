"""Settings of the simulated-device adapter."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimulatedSettings(BaseModel):
    """How the reference adapter runs its fleet simulator.

    ``period_s`` is in the platform clock's seconds: with an accelerated clock a 60 s period
    samples every simulated minute. ``scenario`` names a built-in scenario (``summer_day``,
    ``heat_event_drop``) or a scenario file; without one the fleet runs undisturbed.
    """

    model_config = ConfigDict(extra="forbid")

    period_s: float = Field(default=60.0, gt=0.0)
    """Clock seconds between steps; one telemetry batch for the whole fleet per period."""
    seed: int = 0
    scenario: str | None = None
    f_nom_hz: float = Field(default=60.0, gt=0.0)
    """Nominal grid frequency reported in telemetry [Hz]."""
    max_substep_s: float = Field(default=60.0, gt=0.0)
    """Longest physics step [s]; longer periods are split."""
