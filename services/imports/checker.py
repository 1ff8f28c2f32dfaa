"""Checking an import's rows: each cell parsed, each row held to the account rules
(services/account_rules.py), every problem reported with its row and column; a good row becomes a
CheckedRow, which waits in the job until it is written."""

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from typing import Any, NamedTuple

from email_validator import EmailNotValidError, validate_email
from flask import current_app

from models import AccountType, StaffUser
from services import account_rules, groups, staff
from services.access_rules import normalise_rule
from services.account_rules import BY_NAME, FIELDS, Problem
from services.errors import Invalid
from services.imports.reader import FORMULA_STARTS, NUMBER_COLUMNS, short
from services.numbers import normalise_number

MAX_REPORTED_ERRORS = 5_000
YES, NO = {"yes", "y", "true", "1", "on", "x"}, {"no", "n", "false", "0", "off"}
# How a message names the accounts of a type that has not some field.
PLURALS = {AccountType.PGSM: "PGSM accounts", AccountType.SNOM: "SNOM phones"}


class CheckedRow(NamedTuple):
    """A row that passed the check: its row number and the account's fields, ready to write.

    The job keeps the rows as JSON arrays in this order (`dumps`, `loads`); a release's stored rows must
    read back in the next one, so a new field goes at the end."""

    row: int
    username: str  # empty: generated when written
    password: str  # empty: generated when written
    callerid: str
    secondary_callerid: str | None
    owner: str
    email: str
    description: str
    account_type: str
    security_model: str | None
    obfuscation: bool
    obfuscation_key: str
    keepalive: bool
    mac_address: str | None
    deny: tuple[str, ...]
    permit: tuple[str, ...]
    group_id: int
    profile_id: int | None
    licence_expires_on: str | None  # ISO date

    @staticmethod
    def dumps(rows: list["CheckedRow"]) -> str:
        """The rows as the job keeps them."""
        return json.dumps(rows)

    @classmethod
    def loads(cls, text: str) -> list["CheckedRow"]:
        """The rows the job kept."""
        return [cls(*values) for values in json.loads(text)]


class GroupRef(NamedTuple):
    """A group as rows may name it (plain values: they outlive commits)."""

    id: int
    name: str
    profile_id: int | None


@dataclass(frozen=True)
class Scope:
    """What rows may name, as the importing staff user sees it."""

    groups: dict[str, GroupRef]  # by lower-case name
    group_ids: dict[int, GroupRef]
    profiles: dict[str, int]  # lower-case name -> id
    profile_ids: frozenset[int]
    default_group_id: int
    models: tuple[str, ...]


class RowError(NamedTuple):
    """One problem of one row; the job's result keeps them as JSON arrays."""

    row: int
    column: str
    message: str


class Report:
    """Every row's errors, of which the first MAX_REPORTED_ERRORS are kept."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []
        self.count = 0
        self.rows: set[int] = set()

    def add(self, row: int, column: str, message: str) -> None:
        self.count += 1
        self.rows.add(row)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(row, column, message))

    def add_problem(self, row: int, problem: Problem) -> None:
        """Report an account rule's problem in the column of its field."""
        self.add(row, BY_NAME[problem.field].column, problem.message)

    def sorted_errors(self) -> list[RowError]:
        return sorted(self.errors, key=attrgetter("row"))


def scope_for(actor: StaffUser, default_group_id: int) -> Scope:
    """Collect the groups a staff user serves, every profile and the security models, by name."""
    served = [GroupRef(group.id, group.name, group.profile_id) for group in groups.visible_groups(actor)]
    profiles = {profile.name.lower(): profile.id for profile in groups.list_profiles()}
    return Scope(groups={group.name.lower(): group for group in served},
                 group_ids={group.id: group for group in served},
                 profiles=profiles, profile_ids=frozenset(profiles.values()),
                 default_group_id=default_group_id, models=tuple(current_app.config["SECURITY_MODELS"]))


def check_row(row: list[Any], columns: list[str], scope: Scope, report: Report) -> CheckedRow | None:
    """Turn one CSV row into an account's fields, reporting every bad cell; None when the row has errors."""
    number, cells = row[0], row[1:]
    if len(cells) != len(columns):
        report.add(number, "", f"The row has {len(cells)} cells but the header has {len(columns)} columns.")
        return None
    texts = dict(zip(columns, (cell.strip() for cell in cells), strict=True))
    before = report.count
    values = _parse(number, texts, scope, report)
    if values is None:
        return None
    values = account_rules.with_defaults(values, security_models=scope.models)
    account_type = values["account_type"]
    for field in account_rules.foreign(account_type):
        if texts.get(field.column):
            message = f"{PLURALS[account_type]} have no {field.label}; leave the cell empty."
            report.add(number, field.column, message)
    record = CheckedRow(number, **account_rules.settle(values, account_type))
    for problem in _row_problems(record, scope):
        report.add_problem(number, problem)
    return record if report.count == before else None


