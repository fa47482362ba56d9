"""Settings of the OCPP central system."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

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
    """Charge point id -> basic-auth password, as a :func:`hash_password` hash (``scrypt$...``).
    A clear-text value is hashed when the settings are loaded, so the running CSMS never
    holds clear-text passwords; configuration files should carry hashes."""
    allow_anonymous: bool = False
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    heartbeat_interval_s: int = 300
    response_timeout_s: float = 30.0
    nominal_voltage_v: float = 230.0
    """Phase voltage used to express an amp schedule in watts (and back)."""

    @field_validator("passwords")
    @classmethod
    def _hash_clear_text(cls, value: dict[str, str]) -> dict[str, str]:
        return {cp: (pw if pw.startswith(_SCHEME + "$") else hash_password(pw)) for cp, pw in value.items()}


_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1  # RFC 7914 parameters for interactive logins


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<key hex>`` (RFC 7914, N=2^14, r=8, p=1)."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{_SCHEME}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` hash."""
    try:
        scheme, salt_hex, key_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return hmac.compare_digest(key.hex(), key_hex)
