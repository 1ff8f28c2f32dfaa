"""Staff sign-in (password, then a TOTP code where one is set up or required), sign-out, password change."""

import time
from urllib.parse import urlsplit

import segno
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.auth.forms import AuthenticatorForm, CodeForm, LoginForm, PasswordForm
from extensions import db, login_manager, vault
from models import StaffUser
from services import staff
from services.errors import ServiceError

bp = Blueprint("auth", __name__, url_prefix="/auth")
PENDING_SECONDS = 300  # between the right password and the code
POLL_HEADER = "X-Provisio-Poll"


@login_manager.user_loader
def load_user(session_token: str):
    """Find the staff user of a server-side session, or nobody if it was revoked."""
    # A live block's poll (static/js/app.js: an account's status, a job's progress) is no sign of a person.
    user = staff.load_session(session_token, activity=request.headers.get(POLL_HEADER) != "1")
    if user is not None:
        user.request_ip = request.remote_addr  # every audit row of this request names the client
    return user


def safe_next(target: str | None) -> str:
    """Return `next` only if it is a path on this site, else the dashboard."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign a staff user in."""
    if current_user.is_authenticated:
        return redirect(url_for("console.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = staff.check_password(form.username.data, form.password.data, ip=request.remote_addr)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            target = safe_next(request.args.get("next"))
            if staff.needs_second_factor(user):
                session["pending_login"] = {"id": user.id, "at": time.time(), "next": target}
                return redirect(url_for(".two_factor"))
            return _sign_in(user, target)
    return render_template("auth/login.html", form=form)


@bp.route("/two-factor", methods=["GET", "POST"])
def two_factor():
    """The second step: the code of the user's authenticator, or setting one up where the role needs it."""
    pending = session.get("pending_login") or {}
    user = db.session.get(StaffUser, pending.get("id", 0))
    if user is None or not user.active or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop("pending_login", None)
        flash("Sign in again: the sign-in took too long.", "error")
        return redirect(url_for(".login"))
    form = CodeForm()
    setting_up = user.totp_secret_encrypted is None
    secret = _setup_secret() if setting_up else None
    if form.validate_on_submit():
        try:
            if setting_up:
                staff.enable_totp(user, secret, form.code.data, ip=request.remote_addr)
            else:
                staff.check_totp(user, form.code.data, ip=request.remote_addr)
        except ServiceError as exc:
            form.code.errors.append(exc.message)
        else:
            session.pop("pending_login", None)
            session.pop("totp_setup", None)
            return _sign_in(user, pending.get("next") or url_for("console.dashboard"))
    return render_template("auth/two_factor.html", form=form, user=user, **_setup(user, secret))


@bp.route("/two-factor/setup", methods=["GET", "POST"])
@login_required
def two_factor_setup():
    """Set up (or replace) one's authenticator while signed in: the password and the old app's code too."""
    form = AuthenticatorForm()
    secret = _setup_secret()
    replacing = current_user.totp_secret_encrypted is not None
    if form.validate_on_submit():
        try:
            staff.replace_totp(current_user, secret, password=form.password.data,
                               old_code=form.old_code.data or "", code=form.code.data,
                               ip=request.remote_addr)
        except ServiceError as exc:
            getattr(form, exc.field or "password").errors.append(exc.message)
        else:
            session.pop("totp_setup", None)
            flash("Two-factor sign-in is on: from now on you sign in with a code as well."
                  + (" Your other sessions were signed out." if replacing else ""), "success")
            return redirect(url_for("console.dashboard"))
    return render_template("auth/two_factor_setup.html", form=form, replacing=replacing,
                           **_setup(current_user, secret))


def _setup_secret() -> str:
    """The secret being set up, kept (encrypted) in the session until a code confirms it: no GET writes."""
    if "totp_setup" not in session:
        session["totp_setup"] = vault.encrypt(staff.new_totp_secret())
    return vault.decrypt(session["totp_setup"])


def _setup(user: StaffUser, secret: str | None) -> dict:
    """What the set-up page shows: the QR code and, for typing, the secret in groups of four."""
    if secret is None:
        return {}
    uri = staff.totp_uri(user, secret)
    return {"qr": segno.make(uri, error="m").svg_inline(scale=4, dark="#1c2430"),
            "secret_groups": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))}


def _sign_in(user: StaffUser, target: str):
    staff.open_session(user, ip=request.remote_addr, user_agent=request.user_agent.string)
    login_user(user)
    return redirect(target)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out and revoke the session on the server."""
    staff.logout(current_user, ip=request.remote_addr)
    logout_user()
    flash("You are signed out.", "success")
    return redirect(url_for(".login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """Change one's own password; other sessions are signed out."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            staff.change_password(current_user, current=form.current.data, new=form.password.data,
                                  ip=request.remote_addr)
        except ServiceError as exc:
            getattr(form, exc.field or "password").errors.append(exc.message)
        else:
            flash("Password changed. Your other sessions were signed out.", "success")
            return redirect(url_for("console.dashboard"))
    return render_template("auth/password.html", form=form)
