"""CSR pages: the dashboard, the account list, creation, edits and actions on one account."""

from collections.abc import Callable
from functools import partial

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.console.forms import AccountForm, EditForm, FilterForm, WizardForm
from blueprints.forms_util import show_error
from extensions import login_manager
from models import Status
from services import accounts, audit, groups
from services.errors import ServiceError

bp = Blueprint("console", __name__)

# The one-click actions of the account page: (service function, message on success).
ACTIONS: dict[str, tuple[Callable[..., object], str]] = {
    "disable": (partial(accounts.set_enabled, enabled=False), "{username} disabled."),
    "enable": (partial(accounts.set_enabled, enabled=True), "{username} enabled."),
    "revoke-keys": (accounts.revoke_keys, "{result} keys of {username} revoked; a new key is "
                    "accepted only after the account is provisioned again."),
    "rotate-password": (accounts.rotate_password, "New SIP password set for {username}; the "
                        "device fetches it, and older links no longer work."),
    "clear-licence": (accounts.clear_licence, "Licence of {username} cleared; the next device "
                      "to validate binds it."),
}


@bp.before_request
def require_staff():
    """Every console page needs a signed-in staff user; viewers only read."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if request.method not in ("GET", "HEAD") and not current_user.can_write:
        abort(403, "Your role can only view.")
    return None


@bp.route("/")
def dashboard():
    """Show how many accounts stand in each lifecycle status."""
    return render_template("console/dashboard.html", counts=accounts.status_counts(current_user))


@bp.route("/accounts")
def account_list():
    """List accounts newest first, filtered by group and status, one keyset page at a time."""
    form = FilterForm(request.args)
    form.group.choices = [(0, "All groups")] + [(g.id, g.name) for g in groups.visible_groups(current_user)]
    form.validate()
    page = accounts.list_page(
        current_user,
        group_id=form.group.data if not form.group.errors else None,
        status=Status(form.status.data) if form.status.data and not form.status.errors else None,
        before=request.args.get("before", type=int),
        page_size=current_app.config["PAGE_SIZE"],
    )
    return render_template("console/accounts/list.html", form=form, page=page)


@bp.route("/accounts/new", methods=["GET", "POST"])
def account_new():
    """Create a plain account: everything typed, enabled at once."""
    return _create(AccountForm(), wizard=False)


@bp.route("/accounts/wizard", methods=["GET", "POST"])
def account_wizard():
    """Create an account for automatic activation: generated password, disabled until activated."""
    form = WizardForm()
    if request.method == "GET":
        form.username.data = accounts.new_username()
    return _create(form, wizard=True)


@bp.route("/accounts/<int:account_id>")
def account_detail(account_id: int):
    """Show every field of an account, its status timeline and its audit trail."""
    account = accounts.get_visible(account_id, current_user)
    return render_template("console/accounts/detail.html", account=account,
                           events=audit.for_target(account),
                           keepalive_interval=current_app.config["KEEPALIVE_INTERVAL"])


@bp.route("/accounts/<int:account_id>/status")
def account_status(account_id: int):
    """Return the live status fragment that the account pages poll."""
    account = accounts.get_visible(account_id, current_user)
    return render_template("console/accounts/_status.html", account=account)


@bp.route("/accounts/<int:account_id>/edit", methods=["GET", "POST"])
def account_edit(account_id: int):
    """Edit an account; its type and secondary number stay as created."""
    account = accounts.get_visible(account_id, current_user)
    form = EditForm(obj=account)
    if request.method == "GET":
        form.deny.data = account.rules_of("deny")
        form.permit.data = account.rules_of("permit")
        form.profile_id.data = account.profile_id or 0
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            accounts.update_account(account, form.service_data(), actor=current_user)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash(f"{account.username} saved.", "success")
            return redirect(url_for(".account_detail", account_id=account.id))
    return render_template("console/accounts/edit.html", form=form, account=account)


@bp.route("/accounts/<int:account_id>/delete", methods=["GET", "POST"])
def account_delete(account_id: int):
    """Ask for confirmation (GET), then delete the account (POST)."""
    account = accounts.get_visible(account_id, current_user)
    if request.method == "POST":
        accounts.delete(account, actor=current_user)
        flash(f"{account.username} deleted.", "success")
        return redirect(url_for(".account_list"))
    return render_template("console/accounts/delete.html", account=account)


@bp.route(f"/accounts/<int:account_id>/<any({', '.join(map(repr, ACTIONS))}):action>", methods=["POST"])
def account_action(account_id: int, action: str):
    """Disable, enable, revoke keys, rotate the password or clear the licence of an account."""
    account = accounts.get_visible(account_id, current_user)
    function, message = ACTIONS[action]
    result = function(account, actor=current_user)
    flash(message.format(username=account.username, result=result), "success")
    return redirect(url_for(".account_detail", account_id=account.id))


def _create(form: AccountForm, *, wizard: bool):
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            account = accounts.create(form.service_data(), wizard=wizard, actor=current_user)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash(f"Account {account.username} created.", "success")
            return redirect(url_for(".account_detail", account_id=account.id))
    return render_template("console/accounts/new.html", form=form, wizard=wizard)


def _fill_choices(form: AccountForm) -> None:
    form.group_id.choices = [(0, "Choose a group…")] + [
        (g.id, g.name + (f" (profile: {g.profile.name})" if g.profile else ""))
        for g in groups.visible_groups(current_user)
    ]
    form.profile_id.choices = [(0, "The group's profile")] + [
        (p.id, p.name) for p in groups.list_profiles()
    ]
    form.security_model.choices = [(m, m) for m in current_app.config["SECURITY_MODELS"]]
