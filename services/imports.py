"""Batch creation of accounts from a CSV file (SPEC §6): upload, check every row, confirm, write
every row in one transaction, then send each new account its message if asked.

The file is read and its header checked while the person waits; the rows are checked and later
written by the worker, as one background job whose phase says which step comes next. The rows
wait in the job's payload, encrypted (they may carry SIP passwords), and are dropped once used."""

import codecs
import csv
import difflib
import io
import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

# The console's own number rule (E.164 through phonenumbers); an import is a form in another shape.
from extensions import db, vault
from models import (
    AccessRule,
    Account,
    AccountType,
    Channel,
    Job,
    JobState,
    MessageKind,
    RuleKind,
    StaffUser,
    Status,
    StatusEvent,
)
from models.account import FOLDED_FIELDS, fold
from services import accounts, audit, groups, jobs, messaging, staff
from services.access_rules import normalise_rule
from services.errors import Conflict, Forbidden, Invalid, ServiceError
from services.numbers import normalise_number
from services.search import index_words

KIND = "import"
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED_ERRORS = 5_000
CHUNK = 500  # values per IN (...) query: within every database's parameter limit
PROGRESS_EVERY = 1_000
SEND_PROGRESS_EVERY = 100
# What a spreadsheet runs as a formula (OWASP CSV injection): the import refuses such cells (they are
# stripped first, so tab and CR never start one), the export and the error report prefix them with an
# apostrophe, which the import takes off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_COLUMNS = {"callerid", "secondary_callerid"}

# The job's phase is also its state machine: which step the worker runs next.
WAITING = "Waiting for the worker to check the rows"
CHECKING = "Checking rows"
CHECKED = "Checked"
CONFIRMED = "Confirmed, waiting for the worker to write the accounts"
WRITING = "Checking against the database and writing the accounts"
SENDING = "Sending messages"
IMPORTED = "Imported"

SEND_OPTIONS: dict[str, tuple[MessageKind, Channel]] = {
    "link:sms": (MessageKind.LINK, Channel.SMS),
    "link:email": (MessageKind.LINK, Channel.EMAIL),
    "install:sms": (MessageKind.INSTALL, Channel.SMS),
    "install:email": (MessageKind.INSTALL, Channel.EMAIL),
}


@dataclass(frozen=True)
class Column:
    """One column of the documented header (docs/csv-import.md)."""

    name: str
    required: bool
    help: str


COLUMNS = (
    Column("callerid", True, "Virtual phone number, international with a leading +, e.g. +41791234567."),
    Column("username", False, "Empty: a random free number, as the wizard makes. At most 64 characters."),
    Column("password", False, "Empty: generated (recommended). Else at least 12 characters, not the username."),
    Column("owner", False, "The end user's name. At most 128 characters."),
    Column("email", False, "The end user's e-mail address, for e-mail messages."),
    Column("description", False, "Free text. At most 2,000 characters."),
    Column("group", False, "Group name. Empty: the default group chosen on the upload page."),
    Column("profile", False, "Provisioning profile name. Empty: the group's profile."),
    Column("account_type", False, "pgsm (default, the softphone) or snom (a desk phone)."),
    Column("secondary_callerid", False, "Optional second number; different from the first. Fixed after creation."),
    Column("security_model", False, "PGSM only. One of the configured models; empty: the first one."),
    Column("obfuscation", False, "PGSM only. yes or no; empty: yes."),
    Column("obfuscation_key", False, "PGSM only. Empty: 9. Must match the client's."),
    Column("keepalive", False, "PGSM only. yes or no; empty: no. Clients older than 11.1 cannot answer it."),
    Column("mac_address", False, "SNOM only. 12 hex digits, e.g. 00:04:13:92:2D:24; empty: bound at first fetch."),
    Column("deny", False, "SNOM only. <ip>/<netmask> rules separated by ; e.g. 0.0.0.0/0.0.0.0."),
    Column("permit", False, "SNOM only. <ip>/<netmask> rules separated by ; e.g. 216.27.242.66/255.255.255.255."),
    Column("licence_expires_on", False, "Optional date, YYYY-MM-DD."),
)
COLUMN_NAMES = tuple(column.name for column in COLUMNS)
PGSM_COLUMNS = ("security_model", "obfuscation", "obfuscation_key", "keepalive")
SNOM_COLUMNS = ("mac_address", "deny", "permit")
# A checked row, stored in this order until it is written.
FIELDS = ("row", "username", "password", "callerid", "secondary_callerid", "owner", "email", "description",
          "account_type", "security_model", "obfuscation", "obfuscation_key", "keepalive", "mac_address",
          "deny", "permit", "group_id", "profile_id", "licence_expires_on")
