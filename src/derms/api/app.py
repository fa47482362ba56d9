"""The FastAPI application factory."""

from __future__ import annotations

import importlib

import structlog
from fastapi import FastAPI

from derms import __version__
from derms.api import problems
from derms.api.routes import admin, commands, fleet, objectives, registry, telemetry
from derms.console import router as console_router
from derms.runtime import Runtime

log = structlog.get_logger(__name__)

PROTOCOL_ROUTERS = ("ieee2030_5", "openadr", "ocpp", "sunspec", "dnp3", "cta2045")
"""Protocol packages that may contribute an operator router in ``<pkg>.admin_api:router``."""


def create_app(runtime: Runtime) -> FastAPI:
    """Build the API around an existing runtime (which the caller starts and stops)."""
    app = FastAPI(
        title="derms",
        version=__version__,
        summary="Distributed Energy Resource Management System API",
        description="Authentication: `Authorization: Bearer <token>`. Errors: RFC 9457 problem+json.",
    )
    app.state.runtime = runtime
    problems.install(app)
    for module in (registry, telemetry, fleet, commands, objectives, admin):
        app.include_router(module.router)
    for name in PROTOCOL_ROUTERS:
        try:
            module = importlib.import_module(f"derms.adapters.{name}.admin_api")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"derms.adapters.{name}"):
                continue
            raise
        app.include_router(module.router, prefix=f"/api/v1/{name}", tags=[name])
    app.include_router(console_router)
    return app
