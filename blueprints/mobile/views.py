"""The secure link page, Install and Activate. The page's GET changes nothing; the app's own fetch of its
activation file (a GET with X-Provisio-Client, which no scanner or preview sends) consumes the link."""

import functools
import re
import unicodedata
from urllib.parse import quote

import segno
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.http import dump_options_header

import headers
import metrics
from extensions import END_USER_PREFIX, csrf
from models import Platform
from services import activation, links, settings
from services import landing as landing_page
from services.errors import Throttled
from services.platforms import platform_of

bp = Blueprint("mobile", __name__, url_prefix=END_USER_PREFIX)
# The end user has no session (extensions.SessionInterface): the forms carry a token bound to the link
# instead (check_form_token).
csrf.exempt(bp)

ACTIVATION_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff",
                      "Referrer-Policy": "no-referrer"}
# What every HTTP server sends as is (gunicorn refuses more than latin-1; we send ASCII only).
SENDABLE = re.compile(r"[\t\x20-\x7e]*")
# The ASCII fallback name keeps the characters every agent saves safely (RFC 6266, appendix D).
UNSAFE_IN_FALLBACK = re.compile(r"[^A-Za-z0-9._-]+")


@bp.before_request
def check_form_token():
    """Every POST carries its page's form token; a dead link says so (410) before a bad form does."""
    if request.method == "POST":
        token = request.view_args["token"]
        if not links.form_token_matches(token, request.form.get("csrf_token", "")):
            links.verify(token, max_age_hours=settings.get("link_max_age_hours"))
            raise CSRFError()


@bp.errorhandler(links.LinkGone)
def gone(error: links.LinkGone):
    """Any dead link gets the same page, with no account data."""
    metrics.LINK_REFUSALS.labels(error.reason).inc()
    return render_template("mobile/gone.html"), 410


@bp.errorhandler(Throttled)
def throttled(error: Throttled):
    """Too many refused links from one address: say so, with no account data."""
    page = render_template("mobile/error.html", code=429, title="Too many attempts",
                           description=error.message)
    return page, 429, {"Retry-After": str(current_app.config["LINK_REFUSAL_WINDOW_SECONDS"])}


@bp.route("/<token>")
def landing(token: str):
    """Show the platform's Install button, the Activate button and, on a desktop, a QR code."""
    page = landing_page.page(token, platform_of(request.user_agent.string))
    # Install answers with a redirect to the store, another origin: the policy names the stores.
    return render_landing(page), {"Content-Security-Policy": headers.csp_with_form_targets(page.stores)}


@functools.lru_cache(maxsize=1024)
def render_landing(page: landing_page.LandingPage) -> str:
    """Render a landing page; the cache key is all the page shows, so a change renders anew."""
    qr = None
    if page.platform.is_desktop:
        qr = segno.make(page.url, error="m").svg_inline(scale=5, dark="#1c2430")
    return render_template("mobile/landing.html", page=page, installs=dict(page.installs), qr=qr)


@bp.route("/<token>/install", methods=["POST"])
def install(token: str):
    """Record "Installed" and send the user to the app build for their platform and security model."""
    config = settings.get_all()
    account = links.read_for_change(token, max_age_hours=config["link_max_age_hours"])
    platform = _chosen_platform()
    url = activation.download_url(config, platform, account.security_model)
    activation.record_install(account, platform)
    if url is None:
        return render_template("mobile/no_download.html", platform=platform, token=token), 404
    return redirect(url, code=303)


@bp.route("/<token>/activate", methods=["POST"])
def activate(token: str):
    """Deliver the activation file once (the browser hands it to the app by its MIME type). A computer is
    rarely where the app lives: there the person confirms it first, as the link works only once."""
    platform = _chosen_platform()
    if platform.is_computer and request.form.get("confirm") != "yes":
        abort(400, "Tick “The app is installed on this computer” before Activate: "
                   "the link works only once. On a phone, scan the code on the page instead.")
    return _deliver(token, platform=platform, app_version=None)


@bp.route("/<token>/activation")
def activation_file(token: str):
    """Let the app fetch its activation file directly; browsers without the header get 400."""
    app_version = request.headers.get("X-Provisio-Client", "").strip()
    if not app_version:
        abort(400, "This address is for the app. Open the link you received and tap Activate.")
    # Flask routes HEAD here too: it may tell whether the link works, never use it.
    if request.method == "HEAD":
        links.read_for_page(token, max_age_hours=settings.get("link_max_age_hours"))
        return Response(headers=ACTIVATION_HEADERS)
    return _deliver(token, platform=platform_of(request.user_agent.string), app_version=app_version)


def _deliver(token: str, *, platform: Platform, app_version: str | None) -> Response:
    response = activation.activate(token, settings=settings.get_all(), platform=platform,
                                   ip=request.remote_addr, user_agent=request.user_agent.string,
                                   app_version=app_version, respond=attachment)
    metrics.ACTIVATIONS.labels(platform.value).inc()
    return response


def attachment(file: activation.ActivationFile) -> Response:
    """The file as a download, every header checked: it is built before the link is consumed."""
    response = Response(file.body, mimetype=file.mimetype, headers=ACTIVATION_HEADERS)
    response.headers["Content-Disposition"] = content_disposition(file.filename)
    for name, value in response.headers.items():
        if not SENDABLE.fullmatch(value):  # a server would refuse it after the link was used
            raise ValueError(f"the {name} header of an activation file cannot be sent")
    return response


def content_disposition(filename: str) -> str:
    """An attachment's header per RFC 6266: the name in UTF-8 (filename*) and an ASCII fallback."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = UNSAFE_IN_FALLBACK.sub("_", ascii_name).strip("._") or "activation"
    # werkzeug quotes `filename` and passes `filename*` as is; quote() makes it RFC 8187 attr-chars.
    return dump_options_header("attachment", {
        "filename": fallback, "filename*": "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")})


def _chosen_platform() -> Platform:
    """The platform the page posted (the user may pick another), else the detected one."""
    try:
        return Platform(request.form.get("platform", ""))
    except ValueError:
        return platform_of(request.user_agent.string)
