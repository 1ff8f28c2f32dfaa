"""The SIP server's view of the accounts: what Kamailio accepts, and who is registered now.

Provisio writes one subscriber row (and a row per virtual number) for every account into the
registrar's database; Kamailio (deploy/kamailio/kamailio.cfg) reads them on every request, so
`sync` changes what it accepts at once. Kamailio writes the registrations; `registered` reads
them. Kamailio keeps the registrations in memory too, and that copy decides: they are removed over
its control socket (`end_registrations`), never by deleting rows.

It reads accounts, never writes them, and knows nothing of who changed one: each service that
changes what the SIP server must accept (services/accounts, activation, bulk, the import) calls
`sync` with the ids once its change is committed; services/devices turns registrations into
Connected and "Registered clients".

Off unless REGISTRAR_DATABASE_URL is set: without a registrar, every function here does nothing
and Connected comes from the client app's heartbeat (services/devices.py).
"""

import hashlib
import logging
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Engine, create_engine, delete, event, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from config import database_url
from extensions import db, sqlite_pragmas, vault
from models import Account, RuleKind, utcnow
from models.registrar import location, numbers, subscriber
from services.access_rules import as_cidrs
from services.errors import ServiceError

logger = logging.getLogger(__name__)

SYNC_ATTEMPTS = 3  # writes of one chunk while its accounts keep changing under it
CHUNK = 500  # accounts per registrar transaction: short ones, in bounded memory for a 100,000-row import
# Kamailio's configuration; it reads its settings from these environment variables, Provisio's own.
KAMAILIO_CFG = os.path.join(os.path.dirname(os.path.dirname(__file__)), "deploy", "kamailio", "kamailio.cfg")
KAMAILIO_SETTINGS = ("REGISTRAR_DATABASE_URL", "REGISTRAR_LOCATION_URL", "REGISTRAR_REALM",
                     "REGISTRAR_LISTEN", "REGISTRAR_CTL", "REGISTRAR_MIN_EXPIRES", "KEEPALIVE_INTERVAL")
_ENGINES: dict[str, Engine] = {}


class RegistrarError(ServiceError):
    """Kamailio's control socket did not answer, or refused the command."""


@dataclass(frozen=True)
class Registration:
    """One contact the SIP server holds for an account now."""

    username: str
    contact: str
    source: str  # the address:port the client sends from (and is reached at)
    user_agent: str
    expires: datetime


def configured() -> bool:
    """True when Provisio runs beside a SIP server."""
    return bool(current_app.config.get("REGISTRAR_DATABASE_URL"))


def refusal(account: Account) -> str | None:
    """Why the SIP server refuses the account (its 403's reason), or None when it may register and call."""
    if account.enabled:
        return None
    return "Account not activated" if account.waiting_for_activation else "Account disabled"


def subscriber_row(account: Account, realm: str) -> dict[str, Any]:
    """The account as Kamailio reads it: digest hashes (never the password), state, numbers, SNOM rules."""
    password = vault.decrypt(account.password_encrypted)  # only its digests leave this function
    reason = refusal(account)
    return {
        "account_id": account.id,
        "username": account.username,
        "ha1": _md5(f"{account.username}:{realm}:{password}"),
        "ha1b": _md5(f"{account.username}@{realm}:{realm}:{password}"),
        "enabled": int(reason is None),
        "refusal": reason or "",
        "keepalive": int(account.keepalive),
        "callerid": account.callerid,
        "secondary_callerid": account.secondary_callerid,
        "deny": ",".join(as_cidrs(account.rules_of(RuleKind.DENY))),
        "permit": ",".join(as_cidrs(account.rules_of(RuleKind.PERMIT))),
    }