def scope_problem(record: CheckedRow, scope: Scope) -> Problem | None:
    """The group must be one the actor serves, the profile must exist, and a profile there must be."""
    group = scope.group_ids.get(record.group_id)
    if group is None:
        return Problem("group_id", "Unknown group.")
    if record.profile_id is not None and record.profile_id not in scope.profile_ids:
        return Problem("profile_id", "Unknown provisioning profile.")
    if account_rules.lacks_profile(record.profile_id, group.profile_id):
        return Problem("profile_id",
                       f"The group {group.name} has no provisioning profile: name one in the profile column.")
    return None


def check_unique(records: list[CheckedRow], report: Report, *, in_file: bool) -> None:
    """Report values used twice in the file (when in_file) or already used by an account."""
    if in_file:
        _check_repeats(records, report)
    taken = account_rules.taken(account_rules.wanted(records))
    for record in records:
        for problem in account_rules.clashes(record, taken):
            report.add_problem(record.row, problem)


def _parse(number: int, texts: dict[str, str], scope: Scope, report: Report) -> dict[str, Any] | None:
    """Every cell's value by field name; None when some cell is bad (each one reported)."""
    values: dict[str, Any] = {}
    before = report.count
    for field in FIELDS:
        try:
            values[field.name] = _cell(field.column, texts.get(field.column, ""), scope)
        except ValueError as exc:
            report.add(number, field.column, str(exc))
    return values if report.count == before else None


def _row_problems(record: CheckedRow, scope: Scope) -> Iterable[Problem]:
    """The account rules that tie several cells together, as the console's forms are held to them."""
    if problem := account_rules.secondary_problem(record.callerid, record.secondary_callerid):
        yield problem
    if record.password:
        try:
            staff.check_password_strength(record.password, record.username)
        except Invalid as exc:
            yield Problem("password", exc.message)
    if problem := scope_problem(record, scope):
        yield problem


def _check_repeats(records: list[CheckedRow], report: Report) -> None:
    """Report a value that an earlier row of the file holds already, in the same namespace."""
    first: dict[tuple[str, str], int] = {}
    for record in records:
        for field in account_rules.UNIQUE:
            if value := getattr(record, field.name):
                row = first.setdefault((field.unique, account_rules.unique_key(field, value)), record.row)
                if row != record.row:
                    report.add(record.row, field.column, f"{value} is also on row {row}.")


def _cell(name: str, text: str, scope: Scope) -> Any:
    if text[:1] == "'" and text[1:].startswith(FORMULA_STARTS):
        return PARSERS[name](text[1:], scope)  # marked as text, as Provisio's export (and OWASP) writes it
    if text.startswith(FORMULA_STARTS) and not (text[0] == "+" and name in NUMBER_COLUMNS):
        shown = "The password" if name == "password" else f"“{short(text)}”"
        raise ValueError(f"{shown} starts with {text[0]}: cells starting with = + - @ are refused as "
                         "spreadsheet formulas.")
    return PARSERS[name](text, scope)


# --- cell parsers: each returns the field's value or raises ValueError with the reason ---------------


def _text(limit: int) -> Callable[[str, Scope], str]:
    def parse(text: str, _scope: Scope) -> str:
        if len(text) > limit:
            raise ValueError(f"At most {limit:,} characters (this one has {len(text):,}).")
        return text

    return parse


def _username(text: str, _scope: Scope) -> str:
    return account_rules.parse_username(text) or ""


def _primary_number(text: str, _scope: Scope) -> str:
    if not text:
        raise ValueError("Every account needs its virtual phone number.")
    if problem := account_rules.wizard_number_problem(text):  # every imported account is a wizard one
        raise ValueError(problem.message)
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


def _account_type(text: str, _scope: Scope) -> str | None:
    if text and text.lower() not in {kind.value for kind in AccountType}:
        raise ValueError("Write pgsm (the softphone) or snom (a desk phone).")
    return text.lower() or None  # None: the default type


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
    return account_rules.parse_mac(text)


def _rules(text: str, _scope: Scope) -> tuple[str, ...]:
    return tuple(normalise_rule(rule) for rule in re.split(r"[;\s]+", text) if rule)


def _group(text: str, scope: Scope) -> int:
    if not text:
        return scope.default_group_id
    group = scope.groups.get(text.lower())
    if group is None:  # another group's name too: a CSR does not learn that it exists
        raise ValueError(f"Unknown group “{short(text)}”.")
    return group.id


def _profile(text: str, scope: Scope) -> int | None:
    if not text:
        return None
    if text.lower() not in scope.profiles:
        raise ValueError(f"Unknown provisioning profile “{short(text)}”.")
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


# By CSV column; a column per account field.
PARSERS: dict[str, Callable[[str, Scope], Any]] = {
    "callerid": _primary_number, "username": _username, "password": _text(128), "owner": _text(128),
    "email": _email, "description": _text(2000), "group": _group, "profile": _profile,
    "account_type": _account_type, "secondary_callerid": _secondary_number, "security_model": _security_model,
    "obfuscation": _boolean, "obfuscation_key": _text(32), "keepalive": _boolean, "mac_address": _mac,
    "deny": _rules, "permit": _rules, "licence_expires_on": _date,
}
