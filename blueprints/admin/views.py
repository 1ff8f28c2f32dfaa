"""Administrator pages: groups, provisioning profiles, staff users and the audit log."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.admin.forms import (
    GroupForm,
    ProfileForm,
    StaffForm,
    TemplateForm,
    TestEmailForm,
    TestSmsForm,
    download_field,
    gateway_field,
    settings_form,
)
from blueprints.forms_util import show_error
from extensions import login_manager
from gateways import SMS_GATEWAYS, SmtpGateway
from gateways.base import Outcome, SettingField
from models import Channel, MessageKind, Platform, Role
from services import audit, groups, message_templates, messaging, receipts, settings, staff
from services.errors import ServiceError

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    """Only administrators reach settings."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403, "Only administrators can change settings.")
    return None


@bp.route("/groups")
def group_list():
    """List groups with their profile and number of accounts."""
    return render_template("admin/groups/list.html", rows=groups.list_groups())


@bp.route("/groups/new", methods=["GET", "POST"], defaults={"group_id": None})
@bp.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
def group_edit(group_id: int | None):
    """Create or edit a group."""
    group = groups.get_group(group_id) if group_id else None
    form = GroupForm(obj=group)
    form.profile_id.choices = [(0, "No profile")] + [(p.id, p.name) for p in groups.list_profiles()]
    if form.validate_on_submit():
        try:
            group = groups.save_group(group, name=form.name.data, description=form.description.data or "",
                                      profile_id=form.profile_id.data or None, actor=current_user)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash(f"Group {group.name} saved.", "success")
            return redirect(url_for(".group_list"))
    return render_template("admin/groups/edit.html", form=form, group=group)


@bp.route("/groups/<int:group_id>/delete", methods=["GET", "POST"])
def group_delete(group_id: int):
    """Confirm (GET), then delete an empty group (POST)."""
    group = groups.get_group(group_id)
    if request.method == "POST":
        try:
            groups.delete_group(group, actor=current_user)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            flash(f"Group {group.name} deleted.", "success")
        return redirect(url_for(".group_list"))
    return render_template("admin/confirm_delete.html", kind="group", name=group.name,
                           cancel=url_for(".group_list"))


@bp.route("/profiles")
def profile_list():
    """List provisioning profiles."""
    return render_template("admin/profiles/list.html", profiles=groups.list_profiles())


@bp.route("/profiles/new", methods=["GET", "POST"], defaults={"profile_id": None})
@bp.route("/profiles/<int:profile_id>/edit", methods=["GET", "POST"])
def profile_edit(profile_id: int | None):
    """Create or edit a provisioning profile."""
    profile = groups.get_profile(profile_id) if profile_id else None
    form = ProfileForm(obj=profile)
    if form.validate_on_submit():
        fields = {name: field.data for name, field in form._fields.items() if name != "csrf_token"}
        fields["description"] = fields["description"] or ""
        try:
            profile = groups.save_profile(profile, actor=current_user, **fields)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash(f"Profile {profile.name} saved.", "success")
            return redirect(url_for(".profile_list"))
    return render_template("admin/profiles/edit.html", form=form, profile=profile)


@bp.route("/profiles/<int:profile_id>/delete", methods=["GET", "POST"])
def profile_delete(profile_id: int):
    """Confirm (GET), then delete an unused profile (POST)."""
    profile = groups.get_profile(profile_id)
    if request.method == "POST":
        try:
            groups.delete_profile(profile, actor=current_user)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            flash(f"Profile {profile.name} deleted.", "success")
        return redirect(url_for(".profile_list"))
    return render_template("admin/confirm_delete.html", kind="provisioning profile", name=profile.name,
                           cancel=url_for(".profile_list"))


@bp.route("/staff")
def staff_list():
    """List staff users with their role and groups."""
    return render_template("admin/staff/list.html", users=staff.list_staff())


