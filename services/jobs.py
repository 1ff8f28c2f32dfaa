"""Background jobs (CSV import, bulk actions): queued by a view, run by `flask worker`, followed on a
progress page. Each kind has a handler (the table is services.job_kinds); it reports progress, and what it
returns is the result."""

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Job, JobState, StaffUser, utcnow
from services import audit, leases
from services.errors import NotFound, ServiceError

log = logging.getLogger(__name__)

Handler = Callable[[Job], dict[str, Any]]


def start(kind: str, payload: dict[str, Any], *, total: int, actor: StaffUser, phase: str = "Waiting",
          idempotency_key: str | None = None, audit_action: str | None = None,
          audit_detail: dict[str, Any] | None = None) -> Job:
    """Queue a job for the worker, with its audit row (`audit_action`, which names the job) in the same
    transaction. A job with an `idempotency_key` (from services.idempotency) starts once: the same key
    finds the job it started, also when two requests with it race."""
    if idempotency_key and (existing := _by_key(kind, idempotency_key, actor)) is not None:
        return existing
    job = Job(kind=kind, payload=payload, total=total, staff_id=actor.id, phase=phase,
              idempotency_key=idempotency_key)
    db.session.add(job)
    try:
        if audit_action:
            db.session.flush()  # the audit row names the job's id
            audit.record(actor, audit_action, job=job.id, **(audit_detail or {}))
        db.session.commit()
    except IntegrityError:  # the same key won a race: its job stands
        db.session.rollback()
        if idempotency_key and (existing := _by_key(kind, idempotency_key, actor)) is not None:
            return existing
        raise
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
        _finish(job_id, JobState.FAILED,
                error="The job stopped on an unexpected error; nothing of it was kept "
                      "where it runs in one transaction. Try again or ask an administrator.")
    else:
        _finish(job_id, JobState.DONE, result=result)
    return True


def _finish(
    job_id: int, state: JobState, *, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    db.session.rollback()  # whatever the handler left half done is not kept
    job = db.session.get(Job, job_id)
    job.state, job.lease_until, job.error = state, None, error
    if result is not None:
        job.result = result
    if state is JobState.DONE:
        job.done = job.total
    db.session.commit()


def _by_key(kind: str, key: str, actor: StaffUser) -> Job | None:
    return db.session.scalar(select(Job).where(Job.idempotency_key == key, Job.kind == kind,
                                               Job.staff_id == actor.id))


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["JOB_LEASE_SECONDS"])
