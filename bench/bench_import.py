"""CSV import: is it linear, and how far is it from a raw bulk insert?

`ratio import_row_100k_vs_10k` (target <= 1.2): the cost per row of importing 100,000 rows divided by
the cost per row of importing 10,000. `ratio import_vs_raw_insert` (target <= 10): the whole 100,000-row
import divided by one raw executemany INSERT of the same account rows, their values prepared beforehand.

"The whole import" is everything the server does between the uploaded bytes and the committed accounts,
in one process: reading the file and its header (the upload request), the worker's check of every row,
the confirmation, and the worker's write (the check against the database again, generated usernames
and passwords, Fernet encryption of each password, the accounts, their status events, the audit row).
Each measurement gets its own fresh SQLite file, migrated as in production, removed afterwards. Each
figure is the best of a few runs, as timeit takes it: a busy machine's hiccups are not the import's cost.
"""

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import ratio, scratch_env, sized  # noqa: E402

SMALL = sized(10_000, 300)
LARGE = sized(100_000, 1_000)
RUNS = {SMALL: sized(3, 1), LARGE: sized(2, 1)}


@contextmanager
def scratch_app() -> Iterator:
    """A Provisio on a scratch SQLite file, migrated, with one group (and its profile) and an
    administrator."""
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db
    from models import Group, Profile, Role
    from services import staff

    env = scratch_env()
    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"],
                      "ENCRYPTION_KEYS": [env["PROVISIO_ENCRYPTION_KEYS"]],
                      "PASSWORD_HASH_PROFILE": "CHEAPEST"})
    with app.app_context():
        upgrade()
        db.session.add(Group(name="Bench", profile=Profile(name="Bench", sip_host="sip.example.net",
                                                           provisioning_host="prov.example.net")))
        staff.create(username="bench", password="correct horse battery staple", role=Role.ADMIN,
                     actor="bench")
        db.session.commit()
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        shutil.rmtree(os.path.dirname(env["DATABASE_URL"].removeprefix("sqlite:///")), ignore_errors=True)


def csv_rows(count: int) -> bytes:
    """A wizard-style file: number, owner and e-mail given; username and password left to be generated."""
    lines = ["callerid,owner,email,username,password"]
    lines += [f"+4179{n:07d},Owner {n},owner.{n}@example.com,," for n in range(count)]
    return ("\r\n".join(lines) + "\r\n").encode()


def import_seconds(count: int) -> float:
    """Seconds to import `count` rows: upload, check, confirm, write."""
    from sqlalchemy import func, select

    from extensions import db
    from models import Account, Group
    from services import imports, job_kinds, jobs, staff

    data = csv_rows(count)
    with scratch_app() as app, app.app_context():
        group_id = db.session.scalar(select(Group.id))
        actor_id = staff.list_staff()[0].id
        db.session.remove()
        started = time.perf_counter()
        job_id = imports.start(data, filename="bench.csv", default_group_id=group_id,
                               actor=staff.get(actor_id)).id
        db.session.remove()
        if not jobs.run_next(job_kinds.HANDLERS):
            raise RuntimeError("the check did not run")
        db.session.remove()
        actor = staff.get(actor_id)
        job = imports.get_visible(job_id, actor)
        if job.result.get("ready") != count:
            raise RuntimeError(f"the check refused rows: {job.result.get('errors', [])[:3]}")
        imports.confirm(job, send="", actor=actor)
        db.session.remove()
        if not jobs.run_next(job_kinds.HANDLERS):
            raise RuntimeError("the write did not run")
        elapsed = time.perf_counter() - started
        db.session.remove()
        if (created := db.session.scalar(select(func.count(Account.id)))) != count:
            raise RuntimeError(f"the import created {created} of {count} accounts")
    print(f"import of {count:,} rows: {elapsed:.2f} s, {elapsed / count * 1e6:.0f} µs per row", flush=True)
    return elapsed


def raw_insert_seconds(count: int) -> float:
    """Seconds for one executemany INSERT of the same account rows, in one transaction."""
    from sqlalchemy import select

    from extensions import db, vault
    from models import Account, AccountType, Group

    with scratch_app() as app, app.app_context():
        group_id = db.session.scalar(select(Group.id))
        password = vault.encrypt("a-generated-password-of-24")
        rows = [{"username": str(10_000_000 + n), "password_encrypted": password, "callerid": f"+4179{n:07d}",
                 "owner": f"Owner {n}", "email": f"owner.{n}@example.com", "description": "",
                 "account_type": AccountType.PGSM, "security_model": "end-to-end", "obfuscation": True,
                 "obfuscation_key": "9", "keepalive": False, "group_id": group_id, "wizard": True,
                 "enabled": False}
                for n in range(count)]
        started = time.perf_counter()
        db.session.execute(Account.__table__.insert(), rows)
        db.session.commit()
        elapsed = time.perf_counter() - started
    print(f"raw insert of {count:,} rows: {elapsed:.2f} s", flush=True)
    return elapsed


def main() -> None:
    small = min(import_seconds(SMALL) for _ in range(RUNS[SMALL]))
    large = min(import_seconds(LARGE) for _ in range(RUNS[LARGE]))
    raw = min(raw_insert_seconds(LARGE) for _ in range(RUNS[LARGE]))
    ratio("import_row_100k_vs_10k", (large / LARGE) / (small / SMALL))
    ratio("import_vs_raw_insert", large / raw)


if __name__ == "__main__":
    main()
