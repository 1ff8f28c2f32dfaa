"""/healthz (the process answers), /readyz (database, schema, worker, outbox) and /metrics."""

import hmac
import ipaddress

from flask import Blueprint, Response, abort, current_app, jsonify, request

import metrics
from services import health

bp = Blueprint("ops", __name__)


@bp.before_request
def metrics_for_the_operator_only():
    """/metrics answers a bearer of METRICS_TOKEN; without a token, this machine only, never via a proxy."""
    if request.endpoint != "ops.metrics_page":
        return None
    token = current_app.config["METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        allowed = hmac.compare_digest(given.encode(), token.encode())
    else:
        forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        allowed = not forwarded and _is_loopback(request.remote_addr)
    if not allowed:
        abort(404)  # nothing here for anyone else, not even that it exists
    return None


@bp.route("/healthz")
def healthz():
    """The process answers: no database, nothing else, for a liveness probe."""
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    """Can this node serve: the database answers at the newest schema (503 otherwise); worker and outbox."""
    report = health.readiness()
    return jsonify(report), 200 if report["ready"] else 503


@bp.route("/metrics")
def metrics_page():
    """Prometheus' text format."""
    return Response(metrics.scrape(), mimetype="text/plain; version=0.0.4")


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False
