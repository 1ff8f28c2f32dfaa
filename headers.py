"""Security headers on every response, and the client address behind a reverse proxy."""

from flask import Flask, Response, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    """Trust the configured reverse proxies and register the after-request hook that sets the headers."""
    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=0)

    defaults = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin")]
    if app.config["SESSION_COOKIE_SECURE"]:
        defaults.append(("Strict-Transport-Security", "max-age=31536000"))

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        """Add each header the view did not set itself (one pass: this runs on every response)."""
        present = {name.lower() for name, _value in response.headers.items()}
        for name, value in defaults:
            if name.lower() not in present:
                response.headers.add(name, value)
        # A staff browser (signed in or half-way) holds a session: its pages and exports are its own.
        if session and request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response
