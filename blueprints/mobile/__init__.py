"""The end user's secure link: landing page, install and activation. No login; the token is the key."""

from blueprints.mobile.views import bp

__all__ = ["bp"]
