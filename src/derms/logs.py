"""Structured logging (structlog) for the CLI and services."""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now, so a logger created under a redirected or
    captured stderr keeps working after that stream is closed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, json: bool = False, level: str = "INFO") -> None:
    """Key-value logs to stderr: coloured for a terminal, JSON lines when ``json``."""
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    # pandapower announces optional plotting back-ends at import; that is not an operator's concern.
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),
        cache_logger_on_first_use=True,
    )
