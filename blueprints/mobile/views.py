"""The secure link page, Install and Activate. GET never changes anything."""

from urllib.parse import quote

import segno
from flask import Blueprint, Response, abort, redirect, render_template, request

from models import Platform
from services import activation, links, settings
from services.platforms import platform_of

bp = Blueprint("mobile", __name__, url_prefix="/m")

ACTIVATION_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff",
                      "Referrer-Policy": "no-referrer"}


@bp.after_request
def private(response: Response) -> Response:
    """Keep link pages out of caches and Referer headers."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.errorhandler(links.LinkGone)
def gone(_error: links.LinkGone):
    """Any dead link gets the same page, with no account data."""
    return render_template("mobile/gone.html"), 410


@bp.route("/<token>")
def landing(token: str):
    """Show the platform's Install button, the Activate button and, on a desktop, a QR code."""
    config = settings.get_all()
    link = links.load(token, max_age_hours=config["link_max_age_hours"])
    platform = platform_of(request.user_agent.string)
    url = links.url_for_token(config["public_base_url"], token)
    model = link.account.security_model
    installs = {p: bool(activation.download_url(config, p, model)) for p in Platform if p is not Platform.OTHER}
    app_url = links.url_for_token(config["public_base_url"], token) + "/activation"
    return render_template(
        "mobile/landing.html", token=token, link=link, account=link.account, platform=platform,
        installs=installs,
        qr=segno.make(url, error="m").svg_inline(scale=5, dark="#1c2430") if platform.is_desktop else None,
        app_link=f"{config['app_uri_scheme']}://activate?u={quote(app_url, safe='')}",
    )


@bp.route("/<token>/install", methods=["POST"])
def install(token: str):
    """Record "Installed" and send the user to the app build for their platform and security model."""
    config = settings.get_all()
    link = links.load(token, max_age_hours=config["link_max_age_hours"])
    platform = _chosen_platform()
    url = activation.download_url(config, platform, link.account.security_model)
    activation.record_install(link, platform)
    if url is None:
        return render_template("mobile/no_download.html", platform=platform, token=token), 404
    return redirect(url, code=303)


@bp.route("/<token>/activate", methods=["POST"])
def activate(token: str):
    """Deliver the activation file once (the browser hands it to the app by its MIME type)."""
    return _deliver(token, platform=_chosen_platform(), app_version=None)


@bp.route("/<token>/activation")
def activation_file(token: str):
    """Let the app fetch its activation file directly; browsers without the header get 400."""
    app_version = request.headers.get("X-Provisio-Client", "").strip()
    if not app_version:
        abort(400, "This address is for the app. Open the link you received and tap Activate.")
    return _deliver(token, platform=platform_of(request.user_agent.string), app_version=app_version)


def _deliver(token: str, *, platform: Platform, app_version: str | None) -> Response:
    config = settings.get_all()
    try:
        link = links.load(token, max_age_hours=config["link_max_age_hours"])
    except links.LinkGone as exc:
        activation.refuse(None, exc.reason, ip=request.remote_addr)
        raise
    file = activation.activate(link, settings=config, platform=platform, ip=request.remote_addr,
                               user_agent=request.user_agent.string, app_version=app_version)
    return Response(file.body, mimetype=file.mimetype, headers={
        **ACTIVATION_HEADERS, "Content-Disposition": f'attachment; filename="{file.filename}"'})


def _chosen_platform() -> Platform:
    """The platform the page posted (the user may pick another), else the detected one."""
    try:
        return Platform(request.form.get("platform", ""))
    except ValueError:
        return platform_of(request.user_agent.string)

