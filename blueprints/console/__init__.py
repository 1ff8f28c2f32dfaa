"""The CSR console: dashboard and accounts."""

from blueprints.console.views import bp

__all__ = ["bp"]
