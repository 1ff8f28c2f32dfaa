"""A bulk send over a 100,000-account search: the time to queue all its messages divided by a raw insert of
as many message rows (`ratio bulk_queue_100k_vs_raw_insert`, target <= 10), with the peak memory of the web
process and of the worker.

On a scratch SQLite database with 100,000 accounts (one group, each with an e-mail address, bulk inserted):
- the raw insert: one Core executemany of 100,000 message rows (their values, links included, made
  beforehand) into the messages table and its commit; the rows are deleted afterwards;
- the web side, in a process of its own as a web server's: a CSR (serving the group) reviews the send of
  the secure link by e-mail to every account of an empty search, then confirms the count it saw
  (services.bulk.review both times; the confirmation reads the search's ids again and starts the job with
  its audit row). Only the confirmation is timed; the peak memory covers both;
- the worker side, in another process: what `flask worker` does with a queued job (jobs.run_next with
  services.job_kinds.HANDLERS), timed from the claim to the job's end. Not `flask worker --once` itself:
  its delivery threads would start sending the first messages while the job still queues the others, and
  this benchmark delivers nothing (no gateway is reachable or needed). Process start and imports are not
  timed, in either process.

The time to queue is the confirmation's plus the job's. Each process reports its own peak resident set
(VmHWM of /proc/self/status, Linux), printed in MiB with what it held before its work: the web process
before the review, the worker before the job.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import ROOT, ratio, scratch_env, sized  # noqa: E402

ACCOUNTS = sized(100_000, 2_000)
ACTION = "send-link-email"
CSR = "bulkcsr"
SEARCH = {"search": "", "group_id": None, "status": None, "online_since": None}  # every account
TYPED = {"search": "", "group": "", "status": ""}


def prepare(env: dict[str, str]) -> None:
    """Migrate a scratch database, add a group with ACCOUNTS accounts and a CSR who serves it."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app import create_app
    from extensions import db, vault
    from models import Account, Group, Profile, Role
    from services import settings, staff

    with _app(env, create_app).app_context():
        upgrade()
        settings.save({"public_base_url": "https://activate.example.test"}, actor="bench")
        group = Group(name="Bench", profile=Profile(name="Bench", sip_host="sip.example.net",
                                                    provisioning_host="prov.example.net"))
        db.session.add(group)
        db.session.commit()
        staff.create(username=CSR, password="bench passphrase 2026", role=Role.CSR, group_ids=[group.id],
                     actor="bench")
        password = vault.encrypt("bench-sip-password-1234567")
        for start in range(0, ACCOUNTS, 10_000):
            db.session.execute(insert(Account), [
                {"username": f"8{i:07d}", "callerid": f"+4179{i:07d}", "email": f"user{i}@example.com",
                 "password_encrypted": password, "owner": f"Owner {i}", "group_id": group.id, "wizard": True,
                 "enabled": False, "uid": f"00000000-0000-4000-8000-{i:012d}"}
                for i in range(start, min(start + 10_000, ACCOUNTS))])
        db.session.commit()


def raw_insert(env: dict[str, str]) -> float:
    """Seconds for one executemany of ACCOUNTS message rows into the messages table, and its commit."""
    from sqlalchemy import delete, select

    from app import create_app
    from extensions import db
    from models import Account, Channel, Message, MessageKind, MessageStatus, utcnow
    from services import links

    with _app(env, create_app).app_context():
        now = utcnow()
        accounts = db.session.execute(select(Account.id, Account.email)).all()
        rows = [{"account_id": account_id, "kind": MessageKind.LINK, "channel": Channel.EMAIL,
                 "recipient": email, "gateway": "smtp", "link_version": 1, "status": MessageStatus.QUEUED,
                 "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
                 "idempotency_key": f"{account_id:064x}", "requested_by": CSR, **links.new_link()}
                for account_id, email in accounts]
        table = Message.__table__
        started = time.perf_counter()
        with db.engine.begin() as connection:
            connection.execute(table.insert(), rows)
        elapsed = time.perf_counter() - started
        db.session.execute(delete(Message))
        db.session.commit()
    return elapsed


