"""Backups of the database, taken while the app runs, and restores that revive nothing used since.

SQLite is copied with its online backup API (a consistent snapshot, writers wait only page by page);
PostgreSQL with pg_dump's custom format, restored by pg_restore. A restore then moves every
account's link version on: a link sent (and maybe used) after the backup was taken would otherwise
work again, so every link from before the restore answers 410 until the CSR sends a new one.
"""

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from models import Account, AuditEvent, StaffUser, utcnow
from services import audit, registrar
from services.errors import Conflict, Invalid

PREFIX = "provisio-"
# How long the console tells that the database was restored.
RESTORE_NOTICE = timedelta(days=7)


def backup(destination: Path, *, keep: int | None = None) -> Path:
    """Write a consistent copy of the database to `destination` (a file, or a directory that gets a
    timestamped file); with `keep`, leave only the newest `keep` backups in that directory."""
    url = make_url(db.engine.url)
    suffix = ".db" if url.get_backend_name() == "sqlite" else ".dump"
    if destination.is_dir():
        destination = destination / f"{PREFIX}{utcnow():%Y%m%d-%H%M%S}{suffix}"
    if url.get_backend_name() == "sqlite":
        with _sqlite(url) as source, sqlite3.connect(destination) as copy:
            source.backup(copy)
    else:
        _run(url, "pg_dump", "--format=custom", "--no-owner", f"--file={destination}")
    if keep is not None:
        for old in sorted(destination.parent.glob(f"{PREFIX}*{suffix}"), reverse=True)[keep:]:
            old.unlink()
    return destination


def restore(source: Path, *, replace: bool) -> int:
    """Put a backup in place of the database, bring it to the newest schema, cancel every link from before
    and resync the SIP server; return how many accounts' links were cancelled. Refuses a database that
    holds data unless `replace` (stop the web server and the worker first)."""
    if not source.is_file():
        raise Invalid(f"No backup at {source}.")
    if not replace and _holds_data():
        raise Conflict("The database holds accounts or staff: stop the web server and the worker, then "
                       "restore with --replace to overwrite it.")
    url = make_url(db.engine.url)
    db.session.remove()
    db.engine.dispose()  # no connection of ours sees the old file or schema
    if url.get_backend_name() == "sqlite":
        _check_sqlite(source)
        with sqlite3.connect(source) as backup_copy, _sqlite(url) as live:
            backup_copy.backup(live)
    else:
        _check_postgresql(source)
        # One transaction: a restore that fails half-way leaves the database as it was.
        _run(url, "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
             "--exit-on-error", str(source))
    upgrade()  # a backup of an older release gets today's schema
    cancelled = db.session.execute(update(Account).values(link_version=Account.link_version + 1)).rowcount
    audit.record("cli", "database.restore", backup=source.name, links_cancelled=cancelled)
    db.session.commit()
    registrar.sync()  # the SIP server accepts what the restored accounts allow, no more
    return cancelled


def last_restore() -> datetime | None:
    """When the database was last restored, if recently enough for the console to say so."""
    return db.session.scalar(select(func.max(AuditEvent.created_at))
                             .where(AuditEvent.action == "database.restore",
                                    AuditEvent.created_at >= utcnow() - RESTORE_NOTICE))


def _holds_data() -> bool:
    try:
        return any(db.session.scalar(select(func.count()).select_from(model))
                   for model in (Account, StaffUser))
    except SQLAlchemyError:  # no schema yet: nothing to lose
        db.session.rollback()
        return False


def _sqlite(url) -> sqlite3.Connection:
    return sqlite3.connect(url.database, timeout=30)


def _check_sqlite(source: Path) -> None:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as copy:
        try:
            ok = copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            has_schema = copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone()
        except sqlite3.DatabaseError:
            ok = has_schema = False
    if not (ok and has_schema):
        raise Invalid(f"{source} is not a Provisio backup (not a sound SQLite database with its schema).")


def _check_postgresql(source: Path) -> None:
    try:
        _run(None, "pg_restore", "--list", str(source))
    except Invalid:
        raise Invalid(f"{source} is not a Provisio backup (not an archive of pg_dump).") from None


def _run(url, program: str, *args: str) -> None:
    """Run pg_dump or pg_restore (on the app's database, given its URL); the password goes by the
    environment, never on a command line that every local user can read."""
    if shutil.which(program) is None:
        raise Invalid(f"{program} is not installed (Debian: postgresql-client).")
    env = dict(os.environ)
    if url is not None:
        args = (*args, "--dbname=" + url.set(drivername="postgresql", password=None).render_as_string())
        if url.password:
            env["PGPASSWORD"] = url.password
    done = subprocess.run([program, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        stderr = done.stderr.strip()
        last = stderr.splitlines()[-1] if stderr else f"exit status {done.returncode}"
        raise Invalid(f"{program} failed: {last}")