@bp.route("/staff/new", methods=["GET", "POST"], defaults={"staff_id": None})
@bp.route("/staff/<int:staff_id>/edit", methods=["GET", "POST"])
def staff_edit(staff_id: int | None):
    """Create a staff user, or change one's role, groups, activity or password."""
    user = staff.get(staff_id) if staff_id else None
    form = StaffForm(obj=user)
    form.group_ids.choices = [(g.id, g.name) for g, _ in groups.list_groups()]
    if request.method == "GET" and user:
        form.group_ids.data = sorted(user.group_ids)
    if form.validate_on_submit():
        try:
            user = _save_staff(user, form)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash(f"Staff user {user.username} saved.", "success")
            return redirect(url_for(".staff_list"))
    return render_template("admin/staff/edit.html", form=form, user=user)


@bp.route("/staff/<int:staff_id>/reset-totp", methods=["POST"])
def staff_reset_totp(staff_id: int):
    """Forget a staff user's authenticator (a lost phone); they set up a new one at their next sign-in."""
    user = staff.get(staff_id)
    staff.reset_totp(user, actor=current_user)
    flash(f"Two-factor sign-in of {user.username} reset; they set up a new app at their next sign-in.",
          "success")
    return redirect(url_for(".staff_edit", staff_id=user.id))


@bp.route("/audit")
def audit_log():
    """Show the audit log, newest first, filtered by action, actor and outcome."""
    action, actor = request.args.get("action", ""), request.args.get("actor", "")
    outcome = request.args.get("outcome", "")
    events, next_before = audit.search(action=action[:64], actor=actor[:64], outcome=outcome[:32],
                                       before=request.args.get("before"))
    return render_template("admin/audit/list.html", events=events, next_before=next_before,
                           action=action, actor=actor, outcome=outcome, actions=audit.actions())


@bp.route("/settings", methods=["GET", "POST"])
def settings_edit():
    """Edit the public URL, link lifetime, activation type, download URLs, hostnames and e-mail gateway."""
    values = settings.get_all()
    platforms = [p.value for p in Platform if p is not Platform.OTHER]
    models = current_app.config["SECURITY_MODELS"]
    form = settings_form(platforms, models)(data=_settings_data(values, platforms, models))
    if form.validate_on_submit():
        try:
            changes = _settings_changes(form, platforms, models)
            message_templates.check_gateway_fits(changes["sms"])  # a saved template must still fit
            settings.save_typed(changes, actor=current_user)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            flash("Settings saved.", "success")
            return redirect(url_for(".settings_edit"))
    # By platform in the words the landing page uses ("iPhone", not ios), a field per security model.
    downloads = [(Platform(p).label, [(m, form[download_field(p, m)]) for m in models]) for p in platforms]
    sms = [(provider, [form[gateway_field(provider, setting.key)] for setting in gateway.settings_fields])
           for provider, gateway in SMS_GATEWAYS.items()]
    return render_template("admin/settings/edit.html", form=form, downloads=downloads, sms=sms,
                           test_form=TestEmailForm(), test_sms_form=TestSmsForm(),
                           has_password=settings.has_secret(values["mail"], "password"),
                           receipt_urls=receipts.callback_urls(values["public_base_url"]))


@bp.route("/settings/test-<any(email, sms):channel>", methods=["POST"])
def settings_test(channel: str):
    """Send a test e-mail or SMS now and report the provider's own answer."""
    form = TestEmailForm() if channel == "email" else TestSmsForm()
    word = "e-mail" if channel == "email" else "SMS"
    if not form.validate_on_submit():
        flash(f"Enter a valid recipient for the test {word}: {form.recipient.errors[0]}", "error")
    else:
        result = messaging.send_test(Channel(channel), form.recipient.data, actor=current_user)
        if result.outcome is Outcome.SENT:
            who = "server" if channel == "email" else "provider"
            flash(f"Test {word} accepted by the {who} for {form.recipient.data}.", "success")
        else:
            flash(f"Test {word} not sent ({result.outcome}): {result.detail}", "error")
    return redirect(url_for(".settings_edit"))


@bp.route("/templates")
def template_list():
    """List the message templates of every kind and channel with their SMS length."""
    rows = []
    for kind in MessageKind:
        for channel in Channel:
            if kind is MessageKind.PROVISIONING and channel is Channel.SMS:
                continue  # provisioning messages travel by e-mail only
            subject, body = message_templates.get(kind, channel)
            try:
                length = message_templates.sms_length(message_templates.preview(subject, body)[1])
            except ServiceError:  # saved before today's limits: the row says so, its Edit page shows why
                length = None
            rows.append((kind, channel, body, length))
    return render_template("admin/templates/list.html", rows=rows)


