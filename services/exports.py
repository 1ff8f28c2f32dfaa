"""CSV export of an account search: the import's header, so a file goes back in as it came out; cells a
spreadsheet would run as a formula are neutralised; secrets are never written."""

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from extensions import db
from models import Account, RuleKind, StaffUser
from services import accounts, audit
from services.imports import COLUMN_NAMES, FORMULA_STARTS, NUMBER_COLUMNS

CHUNK = 1000


def start(user: StaffUser, **filters: Any) -> Iterator[str]:
    """Check the search and record the export (one audit row, committed now); return the CSV lines to stream.
    A wrong search raises QueryError before anything is recorded."""
    count = db.session.scalar(accounts.filtered(select(func.count(Account.id)), user, **filters))
    # Built now, while the user is at hand: the lines are written after the view has returned.
    query = accounts.filtered(select(Account), user, **filters)
    audit.record(user, "account.export", count=count, search=filters.get("search") or "")
    db.session.commit()
    return _lines(query)


def _lines(query: Select) -> Iterator[str]:
    yield _line(COLUMN_NAMES)
    after = 0
    while True:  # keyset chunks: memory stays flat at 100,000 accounts
        chunk = (query.where(Account.id > after).order_by(Account.id).limit(CHUNK)
                 .options(selectinload(Account.rules), selectinload(Account.group),
                          selectinload(Account.profile)))
        rows = list(db.session.scalars(chunk))
        if not rows:
            return
        for account in rows:
            pairs = zip(COLUMN_NAMES, _values(account), strict=True)
            yield _line([_neutral(name, value) for name, value in pairs])
        after = rows[-1].id
        for account in rows:  # only what this chunk loaded: the staff user stays in the session
            for rule in account.rules:
                db.session.expunge(rule)
            db.session.expunge(account)


def _values(account: Account) -> list[str]:
    # The columns are the account's fields (services/account_rules.FIELDS); how each is written is the
    # export's own, as the import reads it back. A field added there without its text here fails loudly.
    by_name = {
        "callerid": account.callerid, "username": account.username, "password": "",  # never exported
        "owner": account.owner, "email": account.email, "description": account.description,
        "group": account.group.name, "profile": account.profile.name if account.profile else "",
        "account_type": account.account_type.value, "secondary_callerid": account.secondary_callerid or "",
        "security_model": account.security_model or "",
        "obfuscation": "" if account.is_snom else _yes(account.obfuscation),
        "obfuscation_key": account.obfuscation_key,
        "keepalive": "" if account.is_snom else _yes(account.keepalive),
        "mac_address": account.mac_address or "", "deny": ";".join(account.rules_of(RuleKind.DENY)),
        "permit": ";".join(account.rules_of(RuleKind.PERMIT)),
        "licence_expires_on": account.licence_expires_on.isoformat() if account.licence_expires_on else "",
    }
    return [by_name[name] for name in COLUMN_NAMES]


def _neutral(name: str, value: str) -> str:
    """Prefix a cell a spreadsheet would evaluate with an apostrophe (OWASP); a +number stays a number."""
    if name in NUMBER_COLUMNS and value[1:].isdigit():
        return value
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _line(cells) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()
