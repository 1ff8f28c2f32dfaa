"""gunicorn settings of deploy/provisio-web.service (`--config`): logs with credentials masked.

gunicorn writes request lines and URLs to its error log (a malformed request, an error while
sending a response) and, when an access log is enabled, one line per request with the path and
the Referer. Link tokens and receipt secrets are path segments: its loggers mask them (redact.py).
"""

import os
import sys

from gunicorn.glogging import Logger

# The repository root (WorkingDirectory of the unit), importable before gunicorn loads the app.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redact  # noqa: E402


class MaskingLogger(Logger):
    """gunicorn's logger whose error and access records pass through redact.SecretFilter."""

    def setup(self, cfg) -> None:
        """Set gunicorn's handlers up, then mask both of its loggers (again after a reload)."""
        super().setup(cfg)
        redact.install(self.error_log)
        redact.install(self.access_log)


logger_class = MaskingLogger
