"""The node's log lines: text for a person at a terminal, or one JSON object a line for a
log shipper (``--log-format json``), which then needs no pattern to split a line into
its time, level, logger and message, and keeps a traceback with the line it belongs to.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: ``time`` (UTC, ISO 8601, milliseconds),
    ``level``, ``logger``, ``message``, and ``exception`` (the traceback's text) or
    ``stack`` when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Lines stay one line: json.dumps escapes the newlines of a traceback.
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str, level: int | str = logging.INFO) -> None:
    """Send every logger's records to standard error in ``log_format`` (a process
    that configures its own logging: ``coopnode worker``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


def json_log_config(level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary that writes the server's own
    records (uvicorn's, access lines included) and the node's as JSON lines to
    standard error: what ``coopnode serve --log-format json`` hands to uvicorn."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["json"], "level": level.upper()},
    }
