"""CSR pages: the dashboard, the account list, creation, edits and actions on one account."""

from collections.abc import Callable
from functools import partial

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from blueprints.console.forms import (
    AccountForm,
    BulkForm,
    EditForm,
    FilterForm,
    MessageFilterForm,
    SendForm,
    WizardForm,
)
from blueprints.forms_util import show_error
from extensions import login_manager
from models import Channel, MessageKind, MessageStatus, Status, utcnow
from services import (
    accounts,
    audit,
    backup,
    bulk,
    caught_mail,
    devices,
    exports,
    groups,
    idempotency,
    jobs,
    messaging,
    registrar,
    settings,
    snom,
)
from services.errors import ServiceError
from services.keyset import BadCursor
from services.search import QueryError

bp = Blueprint("console", __name__)

# The one-click actions of the account page: (service function, message on success; {s} is the plural s
# of a counted result).
ACTIONS: dict[str, tuple[Callable[..., object], str]] = {
    "disable": (partial(accounts.set_enabled, enabled=False), "{username} disabled."),
    "enable": (partial(accounts.set_enabled, enabled=True), "{username} enabled."),
    "revoke-keys": (accounts.revoke_keys, "{result} key{s} of {username} revoked; a new key is "
                    "accepted only after the account is provisioned again."),
    "rotate-password": (accounts.rotate_password, "New SIP password set for {username}; the "
                        "device fetches it, and older links no longer work."),
    "clear-licence": (accounts.clear_licence, "Licence of {username} cleared; the next device "
                      "to validate binds it."),
}


@bp.app_template_global()
def new_key() -> str:
    """A fresh one-time key for a send button."""
    return idempotency.new_value()


# What each row of the account list can send without opening the account (the manual's quick actions).
QUICK_SENDS = ((MessageKind.LINK, "Secure link"), (MessageKind.INSTALL, "Installation"),
               (MessageKind.ACTIVATION, "Activation"))
# The account list's filters, as its query string names them.
LIST_FILTERS = ("q", "group", "status", "registered", "before")
# Pages that exist only to change accounts: a viewer gets 403 on them at once, not on their submit.
FORM_PAGES = frozenset({"console.account_new", "console.account_wizard", "console.account_edit",
                        "console.account_delete"})