def sync(account_ids: Iterable[int] | None = None) -> bool:
    """Make the SIP server accept exactly what these accounts allow now (every account without ids).

    Call it after the account's change is committed. An id with no account (deleted) loses its
    subscriber; an account refused now, deleted or renamed also loses its current registrations.
    False when the SIP server's database could not be written: the committed change stands, and the
    worker's next full sync (every REGISTRAR_RESYNC_SECONDS) brings the SIP server in step.
    """
    if not configured():
        return True
    ids = sorted(set(account_ids)) if account_ids is not None else None
    realm = current_app.config["REGISTRAR_REALM"]
    ended: list[str] = []
    try:
        for chunk in (chunks(ids) if ids is not None else _all_account_ids()):
            ended += _sync_chunk(chunk, realm)
        if ids is None:
            ended += _drop_orphans()
    except SQLAlchemyError as exc:
        db.session.rollback()
        logger.error("the SIP server's subscribers were not updated (%s); the worker's next full sync will",
                     type(exc).__name__)
        return False
    for username in _with_registrations(ended):
        try:
            end_registrations(username)
        except RegistrarError as exc:
            # Kamailio refuses the account's requests all the same; the registration only lingers
            # in "Registered clients" until it expires.
            logger.warning("registrations of %s not ended: %s", username, exc.message)
    return True


