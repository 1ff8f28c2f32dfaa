"""The import's background job. Its phase is its state machine: the step the worker runs next (check
the rows, write them all in one transaction, send each new account its message). The rows wait in the
job's payload, encrypted (they may carry SIP passwords), and are dropped once used."""

import enum
from collections import Counter
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from extensions import db, vault
from models import (
    AccessRule,
    Account,
    AccountType,
    Channel,
    Job,
    MessageKind,
    RuleKind,
    StaffUser,
    Status,
    StatusEvent,
)
from models.account import FOLDED_FIELDS, fold
from services import account_rules, audit, jobs, messaging, registrar, staff
from services.errors import Conflict, Forbidden
from services.imports.checker import (
    CheckedRow,
    Report,
    Scope,
    check_row,
    check_unique,
    scope_for,
    scope_problem,
)
from services.imports.reader import rows
from services.search import index_words

KIND = "import"
PROGRESS_EVERY = 1_000
SEND_CHUNK = 500  # accounts queued per batch and commit (messaging.queue_many)

SEND_OPTIONS: dict[str, tuple[MessageKind, Channel]] = {
    "link:sms": (MessageKind.LINK, Channel.SMS),
    "link:email": (MessageKind.LINK, Channel.EMAIL),
    "install:sms": (MessageKind.INSTALL, Channel.SMS),
    "install:email": (MessageKind.INSTALL, Channel.EMAIL),
}


class Phase(enum.StrEnum):
    """Where an import stands, in the order it moves; its pages say each in words
    (templates/imports/_phases.html)."""

    WAITING = "waiting"  # for the worker to check the rows
    CHECKING = "checking"
    CHECKED = "checked"  # waits for the staff user's confirmation
    CONFIRMED = "confirmed"  # waits for the worker to write the accounts
    WRITING = "writing"  # checks against the database again, then writes
    SENDING = "sending"
    IMPORTED = "imported"


def run(job: Job) -> dict[str, Any]:
    """Run the step of an import its phase names: check the rows, write them (then send), or send."""
    if job.phase in (Phase.CHECKED, Phase.IMPORTED):  # the worker stopped after the step had committed
        return dict(job.result)
    if job.phase == Phase.SENDING:
        return _send(job, job.payload, dict(job.result))
    if job.phase in (Phase.CONFIRMED, Phase.WRITING):
        return _write(job)
    return _check(job)


def seal(text: str) -> str:
    """Encrypt rows for the jobs table: they may carry SIP passwords and customer data."""
    return vault.encrypt(text)


def _unseal(sealed: str) -> str:
    return vault.decrypt(sealed)


def _check(job: Job) -> dict[str, Any]:
    """Check every row, read-only, reporting progress; keep the checked rows for the confirmation."""
    # Read what the job carries before the first progress commit expires it.
    payload, total = job.payload, job.total
    actor = _actor(job)
    scope = scope_for(actor, payload["group_id"])
    report, records = Report(), []
    for index, row in enumerate(rows(_unseal(payload["text"]), payload["delimiter"])):
        if index % PROGRESS_EVERY == 0:
            jobs.progress(job, index, phase=Phase.CHECKING)
        if (record := check_row(row, payload["columns"], scope, report)) is not None:
            records.append(record)
    check_unique(records, report, in_file=True)
    if report.count:
        records = []
    return _checked(job, payload, records, report, total=total, summary=_summary(records, scope))


def _checked(job: Job, payload: dict[str, Any], records: list[CheckedRow], report: Report, *,
             total: int, **extra: Any) -> dict[str, Any]:
    """Store the check's result, and the rows ready to write (none when some row has errors)."""
    result = {"file": payload["file"], "rows": total, "ready": len(records), "error_count": report.count,
              "bad_rows": len(report.rows), "errors": report.sorted_errors(), "summary": {}, **extra}
    kept = seal(CheckedRow.dumps(records)) if records else None
    job.payload = {"file": payload["file"], "group_id": payload["group_id"], "records": kept}
    job.result = result
    jobs.progress(job, total, phase=Phase.CHECKED)  # one commit: the result, the rows and the phase
    return result


def _summary(records: list[CheckedRow], scope: Scope) -> dict[str, Any]:
    """What the check page tells before the confirmation: groups, types, generated values, e-mails."""
    return {"groups": Counter(scope.group_ids[record.group_id].name for record in records),
            "snom": sum(record.account_type == AccountType.SNOM.value for record in records),
            "new_usernames": sum(not record.username for record in records),
            "new_passwords": sum(not record.password for record in records),
            "with_email": sum(bool(record.email) for record in records)}