@bp.before_request
def require_staff():
    """Every console page needs a signed-in staff user; viewers only read."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    # The export is a POST (it is audited) that changes nothing.
    reading = request.method in ("GET", "HEAD") or request.endpoint == "console.account_export"
    if (not reading or request.endpoint in FORM_PAGES) and not current_user.can_write:
        abort(403, "Your role can only view.")
    return None


@bp.route("/")
def dashboard():
    """Show how many accounts stand in each lifecycle status."""
    return render_template("console/dashboard.html", counts=accounts.status_counts(current_user),
                           today=messaging.today_counts(current_user), today_iso=utcnow().date().isoformat(),
                           restored=backup.last_restore())


@bp.route("/messages")
def message_list():
    """List every message with its delivery status, filtered by status, kind, gateway and day."""
    form = MessageFilterForm(request.args)
    valid = form.validate()
    items, next_before = messaging.search(
        current_user,
        status=MessageStatus(form.status.data) if valid and form.status.data else None,
        kind=MessageKind(form.kind.data) if valid and form.kind.data else None,
        gateway=(form.gateway.data or "").strip() if valid else "",
        day=form.day.data if valid else None,
        before=request.args.get("before"),
        page_size=current_app.config["PAGE_SIZE"],
    )
    filters = {key: value for key, value in request.args.items() if key != "before" and value}
    return render_template("console/messages.html", form=form, messages=items, next_before=next_before,
                           filters=filters, today=utcnow().date().isoformat())


@bp.route("/accounts")
def account_list():
    """List accounts newest first, filtered by a Lucene search, group and status, one keyset page
    at a time."""
    form = FilterForm(request.args)
    form.group.choices = [(0, "All groups")] + [(g.id, g.name) for g in groups.visible_groups(current_user)]
    form.validate()
    bulk_form = BulkForm(formdata=None, q=form.q.data, group=form.group.data or "", status=form.status.data,
                         registered="1" if form.registered.data else "")
    filters = _filters(form)
    try:
        page = accounts.list_page(current_user, before=request.args.get("before"),
                                  page_size=current_app.config["PAGE_SIZE"], **filters)
    except (QueryError, BadCursor) as exc:  # the page keeps its search box, with the message under it
        form.q.errors = [*form.q.errors, exc.message]
        return render_template("console/accounts/list.html", form=form, page=None, bulk_form=bulk_form), 400
    return render_template("console/accounts/list.html", form=form, page=page, bulk_form=bulk_form,
                           total=accounts.count_matching(current_user, **filters),
                           count_limit=accounts.COUNT_LIMIT,
                           quick_kinds=QUICK_SENDS, list_filters=LIST_FILTERS)


@bp.route("/accounts/bulk", methods=["POST"])
def bulk_review():
    """Review a bulk action (how many accounts, what), then start it once the CSR confirms that count."""
    form = BulkForm()
    filters = FilterForm(MultiDict({"q": form.q.data, "group": form.group.data, "status": form.status.data,
                                    "registered": form.registered.data}))
    filters.group.choices = [(0, "")] + [(g.id, "") for g in groups.visible_groups(current_user)]
    filters.validate()
    back = url_for(".account_list", **{key: value for key, value in filters.data.items() if value})
    if not form.validate_on_submit():
        flash("Choose an action and which accounts it applies to.", "error")
        return redirect(back)
    try:
        review = bulk.review(
            current_user, form.action.data, selected=form.ids.data if form.scope.data == "selected" else None,
            filters=_filters(filters), typed={"search": form.q.data or "", "group": form.group.data,
                                              "status": form.status.data},
            confirmed=bool(form.confirmed.data), count=form.count.data, key=form.key.data)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(back)
    if review.job is not None:
        return redirect(url_for(".bulk_progress", job_id=review.job.id))
    form.count.data = len(review.ids)
    form.key.data = idempotency.new_value()
    return render_template("console/accounts/bulk_review.html", form=form, count=len(review.ids),
                           changed=review.changed, description=bulk.describe(form.action.data), back=back)


@bp.route("/accounts/export", methods=["POST"])
def account_export():
    """Download the accounts of the current search as CSV (the import's columns; no password)."""
    form = FilterForm(request.form)
    form.group.choices = [(0, "")] + [(g.id, "") for g in groups.visible_groups(current_user)]
    form.validate()
    try:
        lines = exports.start(current_user, **_filters(form))
    except QueryError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".account_list"))
    name = f"provisio-accounts-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/accounts/bulk/<int:job_id>")
def bulk_progress(job_id: int):
    """Follow a bulk action: a progress bar that follows the job until it is done, then the outcome."""
    job = jobs.get_visible(job_id, current_user, kind=bulk.KIND)
    return render_template("console/accounts/bulk_progress.html", job=job,
                           description=bulk.describe(job.payload["action"]))


@bp.route("/accounts/bulk/<int:job_id>/progress")
def bulk_poll(job_id: int):
    """Return the progress block that the bulk action's page polls."""
    job = jobs.get_visible(job_id, current_user, kind=bulk.KIND)
    return render_template("console/accounts/_bulk_running.html", job=job)


@bp.route("/caught-mail")
def caught_mail_list():
    """In development, show the e-mail the local catcher kept, its links ready to open."""
    if not caught_mail.enabled():
        abort(404)
    return render_template("console/caught_mail.html", mails=caught_mail.recent(),
                           folder=current_app.config["CAUGHT_MAIL_DIR"])


@bp.route("/clients")
def registered_clients():
    """List the clients connected now: registered at the SIP server, or seen by their heartbeat."""
    interval = settings.get("keepalive_interval")
    return render_template("console/clients.html", interval=interval, sip_server=registrar.configured(),
                           clients=devices.registered_clients(current_user, interval))


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
    send_form = SendForm(idempotency_key=idempotency.new_value(),
                         channel="sms" if account.callerid.startswith("+") else "email")
    return render_template("console/accounts/detail.html", account=account,
                           events=audit.for_target(account), messages=messaging.for_account(account),
                           send_form=send_form, keepalive_interval=current_app.config["KEEPALIVE_INTERVAL"])


