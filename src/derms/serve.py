"""Run the API server and the runtime together in one event loop."""

from __future__ import annotations

import uvicorn

from derms.api.app import create_app
from derms.runtime import Runtime
from derms.settings import Settings


def api_server(runtime: Runtime, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(runtime), host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)


async def serve_forever(settings: Settings, *, host: str, port: int) -> None:
    runtime = Runtime.create(settings)
    await runtime.start()
    try:
        await api_server(runtime, host, port).serve()
    finally:
        await runtime.stop()
