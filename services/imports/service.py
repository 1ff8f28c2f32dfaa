"""What the import pages call: start an import, find it, say where it stands, confirm it, and give its
errors as CSV."""

import csv
import io
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import defer

from extensions import db
from models import Job, JobState, StaffUser
from services import groups, jobs
from services.errors import Conflict, Invalid
from services.imports.job import KIND, SEND_OPTIONS, Phase, seal
from services.imports.reader import FORMULA_STARTS, read_csv


def start(data: bytes, *, filename: str, default_group_id: int, actor: StaffUser) -> Job:
    """Read an uploaded CSV file and queue the check of its rows; refuse at once what is no such file."""
    if default_group_id not in {group.id for group in groups.visible_groups(actor)}:
        raise Invalid("Choose one of your groups.", field="group_id")
    text, delimiter, columns, count = read_csv(data)
    filename = (filename or "upload.csv")[-120:]
    job = jobs.start(KIND, {"file": filename, "group_id": default_group_id, "columns": columns,
                            "delimiter": delimiter, "text": seal(text)}, total=count, actor=actor,
                     phase=Phase.WAITING)
    job.result = {"file": filename, "rows": count}  # what the pages show before the check ends
    db.session.commit()
    return job


def get_visible(import_id: int, user: StaffUser) -> Job:
    """Return an import its creator (or an admin) may follow, read without its rows."""
    # Loaded first without the payload (up to MAX_BYTES of rows); jobs.get_visible finds it in the session.
    db.session.scalar(select(Job).where(Job.id == import_id).options(defer(Job.payload)))
    return jobs.get_visible(import_id, user, kind=KIND)


def recent(user: StaffUser, limit: int = 10) -> list[Job]:
    """Return a staff user's newest imports."""
    return list(db.session.scalars(
        select(Job).where(Job.kind == KIND, Job.staff_id == user.id).options(defer(Job.payload))
        .order_by(Job.id.desc()).limit(limit)
    ))


def stage(job: Job) -> str:
    """Where an import stands: running, checked (with or without errors), imported or failed."""
    if not job.state.finished:
        return "running"
    if job.state is JobState.FAILED:
        return "failed"
    return "imported" if job.phase == Phase.IMPORTED else "checked"


def progress_of(job: Job) -> dict[str, Any]:
    """The few figures the progress bar polls; percent is None while a step cannot be measured."""
    measured = job.phase in (Phase.CHECKING, Phase.SENDING) or job.state.finished
    return {"state": job.state.value, "finished": job.state.finished, "phase": job.phase,
            "done": job.done, "total": job.total, "percent": job.percent if measured else None}


def confirm(job: Job, *, send: str, actor: StaffUser) -> None:
    """Queue the writing of a checked import; a second confirmation writes nothing more."""
    if send and send not in SEND_OPTIONS:
        raise Invalid("Choose what to send after the import.", field="send")
    if stage(job) == "running" and job.phase in (Phase.WAITING, Phase.CHECKING, Phase.CHECKED):
        raise Invalid("The rows are still being checked.")
    if stage(job) == "failed":
        raise Invalid("This import stopped on an error: upload the file again.")
    if stage(job) == "checked" and job.result.get("error_count"):
        raise Invalid("Nothing can be imported while rows have errors: fix the file and upload it again.")
    # One UPDATE decides: of two confirmations (a double click, two tabs) only one moves the job on.
    moved = db.session.execute(
        update(Job).where(Job.id == job.id, Job.state == JobState.DONE, Job.phase == Phase.CHECKED)
        .values(state=JobState.QUEUED, phase=Phase.CONFIRMED, done=0, attempts=0, lease_until=None,
                result={**job.result, "send": send, "confirmed_by": actor.username})
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not moved:
        raise Conflict("This import was already confirmed.")


def error_report(job: Job) -> str:
    """Return the check's errors as CSV; cells a spreadsheet would run as formulas are neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "column", "message"])
    for row, column, message in job.result.get("errors", []):
        writer.writerow([row, column, "'" + message if message.startswith(FORMULA_STARTS) else message])
    return out.getvalue()
