"""One log line per request (method, path with its secrets masked, status, time, request id), as text
or as JSON (LOG_FORMAT=json), and the request's figures for the metrics.

The request id is the front proxy's X-Request-ID when it sends a plausible one (deploy/nginx.conf passes
nginx's $request_id), else a new one; the response carries it back, and every line logged while the
request runs names it. No query string is logged (it holds searches, that is customer data) and no header.
"""

import json
import logging
import re
import secrets
import time

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

import metrics
import redact

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# The methods the duration histogram names; any other (a client may send any token) counts as "other",
# so no client can add label values without end.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
logger = logging.getLogger("provisio.request")
# The histogram's series per (endpoint, method), looked up once: labels() checks and locks on each call.
_timers: dict[tuple[str, str], object] = {}


class RequestIdFilter(logging.Filter):
    """Give every record the id of the request it was logged in ("-" outside one); the request line
    brings its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and a request's fields."""

    FIELDS = ("method", "path", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage(),
                 "request_id": getattr(record, "request_id", "-")}
        entry.update({name: getattr(record, name) for name in self.FIELDS if hasattr(record, name)})
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def init_app(app: Flask) -> None:
    """Set the request logger up (once a process) and time every request."""
    _configure(app.config["LOG_FORMAT"])
    app.before_request(_start)
    app.after_request(_finish)


def _configure(log_format: str) -> None:
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(
        "%(asctime)s %(message)s id=%(request_id)s")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())  # stderr: the journal under systemd
        logger.setLevel(logging.INFO)
        logger.propagate = False
        redact.install(logger)
    # The development server's own request lines (flask run) name the path too.
    redact.install(logging.getLogger("werkzeug"))
    for handler in (*logger.handlers, default_handler):
        if not any(isinstance(existing, RequestIdFilter) for existing in handler.filters):
            handler.addFilter(RequestIdFilter())
    logger.handlers[0].setFormatter(formatter)
    if log_format == "json":
        default_handler.setFormatter(JsonFormatter())


# Both hooks run on every request: each looks the request and g up once (every use of Flask's proxies
# is a lookup of its own).
def _start() -> None:
    given = request._get_current_object().environ.get("HTTP_X_REQUEST_ID", "")
    here = g._get_current_object()
    here.request_id = given if REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
    here.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    here = g._get_current_object()
    started = here.get("request_started")
    if started is None:  # a request refused before before_request ran
        return response
    seconds = time.perf_counter() - started
    current = request._get_current_object()
    method, status, request_id = current.method, response.status_code, here.request_id
    key = (current.endpoint or "unmatched", method if method in METHODS else "other")
    timer = _timers.get(key) or _timers.setdefault(key, metrics.REQUEST_SECONDS.labels(*key))
    timer.observe(seconds)
    response.headers.add("X-Request-ID", request_id)  # no view sets it
    duration_ms = round(seconds * 1000, 1)
    path = redact.mask(current.path)  # once for both; the logger's SecretFilter masks the line again
    logger.info("%s %s %s %.1fms", method, path, status, duration_ms,
                extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms,
                       "request_id": request_id})
    return response
