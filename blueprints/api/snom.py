"""Settings XML for Snom desk phones, at a per-phone secret URL or a first-boot link."""

from flask import Blueprint, Response, jsonify, request

from extensions import csrf
from services import links, settings, snom
from services.devices import ApiError

bp = Blueprint("snom", __name__, url_prefix="/snom")
csrf.exempt(bp)


@bp.errorhandler(ApiError)
def refused(error: ApiError):
    """Phones get a status and a short JSON reason."""
    response = jsonify(error=error.code, message=error.message)
    if isinstance(error, snom.TooManyFailures):
        response.headers["Retry-After"] = str(error.retry_after)
    return response, error.status


@bp.errorhandler(links.LinkGone)
def gone(_error: links.LinkGone):
    """A dead first-boot link."""
    return jsonify(error="link_gone", message="This link has expired or was replaced."), 410


@bp.before_request
def get_only():
    """A fetch binds a MAC and marks the account activated: only a phone's GET may do that, not HEAD."""
    if request.method == "HEAD":
        return Response(status=405, headers={"Allow": "GET"})
    return None


@bp.route("/<secret>/<mac>.xml")
def by_secret(secret: str, mac: str):
    """Serve a phone's settings at its secret URL, to that phone, if its address passes the rules."""
    return _xml(snom.settings_for_secret(secret, mac, _fetch("secret")))


@bp.route("/first/<token>.xml")
def first_boot(token: str):
    """Serve a new phone's settings from a secure link and bind its MAC address."""
    fetch = _fetch("first_boot")
    return _xml(snom.first_boot(token, fetch, max_age_hours=settings.get("link_max_age_hours")))


def _fetch(via: str) -> snom.Fetch:
    return snom.Fetch(ip=request.remote_addr or "", user_agent=request.user_agent.string, via=via)


def _xml(file) -> Response:
    return Response(file.body, mimetype=file.mimetype, headers={"Cache-Control": "no-store"})
