"""For operators: liveness, readiness and Prometheus metrics. No session, no CSRF, GET only."""

from blueprints.ops.views import bp

__all__ = ["bp"]