@bp.route("/templates/<any(link, install, activation, provisioning):kind>/<any(sms, email):channel>",
          methods=["GET", "POST"])
def template_edit(kind: str, channel: str):
    """Edit one template; Preview shows it with sample values and the SMS length before saving."""
    kind, channel = MessageKind(kind), Channel(channel)
    subject, body = message_templates.get(kind, channel)
    form = TemplateForm(data={"subject": subject, "body": body})
    rendered = None
    if form.validate_on_submit():
        try:
            if "preview" in request.form:
                rendered = message_templates.preview(form.subject.data or "", form.body.data or "")
            else:
                message_templates.save(kind, channel, form.subject.data or "", form.body.data or "",
                                       actor=current_user)
                flash(f"Template {kind.value} / {channel.value} saved.", "success")
                return redirect(url_for(".template_list"))
        except ServiceError as exc:
            show_error(form, exc)
    if rendered is None and not form.errors:  # a stored template that no longer renders shows why
        try:
            rendered = message_templates.preview(form.subject.data or "", form.body.data or "")
        except ServiceError as exc:
            show_error(form, exc)
    length = message_templates.sms_length(rendered[1]) if rendered else None
    return render_template("admin/templates/edit.html", form=form, kind=kind, channel=channel,
                           rendered=rendered, length=length, placeholders=message_templates.PLACEHOLDERS)


def _settings_data(values: dict, platforms: list[str], models: list[str]) -> dict:
    data = {key: values[key] for key in ("public_base_url", "activation_mime_type", "app_uri_scheme",
                                         "applications")}
    data["link_max_age_hours"] = int(values["link_max_age_hours"])
    data.update(_gateway_data(None, values["mail"], SmtpGateway.settings_fields))
    data["sms_gateway"] = values["sms"].get("gateway", "")
    for provider, gateway in SMS_GATEWAYS.items():
        data.update(_gateway_data(provider, values["sms"].get(provider, {}), gateway.settings_fields))
    for platform in platforms:
        for model in models:
            data[download_field(platform, model)] = values["download_urls"].get(f"{platform}/{model}")
    return data


def _settings_changes(form, platforms: list[str], models: list[str]) -> dict:
    downloads = {f"{p}/{m}": form[download_field(p, m)].data for p in platforms for m in models
                 if form[download_field(p, m)].data}
    sms = {"gateway": form.sms_gateway.data}
    for provider, gateway in SMS_GATEWAYS.items():
        sms[provider] = _typed(form, provider, gateway.settings_fields)
    return {
        "public_base_url": form.public_base_url.data.rstrip("/"),
        "link_max_age_hours": form.link_max_age_hours.data,
        "activation_mime_type": form.activation_mime_type.data,
        "app_uri_scheme": form.app_uri_scheme.data,
        "applications": form.applications.data,
        "download_urls": downloads,
        "mail": _typed(form, None, SmtpGateway.settings_fields),
        "sms": sms,
    }


def _gateway_data(provider: str | None, section: dict, fields: tuple[SettingField, ...]) -> dict:
    """One gateway's fields of the form, filled with its stored values; a secret is never shown again."""
    # A value never stored is left to the field's default (a choice's first option), not set to None.
    return {gateway_field(provider, key): value for key, value in settings.shown(section, fields).items()
            if value is not None}


def _typed(form, provider: str | None, fields: tuple[SettingField, ...]) -> dict:
    """What the admin typed for one gateway, a blank secret too: the settings service keeps the stored one."""
    return {setting.key: form[gateway_field(provider, setting.key)].data for setting in fields}


def _save_staff(user, form: StaffForm):
    role = Role(form.role.data)
    if user is None:
        return staff.create(username=form.username.data, password=form.password.data or "", role=role,
                            full_name=form.full_name.data or "", group_ids=form.group_ids.data,
                            actor=current_user)
    return staff.update_user(user, role=role, full_name=form.full_name.data or "", active=form.active.data,
                             group_ids=form.group_ids.data or [], password=form.password.data or "",
                             actor=current_user)

