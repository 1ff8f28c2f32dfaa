"""The secure link page, Install and Activate. GET never changes anything."""

import functools
from dataclasses import dataclass
from urllib.parse import quote

import segno
from flask import Blueprint, Response, abort, redirect, render_template, request
from flask_wtf.csrf import CSRFError

from extensions import csrf
from models import Platform
from services import activation, links, settings
from services.platforms import platform_of

bp = Blueprint("mobile", __name__, url_prefix="/m")
# The end user has no session: the forms carry a token bound to the link instead (check_form_token).
csrf.exempt(bp)

ACTIVATION_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff",
                      "Referrer-Policy": "no-referrer"}
OFFERED = tuple(p for p in Platform if p is not Platform.OTHER)


@dataclass(frozen=True)
class LandingPage:
    """Everything the landing page shows: equal pages render once per process (render_landing)."""

    token: str
    form_token: str
    url: str
    app_link: str
    platform: Platform
    owner: str
    security_model: str | None
    install_first: bool
    installs: tuple[tuple[Platform, bool], ...]


@bp.before_request
def check_form_token():
    """Every POST carries its page's form token; a dead link says so (410) before a bad form does."""
    if request.method == "POST":
        token = request.view_args["token"]
        if not links.form_token_matches(token, request.form.get("csrf_token", "")):
            links.verify(token, max_age_hours=settings.get("link_max_age_hours"))
            raise CSRFError()


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
    link = links.glance(token, max_age_hours=config["link_max_age_hours"])
    url = links.url_for_token(config["public_base_url"], token)
    return render_landing(LandingPage(
        token=token, form_token=links.form_token(token), url=url,
        app_link=f"{config['app_uri_scheme']}://activate?u={quote(url + '/activation', safe='')}",
        platform=platform_of(request.user_agent.string), owner=link.owner, security_model=link.security_model,
        install_first=link.hint != "activation" and link.status.rank < 2,
        installs=tuple((p, bool(activation.download_url(config, p, link.security_model))) for p in OFFERED),
    ))


@functools.lru_cache(maxsize=1024)
def render_landing(page: LandingPage) -> str:
    """Render a landing page; the cache key is all the page shows, so a change renders anew."""
    qr = segno.make(page.url, error="m").svg_inline(scale=5, dark="#1c2430") if page.platform.is_desktop else None
    return render_template("mobile/landing.html", page=page, installs=dict(page.installs), qr=qr)


@bp.route("/<token>/install", methods=["POST"])
def install(token: str):
    """Record "Installed" and send the user to the app build for their platform and security model."""
    config = settings.get_all()
    account = links.load(token, max_age_hours=config["link_max_age_hours"])
    platform = _chosen_platform()
    url = activation.download_url(config, platform, account.security_model)
    activation.record_install(account, platform)
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
    file = activation.activate(token, settings=settings.get_all(), platform=platform, ip=request.remote_addr,
                               user_agent=request.user_agent.string, app_version=app_version)
    return Response(file.body, mimetype=file.mimetype, headers={
        **ACTIVATION_HEADERS, "Content-Disposition": f'attachment; filename="{file.filename}"'})


def _chosen_platform() -> Platform:
    """The platform the page posted (the user may pick another), else the detected one."""
    try:
        return Platform(request.form.get("platform", ""))
    except ValueError:
        return platform_of(request.user_agent.string)
