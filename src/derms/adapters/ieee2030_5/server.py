"""Running the 2030.5 app under uvicorn with in-process mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import uvicorn
from fastapi import FastAPI

from derms.adapters.ieee2030_5.tls import ClientCertProtocol


class TlsServer:
    """uvicorn serving ``app`` on ``host:port`` (port 0 picks a free port) with ``context``."""

    def __init__(
        self, app: FastAPI, context: ssl.SSLContext | None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        factory = (lambda _config, _default: context) if context is not None else None
        config = uvicorn.Config(
            app,
            http=ClientCertProtocol,
            ssl_context_factory=factory,
            log_level="warning",
            lifespan="off",
            access_log=False,
            proxy_headers=False,  # the peer is the peer: proxy mode checks the connecting address itself
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._server.config.ssl_context_factory else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving; gives up waiting for TLS close handshakes of idle peers after ``timeout_s``."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout_s)
        self._sock.close()
