"""Run the API server and the runtime together in one event loop."""

from __future__ import annotations

import uvicorn

from derms.api.app import create_app
from derms.console.monitor import ConsoleMonitor
from derms.console.routes import attach
from derms.runtime import Runtime
from derms.settings import Settings


def api_server(runtime: Runtime, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(runtime), host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)


async def start_console(server: uvicorn.Server) -> ConsoleMonitor:
    """Start the console's monitor now, so it watches (and catches drops) from the start,
    not from the first page view."""
    return await attach(server.config.app)


async def serve_forever(settings: Settings, *, host: str, port: int) -> None:
    runtime = Runtime.create(settings)
    await runtime.start()
    server = api_server(runtime, host, port)
    monitor = await start_console(server)
    try:
        await server.serve()
    finally:
        await monitor.stop()
        await runtime.stop()
