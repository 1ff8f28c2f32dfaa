"""Delivery receipt callbacks."""

from flask import Blueprint, request

from extensions import csrf
from services import receipts

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
csrf.exempt(bp)  # providers post here; the secret in the URL is what is checked


@bp.route("/receipts/<any(vonage, clickatell):gateway>/<token>", methods=["POST"])
def receipt(gateway: str, token: str):
    """Record a delivery receipt; a wrong secret is a 404, anything else a 204 so the provider
    stops retrying."""
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    receipts.apply(gateway, token, data if isinstance(data, dict) else {})
    return "", 204
