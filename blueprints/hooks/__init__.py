"""Callbacks from providers (delivery receipts). No session, no CSRF: a secret in the URL."""

from blueprints.hooks.views import bp

__all__ = ["bp"]
