"""Background jobs: the worker runs them, progress is visible, a failure keeps nothing half done,
a killed worker's job is taken again, and only its creator (or an admin) may follow it."""

from datetime import timedelta

import pytest

from extensions import db
from models import AuditEvent, Group, Job, JobState, utcnow
from services import job_kinds, jobs, staff
from services.errors import NotFound, ServiceError
from tests.webtools import detached, run_worker

seen_progress: list[tuple[int, int]] = []


@pytest.fixture(autouse=True)
def known_kind(monkeypatch):
    """The worker's table knows this module's job kind while each test runs."""
    monkeypatch.setitem(job_kinds.HANDLERS, "test-groups", make_groups)


def make_groups(job: Job) -> dict:
    """Create the named groups in one transaction, reporting progress before writing."""
    names = job.payload["names"]
    for done, _ in enumerate(names, 1):
        jobs.progress(job, done, phase="Checking")
        seen_progress.append((job.id, db.session.get(Job, job.id).done))
    db.session.add_all(Group(name=name) for name in names)
    if job.payload.get("fail"):
        db.session.flush()
        raise ServiceError("Refused on purpose.")
    db.session.commit()
    return {"created": len(names)}


def start(app, user_id: int, **payload) -> int:
    with app.app_context():
        return jobs.start("test-groups", payload, total=len(payload["names"]), actor=staff.get(user_id)).id


def job_row(app, job_id: int) -> Job:
    return detached(app, Job, job_id)


def group_names(app) -> set[str]:
    with app.app_context():
        return {group.name for group in db.session.scalars(db.select(Group))}


def test_worker_runs_a_queued_job_to_done_with_its_result(app, admin_id):
    job_id = start(app, admin_id, names=["North", "South"])
    assert "Handled 1 task (messages and jobs)." in run_worker(app)

    job = job_row(app, job_id)
    assert ((job.state, job.done, job.total, job.percent, job.result)
            == (JobState.DONE, 2, 2, 100, {"created": 2}))
    assert {"North", "South"} <= group_names(app)
    assert (job_id, 1) in seen_progress  # progress was committed while the job ran


def test_a_failing_job_keeps_nothing_and_says_why(app, admin_id):
    job_id = start(app, admin_id, names=["East", "West"], fail=True)
    with app.app_context():
        assert jobs.run_next(job_kinds.HANDLERS) is True

    job = job_row(app, job_id)
    assert (job.state, job.error) == (JobState.FAILED, "Refused on purpose.")
    assert not {"East", "West"} & group_names(app)


def test_a_job_of_a_killed_worker_is_taken_again_after_its_lease(app, admin_id):
    job_id = start(app, admin_id, names=["Late"])
    lease = timedelta(seconds=app.config["JOB_LEASE_SECONDS"])
    with app.app_context():
        now = utcnow()
        assert jobs.claim(now=now).id == job_id  # this worker dies here
        assert jobs.claim(now=now + lease - timedelta(seconds=1)) is None
        again = jobs.claim(now=now + lease + timedelta(seconds=1))
        assert again.id == job_id and again.attempts == 2


def test_only_the_creator_or_an_admin_may_follow_a_job(app, admin_id, csr_id):
    job_id = start(app, csr_id, names=["Mine"])
    other = start(app, admin_id, names=["Theirs"])
    with app.app_context():
        assert jobs.get_visible(job_id, staff.get(csr_id)).id == job_id
        assert jobs.get_visible(job_id, staff.get(admin_id)).id == job_id
        with pytest.raises(NotFound):
            jobs.get_visible(other, staff.get(csr_id))
        with pytest.raises(NotFound):
            jobs.get_visible(job_id, staff.get(csr_id), kind="import")


def test_two_starts_with_one_key_start_one_job_even_when_they_race(app, admin_id, monkeypatch):
    key = "5a3e" + "0" * 60
    with app.app_context():
        actor = staff.get(admin_id)
        first = jobs.start("test-groups", {"names": ["A"]}, total=1, actor=actor, idempotency_key=key,
                           audit_action="test.start")
        again = jobs.start("test-groups", {"names": ["A"]}, total=1, actor=actor, idempotency_key=key)
        assert again.id == first.id

        # The second request looked before the first committed: the unique key refuses its row.
        real_by_key, looks = jobs._by_key, []

        def before_the_commit(*args):
            looks.append(args)
            return None if len(looks) == 1 else real_by_key(*args)

        monkeypatch.setattr(jobs, "_by_key", before_the_commit)
        raced = jobs.start("test-groups", {"names": ["A"]}, total=1, actor=actor, idempotency_key=key,
                           audit_action="test.start")
        assert raced.id == first.id and len(looks) == 2  # looked again after the refused commit
        assert db.session.scalar(db.select(db.func.count(Job.id))) == 1
        audited = db.select(db.func.count(AuditEvent.id)).where(AuditEvent.action == "test.start")
        assert db.session.scalar(audited) == 1
