"""JSON for the client app (bearer device credential) and settings XML for Snom desk phones."""

from blueprints.api.snom import bp as snom_bp
from blueprints.api.views import bp

__all__ = ["bp", "snom_bp"]