def web_side() -> dict[str, float]:
    """(In the web process.) Review the send to every account as the CSR, then time its confirmation."""
    from app import create_app
    from extensions import db
    from models import Job, StaffUser
    from services import bulk, idempotency

    with create_app().app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.username == CSR))
        before = _peak_mib()
        seen = bulk.review(user, ACTION, selected=None, filters=SEARCH, typed=TYPED, confirmed=False,
                           count=None, key=None)  # the review page: the count the CSR confirms
        started = time.perf_counter()
        confirmed = bulk.review(user, ACTION, selected=None, filters=SEARCH, typed=TYPED, confirmed=True,
                                count=len(seen.ids), key=idempotency.new_value())
        elapsed = time.perf_counter() - started
        if confirmed.job is None or db.session.get(Job, confirmed.job.id).total != ACCOUNTS:
            raise RuntimeError("the confirmation started no job over every account")
    return {"seconds": elapsed, "before_mib": before, "peak_mib": _peak_mib()}


def worker_side() -> dict[str, float]:
    """(In the worker process.) Run the queued job as `flask worker` runs it; check what it queued."""
    from sqlalchemy import func, select

    from app import create_app
    from extensions import db
    from models import Job, JobState, Message
    from services import job_kinds, jobs

    with create_app().app_context():
        db.session.scalar(select(func.count(Job.id)))  # connected, as a waiting worker is
        before = _peak_mib()
        started = time.perf_counter()
        if not jobs.run_next(job_kinds.HANDLERS):
            raise RuntimeError("no job was waiting")
        elapsed = time.perf_counter() - started
        job = db.session.scalar(select(Job))
        queued = db.session.scalar(select(func.count(Message.id)))
        if job.state is not JobState.DONE or job.result["changed"] != ACCOUNTS or queued != ACCOUNTS:
            raise RuntimeError(f"the job ended {job.state} with {job.result or job.error}, {queued} queued")
    return {"seconds": elapsed, "before_mib": before, "peak_mib": _peak_mib()}


def in_process(side: str, env: dict[str, str]) -> dict[str, float]:
    """Run one side in a fresh Python process (as the server's or the worker's) and read its report."""
    done = subprocess.run([sys.executable, os.path.abspath(__file__), side], cwd=ROOT, check=True,
                          env={**os.environ, **env}, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _app(env: dict[str, str], create_app):
    return create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"],
                       "ENCRYPTION_KEYS": [env["PROVISIO_ENCRYPTION_KEYS"]],
                       "PASSWORD_HASH_PROFILE": "CHEAPEST"})


def _peak_mib() -> float:
    """This process's peak resident set so far. Not getrusage's ru_maxrss: Linux keeps in it the size of
    the process that forked this one (the benchmark's, with its 100,000 rows) across exec."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # kB


def main() -> None:
    env = scratch_env()
    prepare(env)
    raw = raw_insert(env)
    web = in_process("web", env)
    worker = in_process("worker", env)
    queued = web["seconds"] + worker["seconds"]
    print(f"{ACCOUNTS:,} messages: raw insert {raw:.2f} s; bulk send {queued:.2f} s "
          f"(confirmation {web['seconds']:.2f} s, job {worker['seconds']:.2f} s)")
    print(f"peak memory: web process {web['peak_mib']:.0f} MiB ({web['before_mib']:.0f} MiB before the "
          f"review), worker {worker['peak_mib']:.0f} MiB ({worker['before_mib']:.0f} MiB before "
          "the job)", flush=True)
    ratio("bulk_queue_100k_vs_raw_insert", queued / raw)


if __name__ == "__main__":
    if sys.argv[1:] in (["web"], ["worker"]):
        print(json.dumps((web_side if sys.argv[1] == "web" else worker_side)()))
    else:
        main()
