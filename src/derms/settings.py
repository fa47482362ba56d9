"""Platform settings, from ``DERMS_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. The defaults are the embedded set-up: SQLite file, in-process bus."""

    model_config = SettingsConfigDict(env_prefix="DERMS_", extra="ignore")

    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: var/derms.sqlite")
    bus_url: str = Field(default="memory", description="'memory' or a NATS URL such as nats://127.0.0.1:4222")
    bus_prefix: str = "derms"
    host: str = "127.0.0.1"
    port: int = 8080
    telemetry_flush_s: float = 1.0
    stale_after_s: float | None = Field(default=900.0, description="mark DERs offline after this silence")
    raw_telemetry_days: float = 31.0
    adapters: str = Field(
        default="",
        description="comma-separated protocols to run: sim, ieee2030_5, openadr, ocpp, sunspec, dnp3, cta2045",
    )

    network: str | None = Field(
        default=None,
        description="grid model to load (a pandapower-shipped network such as mv_oberrhein); "
        "with it and a fleet the orchestration service runs",
    )
    orchestration_tick_s: float = Field(
        default=30.0,
        ge=0.0,
        description="clock seconds between orchestration checks; 0: driven by the caller",
    )

    @property
    def adapter_names(self) -> list[str]:
        return [name.strip() for name in self.adapters.split(",") if name.strip()]

    log_json: bool = False