FIELD_OF = {"group": "group_id", "profile": "profile_id"}
# Values that must be unique, in the namespace each shares: a number is taken as primary or secondary.
UNIQUE = (("username", "username"), ("callerid", "number"), ("secondary_callerid", "number"),
          ("mac_address", "mac"))
LABELS = {"security_model": "security model", "obfuscation": "obfuscation", "obfuscation_key": "obfuscation key",
          "keepalive": "keep-alive", "mac_address": "MAC address", "deny": "deny rules", "permit": "permit rules"}
YES, NO = {"yes", "y", "true", "1", "on", "x"}, {"no", "n", "false", "0", "off"}


@dataclass(frozen=True)
class Scope:
    """What rows may name, as the importing staff user sees it (plain values: they outlive commits)."""

    groups: dict[str, tuple[int, str, int | None]]  # lower-case name -> (id, name, profile id)
    group_ids: dict[int, tuple[int, str, int | None]]
    profiles: dict[str, int]  # lower-case name -> id
    profile_ids: frozenset[int]
    default_group_id: int
    models: tuple[str, ...]


class Report:
    """Every row's errors as (row, column, message), of which the first MAX_REPORTED_ERRORS are kept."""

    def __init__(self) -> None:
        self.errors: list[list[Any]] = []
        self.count = 0
        self.rows: set[int] = set()

    def add(self, row: int, column: str, message: str) -> None:
        self.count += 1
        self.rows.add(row)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append([row, column, message])


# --- for the views -------------------------------------------------------------------------------


def start(data: bytes, *, filename: str, default_group_id: int, actor: StaffUser) -> Job:
    """Read an uploaded CSV file and queue the check of its rows; refuse at once what is no such file."""
    if default_group_id not in {group.id for group in groups.visible_groups(actor)}:
        raise Invalid("Choose one of your groups.", field="group_id")
    text, delimiter, columns, count = read_csv(data)
    filename = (filename or "upload.csv")[-120:]
    job = jobs.start(KIND, {"file": filename, "group_id": default_group_id, "columns": columns,
                            "delimiter": delimiter, "text": _seal(text)}, total=count, actor=actor, phase=WAITING)
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
    return "imported" if job.phase == IMPORTED else "checked"


def progress_of(job: Job) -> dict[str, Any]:
    """The few figures the progress bar polls; percent is None while a step cannot be measured."""
    measured = job.phase in (CHECKING, SENDING) or job.state.finished
    return {"state": job.state.value, "finished": job.state.finished, "phase": job.phase,
            "done": job.done, "total": job.total, "percent": job.percent if measured else None}


