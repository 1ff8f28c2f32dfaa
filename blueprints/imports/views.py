"""CSV import pages: upload a file, follow the check, read every row's errors, confirm, see the outcome."""

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    get_template_attribute,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from blueprints.forms_util import show_error
from blueprints.imports.forms import ConfirmForm, UploadForm
from extensions import login_manager
from services import groups, imports
from services.errors import ServiceError

bp = Blueprint("imports", __name__, url_prefix="/imports")

# Room for the multipart envelope around a file of imports.MAX_BYTES.
ENVELOPE = 64 * 1024


@bp.url_value_preprocessor
def limit_upload(_endpoint, _values) -> None:
    """Cap the request body; this runs before CSRFProtect reads the form, so a huge upload stops early."""
    request.max_content_length = imports.MAX_BYTES + ENVELOPE


@bp.before_request
def require_writer():
    """Importing creates accounts: signed-in staff who can write; viewers get 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.can_write:
        abort(403, "Your role can only view.")
    return None


@bp.errorhandler(RequestEntityTooLarge)
def file_too_large(_error):
    """Say plainly that the file is over the limit; nothing of it was read."""
    return render_template("errors/error.html", code=413, title="File too large", description=(
        f"The file is larger than {imports.MAX_BYTES // 2 ** 20} MB: split it into smaller files and upload "
        "each one.")), 413


@bp.route("/", methods=["GET", "POST"])
def upload():
    """Upload a CSV file: the header is checked at once, every row by the worker."""
    form = UploadForm()
    served = groups.visible_groups(current_user)
    form.group_id.choices = [(0, "Choose a group…")] + [(group.id, group.name) for group in served]
    if request.method == "GET" and len(served) == 1:
        form.group_id.data = served[0].id
    if form.validate_on_submit():
        try:
            job = imports.start(form.file.data.read(imports.MAX_BYTES + 1), filename=form.file.data.filename,
                                default_group_id=form.group_id.data, actor=current_user)
        except ServiceError as exc:
            show_error(form, exc)
        else:
            return redirect(url_for(".show", import_id=job.id))
    return render_template("imports/new.html", form=form, columns=imports.COLUMNS,
                           recent=imports.recent(current_user), stage=imports.stage)


@bp.route("/<int:import_id>")
def show(import_id: int):
    """Show an import where it stands: progress, every row's errors, the confirmation, or the outcome."""
    job = imports.get_visible(import_id, current_user)
    return render_template("imports/show.html", job=job, stage=imports.stage(job), result=job.result,
                           progress=imports.progress_of(job), form=ConfirmForm())


@bp.route("/<int:import_id>/progress")
def progress(import_id: int):
    """Return the figures the progress bar polls, the phase in the words the page shows."""
    figures = imports.progress_of(imports.get_visible(import_id, current_user))
    phase = get_template_attribute("imports/_phases.html", "phase")
    return jsonify({**figures, "phase": str(phase(figures["phase"]))})


@bp.route("/<int:import_id>/confirm", methods=["POST"])
def confirm(import_id: int):
    """Queue the writing of every checked row in one transaction (a second click writes nothing more)."""
    job = imports.get_visible(import_id, current_user)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            imports.confirm(job, send=form.send.data, actor=current_user)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            flash("Confirmed: the accounts are being written.", "success")
    else:
        flash("Choose what to send after the import.", "error")
    return redirect(url_for(".show", import_id=import_id))


@bp.route("/<int:import_id>/errors.csv")
def error_report(import_id: int):
    """Download the check's errors as CSV."""
    job = imports.get_visible(import_id, current_user)
    return Response(imports.error_report(job), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'})
