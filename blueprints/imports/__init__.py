"""CSV batch creation of accounts: upload, check, confirm, follow the job."""

from blueprints.imports.views import bp

__all__ = ["bp"]