@bp.route("/accounts/<int:account_id>/send", methods=["POST"])
def account_send(account_id: int):
    """Queue a secure link, installation, activation or provisioning message."""
    account = accounts.get_visible(account_id, current_user)
    form = SendForm()
    if form.validate_on_submit():
        key = form.idempotency_key.data or ""
        _queue(account, MessageKind(form.kind.data), Channel(form.channel.data), key=key)
    else:
        flash("Choose a message and a channel.", "error")
    if request.form.get("from") == "list":  # a quick action: back to the list, with its filters
        filters = {name: request.form[name] for name in LIST_FILTERS if request.form.get(name)}
        return redirect(url_for(".account_list", **filters))
    return redirect(url_for(".account_detail", account_id=account.id))


@bp.route("/accounts/<int:account_id>/messages/<int:message_id>/resend", methods=["POST"])
def message_resend(account_id: int, message_id: int):
    """Send a message again, with a new link (the older one stops working)."""
    account = accounts.get_visible(account_id, current_user)
    message = messaging.get_for_account(account, message_id)
    _queue(account, message.kind, message.channel, key=request.form.get("idempotency_key", ""))
    return redirect(url_for(".account_detail", account_id=account.id))


@bp.route("/accounts/<int:account_id>/snom-url", methods=["POST"])
def snom_url_rotate(account_id: int):
    """Give a desk phone a new settings URL (the old one stops working) and show it this once."""
    account = accounts.get_visible(account_id, current_user)
    try:
        secret = snom.rotate_secret(account, actor=current_user, ip=request.remote_addr)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".account_detail", account_id=account.id))
    # The secret is stored hashed: this page is the only place it appears, so no cache may keep it.
    page = render_template("console/accounts/snom_url.html", account=account, url=snom.settings_url(secret))
    return Response(page, headers={"Cache-Control": "no-store"})


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
    flash(message.format(username=account.username, result=result, s="" if result == 1 else "s"), "success")
    return redirect(url_for(".account_detail", account_id=account.id))


def _filters(form: FilterForm) -> dict:
    """The account list's filters, as accounts.filtered takes them."""
    return {
        "search": form.q.data or "",
        "group_id": form.group.data if not form.group.errors else None,
        "status": Status(form.status.data) if form.status.data and not form.status.errors else None,
        "online_since": (devices.online_since(settings.get("keepalive_interval"))
                         if form.registered.data else None),
    }


def _create(form: AccountForm, *, wizard: bool):
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            account = accounts.create(form.service_data(), wizard=wizard, actor=current_user)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash(f"Account {account.username} created.", "success")
            if getattr(form, "send_now", None) is not None and form.send_now.data:
                _queue(account, MessageKind.LINK, Channel(form.send_now.data), key=None)
            return redirect(url_for(".account_detail", account_id=account.id))
    return render_template("console/accounts/new.html", form=form, wizard=wizard)


def _queue(account, kind: MessageKind, channel: Channel, *, key: str | None) -> None:
    """Queue a message and say what happened; the worker delivers it."""
    try:
        message = messaging.queue(account, kind, channel, actor=current_user, idempotency_key=key)
    except ServiceError as exc:
        flash(f"Not sent: {exc.message}", "error")
    else:
        flash(f"{kind.value.capitalize()} message to {message.recipient} queued; the status changes "
              "when the gateway accepts it.", "success")


def _fill_choices(form: AccountForm) -> None:
    form.group_id.choices = [(0, "Choose a group…")] + [
        (g.id, g.name + (f" (profile: {g.profile.name})" if g.profile else ""))
        for g in groups.visible_groups(current_user)
    ]
    form.profile_id.choices = [(0, "The group's profile")] + [
        (p.id, p.name) for p in groups.list_profiles()
    ]
    form.security_model.choices = [(m, m) for m in current_app.config["SECURITY_MODELS"]]
