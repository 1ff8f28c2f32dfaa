"""Sign in and out, password change."""

from blueprints.auth.views import bp

__all__ = ["bp"]
