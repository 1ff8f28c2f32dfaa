"""Settings XML for Snom desk phones, by MAC address or by a first-boot link."""

from flask import Blueprint, Response, jsonify, request

from extensions import csrf
from services import links, settings, snom
from services.devices import ApiError

bp = Blueprint("snom", __name__, url_prefix="/snom")
csrf.exempt(bp)


@bp.errorhandler(ApiError)
def refused(error: ApiError):
    """Phones get a status and a short JSON reason."""
    return jsonify(error=error.code, message=error.message), error.status


@bp.errorhandler(links.LinkGone)
def gone(_error: links.LinkGone):
    """A dead first-boot link."""
    return jsonify(error="link_gone", message="This link has expired or was replaced."), 410


@bp.route("/<mac>.xml")
def by_mac(mac: str):
    """Serve a phone's settings, if its address passes the account's deny/permit rules."""
    if len(mac) != 12 or any(c not in "0123456789abcdefABCDEF" for c in mac):
        raise ApiError(404, "not_found", "No phone with this MAC address.")
    return _xml(snom.settings_for_mac(mac, ip=request.remote_addr, user_agent=request.user_agent.string))


@bp.route("/first/<token>.xml")
def first_boot(token: str):
    """Serve a new phone's settings from a secure link and bind its MAC address."""
    return _xml(snom.first_boot(token, ip=request.remote_addr, user_agent=request.user_agent.string,
                                max_age_hours=settings.get("link_max_age_hours")))


def _xml(file) -> Response:
    return Response(file.body, mimetype=file.mimetype, headers={"Cache-Control": "no-store"})
