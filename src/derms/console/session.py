"""Console sessions: the platform's API token, kept in an HttpOnly, SameSite=Strict cookie.

Users have API tokens only (no passwords), so logging in means presenting a token; the
console checks it exactly as the API does (:func:`derms.api.auth.principal_for_token`) on
every request, so revoking a token ends its console session too. State-changing requests
are JSON-only (a cross-site form cannot send ``application/json`` without a CORS preflight),
which together with SameSite=Strict keeps other sites from acting with the cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from derms.api.auth import Forbidden, Principal, Role, Unauthenticated, principal_for_token

COOKIE = "derms_console"


def session_principal(request: Request) -> Principal:
    """The principal of the console cookie (or of a bearer token, for scripts)."""
    token = request.cookies.get(COOKIE)
    if not token:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        token = bearer.strip() if scheme.lower() == "bearer" else ""
    if not token:
        raise Unauthenticated("not logged in to the console")
    rt = request.app.state.runtime
    with rt.engine.connect() as conn:
        principal = principal_for_token(conn, token, rt.clock.now())
    request.state.principal = principal
    return principal


def console_role(role: Role, *, json_only: bool = False) -> Callable[..., Principal]:
    """Dependency: logged in with at least ``role``; ``json_only`` for state-changing routes."""

    def dependency(
        request: Request, principal: Annotated[Principal, Depends(session_principal)]
    ) -> Principal:
        if json_only and request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Forbidden("console actions must be sent as application/json")
        if principal.role < role:
            raise Forbidden(f"requires role {role.name.lower()}; you are {principal.role.name.lower()}")
        return principal

    return dependency


ConsoleViewer = Annotated[Principal, Depends(console_role(Role.VIEWER))]
ConsoleOperator = Annotated[Principal, Depends(console_role(Role.OPERATOR, json_only=True))]
