"""Settings of the SunSpec Modbus master."""

from __future__ import annotations

from pydantic import BaseModel


class SunSpecSettings(BaseModel):
    """How often and how patiently devices are polled."""

    poll_interval_s: float = 5.0
    timeout_s: float = 2.0
    """Per Modbus request."""
    retries: int = 1
    max_concurrency: int = 64
    """Devices polled at the same time."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