def confirm(job: Job, *, send: str, actor: StaffUser) -> None:
    """Queue the writing of a checked import; a second confirmation writes nothing more."""
    if send and send not in SEND_OPTIONS:
        raise Invalid("Choose what to send after the import.", field="send")
    if stage(job) == "running" and job.phase in (WAITING, CHECKING, CHECKED):
        raise Invalid("The rows are still being checked.")
    if stage(job) == "failed":
        raise Invalid("This import stopped on an error: upload the file again.")
    if stage(job) == "checked" and job.result.get("error_count"):
        raise Invalid("Nothing can be imported while rows have errors: fix the file and upload it again.")
    # One UPDATE decides: of two confirmations (a double click, two tabs) only one moves the job on.
    moved = db.session.execute(
        update(Job).where(Job.id == job.id, Job.state == JobState.DONE, Job.phase == CHECKED)
        .values(state=JobState.QUEUED, phase=CONFIRMED, done=0, attempts=0, lease_until=None,
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


# --- reading the file ----------------------------------------------------------------------------


def read_csv(data: bytes) -> tuple[str, str, list[str], int]:
    """Decode an upload and check its header and its CSV syntax; return its text, delimiter, columns and
    number of rows. The rows themselves are read again, one at a time, by the check (`rows`)."""
    text = _decode(data)
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    delimiter = max(",;\t", key=first.count)  # Excel writes ; where the decimal mark is a comma
    columns = _header(first, delimiter)
    count = 0
    for _ in rows(text, delimiter):
        count += 1
        if count > MAX_ROWS:
            raise Invalid(f"The file has more than {MAX_ROWS:,} rows: split it into smaller files.", field="file")
    if not count:
        raise Invalid("The file has a header but no rows.", field="file")
    return text, delimiter, columns, count


def rows(text: str, delimiter: str) -> Iterator[list[Any]]:
    """Yield each row after the header, its spreadsheet row number first (the header is row 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 1
    try:
        next(reader)
        for number, cells in enumerate(reader, start=2):
            if any(cell.strip() for cell in cells):  # blank lines, and spreadsheets' empty last rows, are skipped
                yield [number, *cells]
    except csv.Error as exc:
        raise Invalid(f"Row {number + 1} is not valid CSV ({exc}); nothing was read.", field="file") from None


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise Invalid(f"The file is larger than {MAX_BYTES // 2 ** 20} MB: split it into smaller files.", field="file")
    if data.startswith(b"PK\x03\x04"):
        raise Invalid("This is an Excel workbook, not a CSV file: in Excel choose Save As › “CSV UTF-8”.", field="file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Invalid("The file is UTF-16 text: save it as “CSV UTF-8”.", field="file")
    try:
        text = data.decode("utf-8-sig")  # the byte-order mark Excel writes is dropped
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Invalid(f"The file is not UTF-8 text (line {line} holds the byte 0x{data[exc.start]:02X}): "
                      "save it as “CSV UTF-8”.", field="file") from None
    if "\x00" in text:
        raise Invalid("The file holds binary data, not CSV text.", field="file")
    if not text.strip():
        raise Invalid("The file is empty.", field="file")
    return text


def _header(line: str, delimiter: str) -> list[str]:
    expected = f"The first line must name the columns, e.g. {','.join(COLUMN_NAMES[:5])} (see the sample file)."
    if len(line) > 2_000:
        raise Invalid(f"The first line is not a header. {expected}", field="file")
    names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
    for position, name in enumerate(names, 1):
        if not name:
            raise Invalid(f"Column {position} of the header has no name: name it or remove it.", field="file")
        if name not in COLUMN_NAMES:
            close = difflib.get_close_matches(name, COLUMN_NAMES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise Invalid(f"Unknown column “{_short(name)}”{hint}. {expected}", field="file")
    if duplicate := next((name for name, n in Counter(names).items() if n > 1), None):
        raise Invalid(f"The header names the column {duplicate} twice.", field="file")
    if "callerid" not in names:
        raise Invalid(f"The header has no callerid column: every account needs a virtual number. {expected}",
                      field="file")
    return names


# --- checking rows -------------------------------------------------------------------------------


def scope_for(actor: StaffUser, default_group_id: int) -> Scope:
    """Collect the groups a staff user serves, every profile and the security models, by name."""
    served = [(group.id, group.name, group.profile_id) for group in groups.visible_groups(actor)]
    profiles = {profile.name.lower(): profile.id for profile in groups.list_profiles()}
    return Scope(groups={name.lower(): (id_, name, profile) for id_, name, profile in served},
                 group_ids={id_: (id_, name, profile) for id_, name, profile in served},
                 profiles=profiles, profile_ids=frozenset(profiles.values()), default_group_id=default_group_id,
                 models=tuple(current_app.config["SECURITY_MODELS"]))


def check_row(row: list[Any], columns: list[str], scope: Scope, report: Report) -> dict[str, Any] | None:
    """Turn one CSV row into account fields, reporting every bad cell; None when the row has errors."""
    number, cells = row[0], row[1:]
    if len(cells) != len(columns):
        report.add(number, "", f"The row has {len(cells)} cells but the header has {len(columns)} columns.")
        return None
    values = dict(zip(columns, (cell.strip() for cell in cells), strict=True))
    before = report.count
    record: dict[str, Any] = {"row": number}
    for name in COLUMN_NAMES:
        try:
            record[FIELD_OF.get(name, name)] = _cell(name, values.get(name, ""), scope)
        except ValueError as exc:
            report.add(number, name, str(exc))
    if report.count > before:
        return None
    _type_rules(record, values, scope, report)
    _row_rules(record, scope, report)
    return record if report.count == before else None


def _cell(name: str, text: str, scope: Scope) -> Any:
    if text[:1] == "'" and text[1:].startswith(FORMULA_STARTS):
        return PARSERS[name](text[1:], scope)  # marked as text, as Provisio's export (and OWASP) writes it
    if text.startswith(FORMULA_STARTS) and not (text[0] == "+" and name in NUMBER_COLUMNS):
        shown = "The password" if name == "password" else f"“{_short(text)}”"
        raise ValueError(f"{shown} starts with {text[0]}: cells starting with = + - @ are refused as "
                         "spreadsheet formulas.")
    return PARSERS[name](text, scope)


def _type_rules(record: dict[str, Any], values: dict[str, str], scope: Scope, report: Report) -> None:
    """A desk phone has no softphone settings and a softphone no desk-phone ones; fill the defaults."""
    snom = record["account_type"] == AccountType.SNOM.value
    for name in SNOM_COLUMNS if not snom else PGSM_COLUMNS:
        if values.get(name):
            kind = "PGSM accounts" if not snom else "SNOM phones"
            report.add(record["row"], name, f"{kind} have no {LABELS[name]}; leave the cell empty.")
    if snom:
        record.update(accounts.PGSM_ONLY)
        return
    record.update(mac_address=None, deny=(), permit=(), keepalive=bool(record["keepalive"]),
                  security_model=record["security_model"] or scope.models[0],
                  obfuscation=record["obfuscation"] is not False, obfuscation_key=record["obfuscation_key"] or "9")


def _row_rules(record: dict[str, Any], scope: Scope, report: Report) -> None:
    """The account rules that tie several cells together (as services.accounts checks them)."""
    if record["callerid"] == record["secondary_callerid"]:
        report.add(record["row"], "secondary_callerid", "The secondary number must differ from the primary.")
    if record["password"]:
        try:
            staff.check_password_strength(record["password"], record["username"])
        except Invalid as exc:
            report.add(record["row"], "password", exc.message)
    if problem := _scope_problem(record, scope):
        report.add(record["row"], *problem)


def _scope_problem(record: dict[str, Any], scope: Scope) -> tuple[str, str] | None:
    """The group must be one the actor serves, the profile must exist, and a profile there must be."""
    group = scope.group_ids.get(record["group_id"])
    if group is None:
        return "group", "Unknown group."
    if record["profile_id"] is not None and record["profile_id"] not in scope.profile_ids:
        return "profile", "Unknown provisioning profile."
    if record["profile_id"] is None and group[2] is None:
        return "profile", f"The group {group[1]} has no provisioning profile: name one in the profile column."
    return None


def check_unique(records: list[dict[str, Any]], report: Report, *, in_file: bool) -> None:
    """Report values used twice in the file (when in_file) or already used by an account."""
    by_namespace: dict[str, set[str]] = {"username": set(), "number": set(), "mac": set()}
    first: dict[tuple[str, str], int] = {}
    for record in records:
        for field, namespace in UNIQUE:
            if value := record[field]:
                by_namespace[namespace].add(value)
                row = first.setdefault((namespace, value), record["row"])
                if in_file and row != record["row"]:
                    report.add(record["row"], field, f"{value} is also on row {row}.")
    taken = {"username": existing([Account.username], by_namespace["username"]),
             "number": existing([Account.callerid, Account.secondary_callerid], by_namespace["number"]),
             "mac": existing([Account.mac_address], by_namespace["mac"])}
    for record in records:
        for field, namespace in UNIQUE:
            if record[field] and record[field] in taken[namespace]:
                report.add(record["row"], field, f"{record[field]} is already used by another account.")


def existing(columns: Iterable[Any], values: set[str]) -> set[str]:
    """Return which of the values some account already has in one of the columns, CHUNK values a query."""
    found: set[str] = set()
    for column in columns:
        for chunk in _chunks(sorted(values), CHUNK):
            found.update(db.session.scalars(select(column).where(column.in_(chunk))))
    return found


# --- the job -------------------------------------------------------------------------------------


@jobs.handler(KIND)
def run(job: Job) -> dict[str, Any]:
    """Run the step of an import its phase names: check the rows, write them (then send), or send."""
    if job.phase in (CHECKED, IMPORTED):  # the worker stopped after the step had committed
        return dict(job.result)
    if job.phase == SENDING:
        return _send(job, job.payload, dict(job.result))
    if job.phase in (CONFIRMED, WRITING):
        return _write(job)
    return _check(job)


def _check(job: Job) -> dict[str, Any]:
    """Check every row, read-only, reporting progress; keep the checked rows for the confirmation."""
    # Read what the job carries before the first progress commit expires it.
    payload, total = job.payload, job.total
    actor = _actor(job)
    scope = scope_for(actor, payload["group_id"])
    report, records = Report(), []
    for index, row in enumerate(rows(_unseal(payload["text"]), payload["delimiter"])):
        if index % PROGRESS_EVERY == 0:
            jobs.progress(job, index, phase=CHECKING)
        if (record := check_row(row, payload["columns"], scope, report)) is not None:
            records.append(record)
    check_unique(records, report, in_file=True)
    if report.count:
        records = []
    return _checked(job, payload, records, report, total=total, summary=_summary(records, scope))


def _checked(job: Job, payload: dict[str, Any], records: list[dict[str, Any]], report: Report, *,
             total: int, **extra: Any) -> dict[str, Any]:
    """Store the check's result, and the rows ready to write (none when some row has errors)."""
    result = {"file": payload["file"], "rows": total, "ready": len(records), "error_count": report.count,
              "bad_rows": len(report.rows), "errors": sorted(report.errors, key=lambda error: error[0]),
              "summary": {}, **extra}
    kept = _seal(json.dumps([tuple(record[name] for name in FIELDS) for record in records])) if records else None
    job.payload = {"file": payload["file"], "group_id": payload["group_id"], "records": kept}
    job.result = result
    jobs.progress(job, total, phase=CHECKED)  # one commit: the result, the rows and the phase
    return result


def _summary(records: list[dict[str, Any]], scope: Scope) -> dict[str, Any]:
    """What the check page tells before the confirmation: groups, types, generated values, e-mails."""
    return {"groups": Counter(scope.group_ids[record["group_id"]][1] for record in records),
            "snom": sum(record["account_type"] == AccountType.SNOM.value for record in records),
            "new_usernames": sum(not record["username"] for record in records),
            "new_passwords": sum(not record["password"] for record in records),
            "with_email": sum(bool(record["email"]) for record in records)}


def _write(job: Job) -> dict[str, Any]:
    """Check the confirmed rows against today's database, then write them all in one transaction."""
    payload, result, total = job.payload, dict(job.result), job.total
    actor = _actor(job)
    jobs.progress(job, 0, phase=WRITING)  # renews the lease; nothing is committed after this until the end
    records = [dict(zip(FIELDS, values, strict=True)) for values in json.loads(_unseal(payload["records"]))]
    scope, report = scope_for(actor, payload["group_id"]), Report()
    for record in records:
        if problem := _scope_problem(record, scope):
            report.add(record["row"], *problem)
    check_unique(records, report, in_file=False)
    if report.count:  # the database changed since the check: show the new errors, write nothing
        return _checked(job, payload, [], report, total=total, changed_since_check=True)
    try:
        ids = _insert(records, actor)
        audit.record(actor, "account.import", job, created=len(ids), file=payload["file"])
        result.update(stage="imported", created=len(ids), sent=0, not_sent={})
        job.result = result
        job.phase = SENDING if result.get("send") else IMPORTED
        job.payload = {"file": payload["file"], "account_ids": ids if result.get("send") else []}
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Another account took one of these values while the import was writing; nothing was "
                       "imported. Upload the file again to see which rows clash.") from None
    if result.get("send"):
        return _send(job, {"account_ids": ids}, result)
    return result


def _insert(records: list[dict[str, Any]], actor: StaffUser) -> list[int]:
    """Insert the accounts, their first status event and their access rules in bulk; return their ids."""
    usernames = iter(new_usernames(sum(not record["username"] for record in records),
                                   taken={record["username"] for record in records if record["username"]}))
    passwords = iter(new_passwords(sum(not record["password"] for record in records)))
    rows = [{
        "username": record["username"] or next(usernames),
        "password_encrypted": vault.encrypt(record["password"] or next(passwords)),
        "callerid": record["callerid"], "secondary_callerid": record["secondary_callerid"],
        "owner": record["owner"], "email": record["email"], "description": record["description"],
        "account_type": AccountType(record["account_type"]), "security_model": record["security_model"],
        "obfuscation": record["obfuscation"], "obfuscation_key": record["obfuscation_key"],
        "keepalive": record["keepalive"], "mac_address": record["mac_address"], "group_id": record["group_id"],
        "profile_id": record["profile_id"], "wizard": True, "enabled": False,  # enabled when activated
        "licence_expires_on": date.fromisoformat(record["licence_expires_on"]) if record["licence_expires_on"]
        else None,
    } for record in records]
    for row in rows:  # the search's folded copies, given here rather than by a column default per row
        row.update({f"{field}_folded": fold(row[field]) for field in FOLDED_FIELDS})
    # Ids come back paired with the unique username: asking for them in row order would make SQLite
    # insert one row per statement.
    table = Account.__table__
    id_of = dict(db.session.execute(insert(table).returning(table.c.username, table.c.id), rows).all())
    ids = [id_of[row["username"]] for row in rows]
    db.session.execute(insert(StatusEvent), [{"account_id": id_, "status": Status.CREATED, "actor": actor.username}
                                             for id_ in ids])
    index_words(zip(ids, rows, strict=True))
    rules = [{"account_id": id_, "kind": kind, "network": network, "position": position}
             for id_, record in zip(ids, records, strict=True) for kind in RuleKind
             for position, network in enumerate(record[kind.value])]
    if rules:
        db.session.execute(insert(AccessRule), rules)
    return ids


def _send(job: Job, payload: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Queue the chosen message to every new account; a refusal is counted with its reason, not fatal."""
    kind, channel = SEND_OPTIONS[result["send"]]
    actor, job_id, ids = _actor(job), job.id, payload["account_ids"]
    sent, not_sent = 0, {}
    for index, chunk in enumerate(_chunks(ids, SEND_PROGRESS_EVERY)):
        jobs.progress(job, index * SEND_PROGRESS_EVERY, phase=SENDING)
        for account_id in chunk:
            # One at a time: every send commits, and an account deleted since the import is skipped.
            if (account := db.session.get(Account, account_id)) is None:
                gone = not_sent.setdefault("The account was deleted since the import.", {"count": 0, "usernames": []})
                gone["count"] += 1
                continue
            username = account.username
            try:
                # The key makes a resumed job find the messages it queued before it stopped.
                messaging.queue(account, kind, channel, actor=actor, job_id=job_id)
                sent += 1
            except ServiceError as exc:
                reason = not_sent.setdefault(_reason(exc.message, username), {"count": 0, "usernames": []})
                reason["count"] += 1
                reason["usernames"] = reason["usernames"][:9] + [username]
    result.update(sent=sent, not_sent=not_sent)
    job.result = result
    job.payload = {"file": result["file"], "account_ids": []}
    jobs.progress(job, len(ids), phase=IMPORTED)
    return result


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


# --- generated values ----------------------------------------------------------------------------


def new_usernames(count: int, *, taken: set[str]) -> list[str]:
    """Return random numeric usernames that no account has and `taken` does not hold (the wizard's rule, in bulk)."""
    length = current_app.config["USERNAME_LENGTH"]
    low, span = 10 ** (length - 1), 9 * 10 ** (length - 1)
    chosen: set[str] = set()
    for _ in range(20):  # each round draws only what is still missing; collisions are rare
        if len(chosen) == count:
            return list(chosen)
        fresh = {str(low + secrets.randbelow(span)) for _ in range(count - len(chosen))} - taken - chosen
        chosen |= fresh - existing([Account.username], fresh)
    if len(chosen) < count:
        raise Conflict("Could not find enough free usernames; raise USERNAME_LENGTH.", field="username")
    return list(chosen)


def new_passwords(count: int) -> list[str]:
    """Return strong random SIP passwords like accounts.new_password, from one draw of random bytes."""
    alphabet = accounts.PASSWORD_ALPHABET
    length = max(current_app.config["GENERATED_PASSWORD_LENGTH"], 20)
    limit = 256 - 256 % len(alphabet)  # bytes from here on would favour the alphabet's first letters
    needed, letters = count * length, []
    while len(letters) < needed:
        letters += [alphabet[byte % len(alphabet)] for byte in secrets.token_bytes(needed) if byte < limit]
    text = "".join(letters[:needed])
    return [text[start:start + length] for start in range(0, needed, length)]


# --- cell parsers: each returns the field's value or raises ValueError with the reason ------------


def _text(limit: int) -> Callable[[str, Scope], str]:
    def parse(text: str, _scope: Scope) -> str:
        if len(text) > limit:
            raise ValueError(f"At most {limit:,} characters (this one has {len(text):,}).")
        return text

    return parse


def _primary_number(text: str, _scope: Scope) -> str:
    if not text:
        raise ValueError("Every account needs its virtual phone number.")
    if not text.startswith("+"):
        raise ValueError("Automatic activation needs an international number with a leading +.")
    return normalise_number(text)


def _secondary_number(text: str, _scope: Scope) -> str | None:
    return normalise_number(text) if text else None


def _email(text: str, _scope: Scope) -> str:
    if text:
        if len(text) > 254:
            raise ValueError("At most 254 characters.")
        try:
            validate_email(text, check_deliverability=False)
        except EmailNotValidError:
            raise ValueError("Not a valid e-mail address.") from None
    return text


def _account_type(text: str, _scope: Scope) -> str:
    value = text.lower() or AccountType.PGSM.value
    if value not in {kind.value for kind in AccountType}:
        raise ValueError("Write pgsm (the softphone) or snom (a desk phone).")
    return value


def _security_model(text: str, scope: Scope) -> str | None:
    if not text:
        return None
    for model in scope.models:
        if model.lower() == text.lower():
            return model
    raise ValueError(f"Use one of the security models: {', '.join(scope.models)}.")


def _boolean(text: str, _scope: Scope) -> bool | None:
    if not text:
        return None
    if text.lower() in YES | NO:
        return text.lower() in YES
    raise ValueError("Write yes or no.")


def _mac(text: str, _scope: Scope) -> str | None:
    if not text:
        return None
    digits = re.sub(r"[\s:.\-]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{12}", digits):
        raise ValueError("A MAC address has 12 hexadecimal digits, e.g. 00:04:13:92:2D:24.")
    return digits


def _rules(text: str, _scope: Scope) -> tuple[str, ...]:
    return tuple(normalise_rule(rule) for rule in re.split(r"[;\s]+", text) if rule)


def _group(text: str, scope: Scope) -> int:
    if not text:
        return scope.default_group_id
    group = scope.groups.get(text.lower())
    if group is None:  # another group's name too: a CSR does not learn that it exists
        raise ValueError(f"Unknown group “{_short(text)}”.")
    return group[0]


def _profile(text: str, scope: Scope) -> int | None:
    if not text:
        return None
    if text.lower() not in scope.profiles:
        raise ValueError(f"Unknown provisioning profile “{_short(text)}”.")
    return scope.profiles[text.lower()]


def _date(text: str, _scope: Scope) -> str | None:
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError("Write the date as YYYY-MM-DD, e.g. 2027-12-31.") from None


PARSERS: dict[str, Callable[[str, Scope], Any]] = {
    "callerid": _primary_number, "username": _text(64), "password": _text(128), "owner": _text(128),
    "email": _email, "description": _text(2000), "group": _group, "profile": _profile,
    "account_type": _account_type, "secondary_callerid": _secondary_number, "security_model": _security_model,
    "obfuscation": _boolean, "obfuscation_key": _text(32), "keepalive": _boolean, "mac_address": _mac,
    "deny": _rules, "permit": _rules, "licence_expires_on": _date,
}


# --- helpers -------------------------------------------------------------------------------------


def _seal(text: str) -> str:
    """Encrypt rows for the jobs table: they may carry SIP passwords and customer data."""
    return vault.encrypt(text)


def _unseal(sealed: str) -> str:
    return vault.decrypt(sealed)


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
