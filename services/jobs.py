"""Background jobs (CSV import, bulk actions): queued by a view, run by `flask worker`, followed on a
progress page. Each kind has a handler (the table is services.job_kinds); it reports progress, and what it
returns is the result."""

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import current_app

from extensions import db
from models import Job, JobState, StaffUser, utcnow
from services import leases
from services.errors import NotFound, ServiceError

log = logging.getLogger(__name__)

Handler = Callable[[Job], dict[str, Any]]


def start(kind: str, payload: dict[str, Any], *, total: int, actor: StaffUser, phase: str = "Waiting") -> Job:
    """Queue a job for the worker."""
    job = Job(kind=kind, payload=payload, total=total, staff_id=actor.id, phase=phase)
    db.session.add(job)
    db.session.commit()
    return job


def get_visible(job_id: int, user: StaffUser, kind: str | None = None) -> Job:
    """A job its creator (or an admin) may follow; anyone else's does not exist for them."""
    job = db.session.get(Job, job_id)
    if job is None or (kind and job.kind != kind) or not (user.is_admin or job.staff_id == user.id):
        raise NotFound("No such job.")
    return job


def progress(job: Job, done: int, phase: str | None = None) -> None:
    """Record how far a job got and renew its lease. Commits: never call it inside a change that
    must stay one transaction."""
    job.done = done
    if phase is not None:
        job.phase = phase
    job.lease_until = utcnow() + _lease()
    db.session.commit()


def claim(*, now=None) -> Job | None:
    """Take the oldest queued job (or one whose worker died) under a lease, atomically."""
    now = now or utcnow()
    job_id = leases.claim(Job, due=Job.state.in_((JobState.QUEUED, JobState.RUNNING)), order_by=(Job.id,),
                          lease=_lease(), now=now, state=JobState.RUNNING)
    return db.session.get(Job, job_id) if job_id else None


def run_next(handlers: Mapping[str, Handler]) -> bool:
    """Run one job to its end with the handler of its kind; return False when none was waiting."""
    job = claim()
    if job is None:
        return False
    job_id = job.id
    try:
        if job.attempts > current_app.config["OUTBOX_MAX_ATTEMPTS"]:
            raise ServiceError("The job was interrupted too many times.")
        result = handlers[job.kind](job)
    except ServiceError as exc:
        _finish(job_id, JobState.FAILED, error=exc.message)
    except Exception:
        log.exception("job %s (%s) failed", job_id, job.kind)
        _finish(job_id, JobState.FAILED, error="The job stopped on an unexpected error; nothing of it was kept "
                                               "where it runs in one transaction. Try again or ask an administrator.")
    else:
        _finish(job_id, JobState.DONE, result=result)
    return True


def _finish(job_id: int, state: JobState, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
    db.session.rollback()  # whatever the handler left half done is not kept
    job = db.session.get(Job, job_id)
    job.state, job.lease_until, job.error = state, None, error
    if result is not None:
        job.result = result
    if state is JobState.DONE:
        job.done = job.total
    db.session.commit()


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["JOB_LEASE_SECONDS"])