def _write(job: Job) -> dict[str, Any]:
    """Check the confirmed rows against today's database, then write them all in one transaction."""
    payload, result, total = job.payload, dict(job.result), job.total
    actor = _actor(job)
    # Renews the lease; nothing is committed after this until the end.
    jobs.progress(job, 0, phase=Phase.WRITING)
    records = CheckedRow.loads(_unseal(payload["records"]))
    scope, report = scope_for(actor, payload["group_id"]), Report()
    for record in records:
        if problem := scope_problem(record, scope):
            report.add_problem(record.row, problem)
    check_unique(records, report, in_file=False)
    if report.count:  # the database changed since the check: show the new errors, write nothing
        return _checked(job, payload, [], report, total=total, changed_since_check=True)
    try:
        ids = _insert(records, actor)
        audit.record(actor, "account.import", job, created=len(ids), file=payload["file"])
        result.update(stage="imported", created=len(ids), sent=0, not_sent={})
        job.result = result
        job.phase = Phase.SENDING if result.get("send") else Phase.IMPORTED
        job.payload = {"file": payload["file"], "account_ids": ids if result.get("send") else []}
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Another account took one of these values while the import was writing; nothing was "
                       "imported. Upload the file again to see which rows clash.") from None
    registrar.sync(ids)  # refused with "Account not activated" until each one activates
    if result.get("send"):
        return _send(job, {"account_ids": ids}, result)
    return result


def _insert(records: list[CheckedRow], actor: StaffUser) -> list[int]:
    """Insert the accounts, their first status event and their access rules in bulk; return their ids."""
    config = current_app.config
    given = {record.username for record in records if record.username}
    usernames = iter(account_rules.new_usernames(sum(not record.username for record in records),
                                                 length=config["USERNAME_LENGTH"], avoid=given))
    passwords = iter(account_rules.new_passwords(sum(not record.password for record in records),
                                                 length=config["GENERATED_PASSWORD_LENGTH"]))
    rows = [{
        "username": record.username or next(usernames),
        "password_encrypted": vault.encrypt(record.password or next(passwords)),
        "callerid": record.callerid, "secondary_callerid": record.secondary_callerid,
        "owner": record.owner, "email": record.email, "description": record.description,
        "account_type": AccountType(record.account_type), "security_model": record.security_model,
        "obfuscation": record.obfuscation, "obfuscation_key": record.obfuscation_key,
        "keepalive": record.keepalive, "mac_address": record.mac_address, "group_id": record.group_id,
        "profile_id": record.profile_id, "wizard": True, "enabled": False,  # enabled when activated
        "licence_expires_on": date.fromisoformat(record.licence_expires_on) if record.licence_expires_on
        else None,
    } for record in records]
    for row in rows:  # the search's folded copies, given here rather than by a column default per row
        row.update({f"{field}_folded": fold(row[field]) for field in FOLDED_FIELDS})
    # Ids come back paired with the unique username: asking for them in row order would make SQLite
    # insert one row per statement.
    table = Account.__table__
    id_of = dict(db.session.execute(insert(table).returning(table.c.username, table.c.id), rows).all())
    ids = [id_of[row["username"]] for row in rows]
    db.session.execute(insert(StatusEvent), [
        {"account_id": id_, "status": Status.CREATED, "actor": actor.username} for id_ in ids])
    index_words(zip(ids, rows, strict=True))
    rules = [{"account_id": id_, "kind": kind, "network": network, "position": position}
             for id_, record in zip(ids, records, strict=True) for kind in RuleKind
             for position, network in enumerate(getattr(record, kind.value))]
    if rules:
        db.session.execute(insert(AccessRule), rules)
    return ids


def _send(job: Job, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Queue the chosen message to every new account; a refusal is counted with its reason, not fatal."""
    kind, channel = SEND_OPTIONS[result["send"]]
    actor, job_id, ids = _actor(job), job.id, payload["account_ids"]
    sent, not_sent = 0, {}
    for start in range(0, len(ids), SEND_CHUNK):
        jobs.progress(job, start, phase=Phase.SENDING)
        # The job's keys make a resumed job find the messages it queued before it stopped.
        batch = messaging.queue_many(ids[start:start + SEND_CHUNK], kind, channel, actor=actor, job_id=job_id)
        sent += len(batch.sent)
        if batch.missing:
            _not_sent(not_sent, "The account was deleted since the import.")["count"] += len(batch.missing)
        for account, exc in batch.refused:
            reason = _not_sent(not_sent, _reason(exc.message, account.username))
            reason["count"] += 1
            reason["usernames"] = reason["usernames"][:9] + [account.username]
    result.update(sent=sent, not_sent=not_sent)
    job.result = result
    job.payload = {"file": result["file"], "account_ids": []}
    jobs.progress(job, len(ids), phase=Phase.IMPORTED)
    return result


def _not_sent(not_sent: dict[str, Any], reason: str) -> dict[str, Any]:
    """The count of one reason for not sending (and the last ten usernames it named), added if new."""
    return not_sent.setdefault(reason, {"count": 0, "usernames": []})


def _reason(message: str, username: str) -> str:
    """A refusal without the account's name, so that equal reasons count together."""
    return "The account" + message[len(username):] if message.startswith(username + " ") else message


def _actor(job: Job) -> StaffUser:
    actor = staff.get(job.staff_id) if job.staff_id else None
    if actor is None or not actor.active:
        raise Forbidden("The staff user who started this import can no longer sign in; nothing was imported.")
    if not actor.can_write:
        raise Forbidden("The staff user who started this import may now only view; nothing was imported.")
    return actor
