"""Delivery receipt callbacks."""

from flask import Blueprint, request

from extensions import csrf
from services import receipts
from services.errors import Forbidden

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
csrf.exempt(bp)  # providers post here; the secret in the URL is what is checked


@bp.route("/receipts/<any(vonage, clickatell):gateway>/<token>", methods=["POST"])
def receipt(gateway: str, token: str):
    """Record a delivery receipt; a wrong secret is a 404, anything else a 204 so the provider
    stops retrying."""
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    return _apply(gateway, token, data if isinstance(data, dict) else {})


@bp.route("/receipts/<any(vonage):gateway>/<token>", methods=["GET"], provide_automatic_options=False)
def receipt_by_get(gateway: str, token: str):
    """Record a Vonage receipt sent by GET, as Vonage's dashboard may be set to: the one GET that changes
    anything, and only the delivery status of the message the receipt names."""
    if request.method == "HEAD":  # a HEAD is a probe, whoever sends it: answer as GET would, change nothing
        receipts.check_secret(gateway, token)
        return "", 204
    return _apply(gateway, token, request.args.to_dict())


def _apply(gateway: str, token: str, data: dict):
    try:
        receipts.apply(gateway, token, data)
    except Forbidden:
        return "", 403
    return "", 204
