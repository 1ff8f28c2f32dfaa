"""Administrator pages: groups, provisioning profiles, staff users, audit log."""

from blueprints.admin.views import bp

__all__ = ["bp"]
