"""Settings of the OCPP central system."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

SUBPROTOCOLS = ("ocpp2.0.1", "ocpp2.1", "ocpp1.6")
"""Websocket subprotocols offered, in order of preference (OCPP-J 1.6 clause 3.1.2; 2.0.1 part 4, 3.1;
2.1 part 4). 2.0.1 comes first because it is the most deployed of the 2.x versions."""


class OcppSettings(BaseModel):
    """Where the CSMS listens and how charge points authenticate.

    Security profile 1 (OCPP 2.0.1 part 2, A00.FR.2xx; OCPP 1.6 security whitepaper): HTTP
    basic auth with the charge point id as user name, over plain websockets. Profile 2: the
    same over TLS (give ``tls_certfile``/``tls_keyfile``). With ``passwords`` empty and
    ``allow_anonymous`` true (profile 0, test benches only) any charge point may connect.
    """

    host: str = "127.0.0.1"
    port: int = 9000
    path_prefix: str = "/ocpp"
    subprotocols: tuple[str, ...] = SUBPROTOCOLS
    passwords: dict[str, str] = Field(default_factory=dict)
    """Charge point id -> basic-auth password."""
    allow_anonymous: bool = False
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    heartbeat_interval_s: int = 300
    response_timeout_s: float = 30.0
    nominal_voltage_v: float = 230.0
    """Phase voltage used to express an amp schedule in watts (and back)."""
