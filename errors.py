"""One error handler: HTML for people, JSON under /api, a rollback before every 5xx page."""

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError
from werkzeug.exceptions import NotFound as HTTPNotFound

import redact
from extensions import db
from services.errors import Invalid, NotFound


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(HTTPException, handle_http_error)
    # A service's NotFound (including another group's object) is a plain 404.
    app.register_error_handler(NotFound, lambda error: handle_http_error(HTTPNotFound(error.message)))
    # Input a rule refused and no view caught (a broken page cursor, say) is the client's error: 400, not 500.
    app.register_error_handler(Invalid, lambda error: handle_http_error(BadRequest(error.message)))
    app.register_error_handler(Exception, handle_unexpected)
    # Whatever the app logs (a bug's traceback, the worker's failures) has its link tokens masked.
    redact.install(app.logger)


def handle_http_error(error: HTTPException):
    """Answer an HTTP error in the form the client reads."""
    if error.code and error.code >= 500:
        db.session.rollback()
    title = error.name
    description = error.description
    if isinstance(error, CSRFError):
        title = "Form expired"
        description = ("The form was missing its security token or it expired. "
                       "Go back, reload the page and try again.")
    if request.path.startswith("/api/"):
        code = title.lower().replace(" ", "_")
        return jsonify(error=code, message=description), error.code
    page = render_template(error_template(), code=error.code, title=title, description=description)
    return page, error.code


def error_template() -> str:
    """The end user's pages (under /m/) get an error page of their own kind, with nothing of the console."""
    return "mobile/error.html" if request.path.startswith("/m/") else "errors/error.html"


def handle_unexpected(error: Exception):
    """Log a bug without request data or the path's secrets (a link token) and show a plain 500."""
    db.session.rollback()
    current_app.logger.error("unhandled %s on %s %s", type(error).__name__, request.method,
                             redact.mask(request.path), exc_info=error)
    return handle_http_error(InternalServerError())
