"""The client API, /api/client/v1: licence, heartbeat, configuration and public keys. No cookies, no CSRF."""

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import BadRequest

from extensions import csrf
from services import devices, settings
from services.devices import ApiError

bp = Blueprint("api", __name__, url_prefix="/api/client/v1")
csrf.exempt(bp)  # bearer credentials, never cookies: nothing for a forged request to ride on
MAX_BODY = 16 * 1024


@bp.before_request
def authenticate():
    """Every call carries the device credential from the activation file as a bearer token."""
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"Request bodies are limited to {MAX_BODY} bytes.")
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    g.device = devices.authenticate(credential.strip() if scheme.lower() == "bearer" else "")


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    """Answer a refusal as JSON with a machine-readable code."""
    response = jsonify(error=error.code, message=error.message)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="provisio"'
    return response, error.status


@bp.route("/licence", methods=["POST"])
def licence():
    """Validate the licence; the first call binds it to this device."""
    return jsonify(devices.validate_licence(g.device))


@bp.route("/heartbeat", methods=["POST"])
def heartbeat():
    """Report that the client is registered."""
    body = _json_body(required=False)
    version = body.get("app_version")
    # PostgreSQL text cannot hold NUL: refuse it here rather than answer 500 at the commit.
    if version is not None and (not isinstance(version, str) or "\x00" in version):
        raise ApiError(400, "invalid_body", "app_version must be a string.")
    return jsonify(devices.heartbeat(g.device, ip=request.remote_addr, app_version=version,
                                     interval=settings.get("keepalive_interval")))


@bp.route("/config")
def config():
    """Return the current configuration; If-None-Match with the last ETag gives 304."""
    current = devices.current_config(g.device, settings.get_all())
    if current.etag in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{current.etag}"', "Cache-Control": "no-store"})
    response = jsonify(current.document)
    response.set_etag(current.etag)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/keys", methods=["PUT"])
def upload_key():
    """Upload the account's public key (PEM)."""
    key = _json_body(required=True).get("public_key")
    if not isinstance(key, str) or not key.strip():
        raise ApiError(400, "invalid_body", "Send {\"public_key\": \"<PEM>\"}.")
    stored = devices.upload_key(g.device, key)
    return jsonify(fingerprint=stored.fingerprint), 201


@bp.route("/keys/<username>")
def peer_key(username: str):
    """Return a peer's current public key; revoked keys are never returned."""
    key = devices.peer_key(g.device, username[:64])
    return jsonify(username=username, public_key=key.key_pem, fingerprint=key.fingerprint)


def _json_body(*, required: bool) -> dict:
    if not request.content_length and not required:
        return {}
    try:
        body = request.get_json(force=True)
    except BadRequest:
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return body


