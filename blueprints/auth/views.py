"""Staff sign-in, sign-out and password change."""

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.auth.forms import LoginForm, PasswordForm
from extensions import login_manager
from services import staff
from services.errors import ServiceError

bp = Blueprint("auth", __name__, url_prefix="/auth")


@login_manager.user_loader
def load_user(session_token: str):
    """Find the staff user of a server-side session, or nobody if it was revoked."""
    return staff.load_session(session_token)


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
            user = staff.authenticate(form.username.data, form.password.data,
                                      ip=request.remote_addr, user_agent=request.user_agent.string)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


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
