"""Security headers on every response, and the client address behind a reverse proxy."""

import functools
import re
from urllib.parse import urlsplit

from flask import Flask, Response, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from extensions import END_USER_PREFIX

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A host as a CSP source may write it: a name, an IPv4 or an IPv6 address (nothing that could end the
# directive, such as ; or a space).
CSP_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


@functools.lru_cache(maxsize=256)
def csp_with_form_targets(urls: tuple[str, ...]) -> str:
    """The policy, letting forms also reach the origins of `urls` (http and https ones).

    `form-action` governs where a form submission may go and where its redirects may lead, in every
    browser: a form whose answer redirects to another origin (Install's 303 to an app store) needs that
    origin here.
    """
    origins = sorted({origin for url in urls if (origin := _origin(url))})
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *origins]))


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or not CSP_HOST.fullmatch(host):
        return None
    if ":" in host:
        host = f"[{host}]"  # urlsplit drops an IPv6 host's brackets
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def init_app(app: Flask) -> None:
    """Trust the configured reverse proxies and register the after-request hook that sets the headers."""
    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=0)

    defaults = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                ("X-Frame-Options", "DENY")]
    if app.config["SESSION_COOKIE_SECURE"]:
        defaults.append(("Strict-Transport-Security", "max-age=31536000"))
    # The end user's link pages (and their error pages) carry the link in their URL: no cache keeps them
    # and no Referer names them.
    other_pages = _lowered([*defaults, ("Referrer-Policy", "same-origin")])
    link_pages = _lowered([*defaults, ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")])

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        """Add each header the view did not set itself (one pass: this runs on every response)."""
        headers, current = response.headers, request._get_current_object()
        present = {name.lower() for name, _value in headers}
        pages = link_pages if current.path.startswith(END_USER_PREFIX + "/") else other_pages
        for lower, name, value in pages:
            if lower not in present:
                headers.add(name, value)
        # A staff browser (signed in or half-way) holds a session: its pages and exports are its own.
        if session and current.endpoint != "static":
            headers["Cache-Control"] = "no-store"
        return response


def _lowered(headers: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(lower-case name, name, value): header names compare case-insensitively."""
    return [(name.lower(), name, value) for name, value in headers]
