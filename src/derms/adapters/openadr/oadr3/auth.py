"""OAuth2 client-credentials tokens (RFC 6749 section 4.4) for the 3.0.1 VTN's ``/auth/token``.

Clients are provisioned out of band with a role: ``BL`` (business logic: the utility or the
derms operator, writes programs and events) or ``VEN`` (bound to one ``venName``). Tokens are
opaque random strings kept in memory with their expiry; the scopes of 3.0.1
(``read_all``, ``write_programs``, ``write_events``, ``write_reports``,
``write_subscriptions``, ``write_vens``) follow from the role.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from derms.core.clock import Clock

Role = Literal["BL", "VEN"]

SCOPES: dict[Role, frozenset[str]] = {
    "BL": frozenset({"read_all", "write_programs", "write_events", "write_subscriptions", "write_vens"}),
    "VEN": frozenset({"read_all", "write_reports", "write_subscriptions", "write_vens"}),
}


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    secret: str
    role: Role
    ven_name: str | None = None

    def __post_init__(self) -> None:
        if self.role == "VEN" and not self.ven_name:
            raise ValueError("a VEN client needs its venName")


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    role: Role
    ven_name: str | None
    scopes: frozenset[str]

    @property
    def is_bl(self) -> bool:
        return self.role == "BL"


class AuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class TokenIssuer:
    def __init__(self, clients: list[Client], clock: Clock, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.clients = {c.client_id: c for c in clients}
        self.clock = clock
        self.lifetime = lifetime
        self._tokens: dict[str, tuple[Principal, datetime]] = {}

    def issue(self, form: dict[str, str]) -> dict[str, object]:
        """Answer a token request; raises :class:`AuthError` with the RFC 6749 5.2 error code."""
        if form.get("grant_type") != "client_credentials":
            raise AuthError("unsupported_grant_type", "only client_credentials is supported")
        client = self.clients.get(form.get("client_id", ""))
        if client is None or not hmac.compare_digest(client.secret, form.get("client_secret", "")):
            raise AuthError("invalid_client", "unknown client or wrong secret", 401)
        allowed = SCOPES[client.role]
        requested = frozenset(form.get("scope", "").split()) or allowed
        if not requested <= allowed:
            raise AuthError("invalid_scope", f"scopes not allowed: {' '.join(sorted(requested - allowed))}")
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
        self._tokens[token] = (
            Principal(client.client_id, client.role, client.ven_name, requested),
            now + self.lifetime,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.lifetime.total_seconds()),
            "scope": " ".join(sorted(requested)),
        }

    def principal(self, authorization: str | None) -> Principal | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        found = self._tokens.get(authorization[7:].strip())
        if found is None or found[1] <= self.clock.now():
            return None
        return found[0]