def end_registrations(username: str) -> None:
    """End every registration of a username at once, over Kamailio's control socket (usrloc's ul.rm)."""
    # "s:": kamcmd would send a numeric username as a number, which ul.rm refuses.
    command = ["kamcmd", "-s", current_app.config["REGISTRAR_CTL"], "ul.rm", location.name, f"s:{username}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistrarError(f"kamcmd failed: {exc}") from None
    said = (result.stderr + result.stdout).strip()
    # kamcmd exits with 0 when the command itself fails, and says "error: …".
    if result.returncode != 0 or said.startswith("error"):
        raise RegistrarError(said or f"kamcmd exited with {result.returncode}")


def registered(usernames: Iterable[str] | None = None) -> list[Registration]:
    """The registrations the SIP server holds now (of these usernames), soonest expiry first."""
    if not configured():
        return []
    columns = location.c
    query = (select(columns.username, columns.contact, columns.received, columns.user_agent, columns.expires)
             .where(columns.expires > utcnow()).order_by(columns.expires, columns.id))
    if usernames is not None:
        query = query.where(columns.username.in_(list(usernames)))
    with _engine("REGISTRAR_LOCATION_URL").connect() as connection:
        rows = connection.execute(query).all()
    return [Registration(row.username, row.contact, _address(row.received or row.contact), row.user_agent,
                         row.expires) for row in rows]


def registered_usernames() -> set[str]:
    """The usernames that hold a registration now."""
    return {registration.username for registration in registered()}


def init_schema() -> None:
    """Create the registrar's missing tables.

    A SQLite file is made in WAL mode (extensions.py) and writable by its group: Kamailio, another user
    of that group, reads and writes it too (SQLite gives the -wal and -shm files the same mode).
    """
    for setting, tables in (("REGISTRAR_DATABASE_URL", [subscriber, numbers]),
                            ("REGISTRAR_LOCATION_URL", [location])):
        engine = _engine(setting)
        subscriber.metadata.create_all(engine, tables=tables)
        if engine.url.get_backend_name() == "sqlite":
            os.chmod(engine.url.database, 0o660)


def kamailio_environment(config) -> dict[str, str]:
    """The environment Kamailio's configuration reads its settings from: Provisio's own, and UTC."""
    environment = {name: str(config[name]) for name in KAMAILIO_SETTINGS}
    # Kamailio writes PostgreSQL timestamps in its local time; Provisio reads them as UTC.
    environment.update(TZ="UTC", PATH=os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
    return environment


def kamailio_command(runtime_dir: str) -> list[str]:
    """Kamailio in the foreground, logging to stderr, on Provisio's configuration."""
    return ["kamailio", "-DD", "-E", "-f", KAMAILIO_CFG, "-Y", runtime_dir]


def _sync_chunk(ids: list[int], realm: str) -> list[str]:
    """Rewrite the rows of some accounts; return the usernames to end.

    Two syncs of one account may overlap (the worker's full resync, a change's own): the one that read
    first may write last. So a chunk whose accounts changed while it was written is written again, from
    what committed meanwhile, until nothing moved under it (or SYNC_ATTEMPTS gave up, and said so).
    """
    ended: list[str] = []
    for _ in range(SYNC_ATTEMPTS):
        db.session.rollback()  # a fresh snapshot: what has committed by now
        written = _write_chunk(ids, realm, ended)
        db.session.rollback()
        if _versions(ids) == written:
            return ended
    logger.warning("the SIP server's rows of %d accounts kept changing while written; the next sync "
                   "writes them again", len(ids))
    return ended


def _versions(ids: list[int]) -> dict[int, Any]:
    """Each existing account's last change (updated_at moves on every write to the row)."""
    return dict(db.session.execute(select(Account.id, Account.updated_at).where(Account.id.in_(ids))).all())


def _write_chunk(ids: list[int], realm: str, ended: list[str]) -> dict[int, Any]:
    """Rewrite the rows of some accounts in one short transaction, adding the usernames to end to `ended`;
    return the versions (see _versions) the rows were written from."""
    query = select(Account).where(Account.id.in_(ids)).options(selectinload(Account.rules))
    read = list(db.session.scalars(query))
    versions = {account.id: account.updated_at for account in read}
    rows = [subscriber_row(account, realm) for account in read]
    number_rows = [{"account_id": row["account_id"], "number": number, "username": row["username"],
                    "domain": realm}
                   for row in rows for number in (row["callerid"], row["secondary_callerid"]) if number]
    accepted = {row["account_id"]: row["username"] for row in rows if row["enabled"]}
    # A row holding a name or number that one of these accounts has now is stale: it goes too.
    holders = or_(subscriber.c.account_id.in_(ids),
                  subscriber.c.username.in_([row["username"] for row in rows]))
    numbered = or_(numbers.c.account_id.in_(ids),
                   numbers.c.number.in_([row["number"] for row in number_rows]))
    with _engine("REGISTRAR_DATABASE_URL").begin() as connection:
        before = connection.execute(select(subscriber.c.account_id, subscriber.c.username)
                                    .where(holders)).all()
        connection.execute(delete(subscriber).where(holders))
        connection.execute(delete(numbers).where(numbered))
        if rows:
            connection.execute(insert(subscriber), rows)
        if number_rows:
            connection.execute(insert(numbers), number_rows)
    ended += [username for account_id, username in before if accepted.get(account_id) != username]
    return versions


def _drop_orphans() -> list[str]:
    """Remove the subscribers of accounts that no longer exist; return their usernames."""
    existing = set(db.session.scalars(select(Account.id)))
    with _engine("REGISTRAR_DATABASE_URL").begin() as connection:
        orphans = [row for row in connection.execute(select(subscriber.c.account_id, subscriber.c.username))
                   if row.account_id not in existing]
        for chunk in chunks([row.account_id for row in orphans]):
            connection.execute(delete(subscriber).where(subscriber.c.account_id.in_(chunk)))
            connection.execute(delete(numbers).where(numbers.c.account_id.in_(chunk)))
    return [row.username for row in orphans]


def _with_registrations(usernames: list[str]) -> list[str]:
    """The usernames that have a registration row, so that only they cost a control-socket call."""
    found: set[str] = set()
    with _engine("REGISTRAR_LOCATION_URL").connect() as connection:
        for chunk in chunks(sorted(set(usernames))):
            query = select(location.c.username).where(location.c.username.in_(chunk))
            found.update(connection.scalars(query))
    return sorted(found)


def _all_account_ids() -> Iterator[list[int]]:
    """Every account id, CHUNK at a time, in order."""
    after = 0
    while chunk := list(db.session.scalars(select(Account.id).where(Account.id > after)
                                           .order_by(Account.id).limit(CHUNK))):
        yield chunk
        after = chunk[-1]


def chunks(items: list) -> Iterator[list]:
    """The items CHUNK at a time: one short registrar transaction, or one bounded IN list, each."""
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _engine(setting: str) -> Engine:
    """One engine per registrar database and process; SQLite ones get Provisio's pragmas (extensions.py)."""
    url = database_url(current_app.config[setting])
    if url not in _ENGINES:
        options = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
        _ENGINES[url] = engine = create_engine(url, hide_parameters=True, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", sqlite_pragmas)
    return _ENGINES[url]


def _address(uri: str) -> str:
    """host:port of a SIP URI as usrloc stores it.

    `sip:user@10.0.0.1:5060;transport=tcp` → 10.0.0.1:5060.
    """
    return uri.split(":", 1)[-1].split("@")[-1].split(";")[0]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
