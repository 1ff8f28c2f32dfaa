"""The outbox: queue a message with the change that causes it; the worker delivers it."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import Row, delete, false, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

import gateways
from extensions import db
from gateways.base import Outcome, Outgoing, Receipt, Result
from models import (
    Account,
    AuditEvent,
    Channel,
    Message,
    MessageKind,
    MessageStatus,
    PendingReceipt,
    StaffUser,
    utcnow,
)
from services import accounts, audit, idempotency, keyset, links, settings
from services.errors import Invalid, NotFound, ServiceError, Throttled

log = logging.getLogger(__name__)
# A receipt that names no message we know waits this long for the worker to record the send. Vonage
# sends one receipt per part of a long SMS and only the first part's id is kept: the others expire.
PENDING_RECEIPT_HOURS = 48

def queue(account: Account, kind: MessageKind, channel: Channel, *, actor: StaffUser,
          idempotency_key: str | None = None, job_id: int | None = None, audited: bool = True) -> Message:
    """Queue a message with a new link (older links die) in the same transaction. `idempotency_key` is
    the one-time value of the form that asked (a double click sends once); a job passes its id instead
    (a resumed job sends once per account). A bulk send passes `audited=False`: its one audit row names
    the whole batch."""
    channel = kind.channel_for(channel)
    key = idempotency.for_message(kind, channel, account_id=account.id, actor=actor, value=idempotency_key,
                                  job_id=job_id)
    if key and (existing := _by_key(key, account)) is not None:
        return existing
    recipient = _sendable(account, channel)
    _check_rate(account)
    gateway = _gateway_name(channel)
    account.link_version += 1  # every older link of this account now answers 410
    message = Message(account=account, kind=kind, channel=channel, recipient=recipient, gateway=gateway,
                      link_version=account.link_version, idempotency_key=key,
                      requested_by=actor.username)
    links.attach(message)  # its own random link: hashed for lookups, encrypted until sent
    db.session.add(message)
    if audited:
        audit.record(actor, "message.queue", account, kind=str(kind), channel=str(channel))
    try:
        db.session.commit()
    except IntegrityError:  # the same key won a race: the first request's message stands
        db.session.rollback()
        if key and (existing := _by_key(key, account)) is not None:
            return existing
        raise
    return message


@dataclass(frozen=True)
class Batch:
    """What queue_many did with each account it was given."""

    sent: list[int]  # the ids of the accounts that have their message (now, or from an earlier run)
    refused: list[tuple[Row | Account, ServiceError]]  # the account (its username, callerid, email) and why
    missing: list[int]  # ids that name no account (deleted meanwhile)


def queue_many(account_ids: Sequence[int], kind: MessageKind, channel: Channel, *, actor: StaffUser,
               job_id: int, audited: bool = True) -> Batch:
    """Queue one message to each account as `queue` would one by one with a job's keys, with the same
    rules and refusals, in a few statements and one commit: a lookup of the keys already used, the rows
    locked together (and read fresh), one grouped count for the send rate, one INSERT of the messages,
    one UPDATE of the link versions (older links die) and, if `audited`, one INSERT of the audit rows.
    Keep a batch to a few hundred accounts (services.bulk.CHUNK): its rows stay locked until it commits."""
    channel = kind.channel_for(channel)
    keys = {account_id: idempotency.for_message(kind, channel, account_id=account_id, actor=actor,
                                                job_id=job_id) for account_id in dict.fromkeys(account_ids)}
    done = _by_keys(keys)
    rows = _lock([account_id for account_id in keys if account_id not in done])
    recipients, refused = _check_all(rows, channel)
    if recipients:
        try:
            gateway = _gateway_name(channel)
        except Invalid as exc:  # refused to each account in turn, as queue refuses it
            refused += [(row, exc) for row in rows if row.id in recipients]
            recipients = {}
    try:
        if recipients:
            _insert([row for row in rows if row.id in recipients], recipients, kind, channel, gateway, keys,
                    actor=actor, audited=audited)
        db.session.commit()
    except IntegrityError:  # a key won a race (two workers ran one job): one by one, queue settles each
        db.session.rollback()
        return _one_by_one(list(keys), kind, channel, actor=actor, job_id=job_id, audited=audited)
    found = {row.id for row in rows}
    return Batch(sent=[account_id for account_id in keys if account_id in done or account_id in recipients],
                 refused=refused, missing=[account_id for account_id in keys
                                           if account_id not in done and account_id not in found])


def _check_all(rows: Sequence[Row], channel: Channel) -> tuple[dict[int, str], list]:
    """queue's checks on locked accounts, in its order bar the gateway's: the address a send to each goes
    to, or why not."""
    recipients, refused = {}, []
    recent = _recent_counts([row.id for row in rows])
    for row in rows:
        try:
            recipients[row.id] = _sendable(row, channel)
            if (refusal := _throttled(row, recent.get(row.id, 0))) is not None:
                raise refusal
        except ServiceError as exc:
            recipients.pop(row.id, None)
            refused.append((row, exc))
    return recipients, refused


def _insert(sending: Sequence[Row], recipients: dict[int, str], kind: MessageKind, channel: Channel,
            gateway: str, keys: dict[int, str], *, actor: StaffUser, audited: bool) -> None:
    """queue_many's writes: the messages, each with its own link, the accounts' new link versions (every
    older link now answers 410) and the audit rows."""
    db.session.execute(insert(Message.__table__), [
        {"account_id": row.id, "kind": kind, "channel": channel, "recipient": recipients[row.id],
         "gateway": gateway, "link_version": row.link_version + 1, "idempotency_key": keys[row.id],
         "requested_by": actor.username, **links.new_link()} for row in sending])
    db.session.execute(update(Account).where(Account.id.in_(list(recipients)))
                       .values(link_version=Account.link_version + 1)
                       .execution_options(synchronize_session=False))
    if audited:
        db.session.execute(insert(AuditEvent), [
            audit.values(actor, "message.queue", _AccountRef(row.id, row.username), kind=str(kind),
                         channel=str(channel)) for row in sending])


def _one_by_one(account_ids: list[int], kind: MessageKind, channel: Channel, *, actor: StaffUser,
                job_id: int, audited: bool) -> Batch:
    """queue_many's batch, account by account through queue (which settles a race on a key)."""
    sent, refused, missing = [], [], []
    for account_id in account_ids:
        if (account := db.session.get(Account, account_id)) is None:
            missing.append(account_id)
            continue
        try:
            queue(account, kind, channel, actor=actor, job_id=job_id, audited=audited)
            sent.append(account_id)
        except ServiceError as exc:
            db.session.rollback()
            refused.append((account, exc))
    return Batch(sent=sent, refused=refused, missing=missing)


def _sendable(account: Account | Row, channel: Channel) -> str:
    """The address a message to the account goes to, or the refusal of a send to it (bar the rate)."""
    if account.staff_disabled:
        raise Invalid(f"{account.username} is disabled: enable it before sending a link.")
    return _recipient(account, channel)


def for_account(account: Account, limit: int = 50) -> list[Message]:
    """Return an account's newest messages."""
    return list(db.session.scalars(
        select(Message).where(Message.account_id == account.id).order_by(Message.id.desc()).limit(limit)
    ))


def search(user: StaffUser, *, status: MessageStatus | None = None, gateway: str = "",
           kind: MessageKind | None = None, day: date | None = None, before: keyset.Cursor = None,
           page_size: int = 50) -> tuple[list[Message], int | None]:
    """Return one newest-first page of the messages the user may see, filtered."""
    query = select(Message).outerjoin(Account)
    query = accounts.scoped(query, user) if not user.is_admin else query
    if status:
        query = query.where(Message.status == status)
    if gateway:
        query = query.where(Message.gateway == gateway)
    if kind:
        query = query.where(Message.kind == kind)
    if day:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        query = query.where(Message.created_at >= start, Message.created_at < start + timedelta(days=1))
    return keyset.newest_first(query, Message.id, before=before, page_size=page_size)


def today_counts(user: StaffUser) -> dict[str, int]:
    """Messages sent (or delivered) and failed since midnight UTC, among those the user may see."""
    start = datetime.combine(utcnow().date(), time.min, tzinfo=UTC)
    query = (select(Message.status, func.count(Message.id)).outerjoin(Account)
             .where(Message.updated_at >= start).group_by(Message.status))
    query = accounts.scoped(query, user) if not user.is_admin else query
    counts = {status: n for status, n in db.session.execute(query)}
    return {"sent": counts.get(MessageStatus.SENT, 0) + counts.get(MessageStatus.DELIVERED, 0),
            "failed": counts.get(MessageStatus.FAILED, 0), "queued": counts.get(MessageStatus.QUEUED, 0)}


def get_for_account(account: Account, message_id: int) -> Message:
    """Return one message of an account, or raise NotFound."""
    message = db.session.get(Message, message_id)
    if message is None or message.account_id != account.id:
        raise NotFound("No such message.")
    return message


def send_test(channel: Channel, recipient: str, *, actor: StaffUser) -> Result:
    """Send a test message now through the channel's gateway and report the provider's own answer."""
    outgoing = Outgoing(recipient, "Provisio test message", f"The {channel.value} gateway of Provisio works.")
    try:
        result = gateways.for_settings(channel.value, settings.for_gateways()).send(outgoing)
    except LookupError as exc:
        result = Result(Outcome.PERMANENT, detail=str(exc))
    audit.record(actor, f"settings.test_{channel.value}", outcome=str(result.outcome))
    db.session.commit()
    return result


def record_receipt(gateway: str, receipt: Receipt) -> bool:
    """Apply a provider's final delivery receipt: sent → delivered or failed. A receipt for a send the
    worker has not recorded yet is kept and applied when it is (never lost, never a retry we depend on).
    Applying the same receipt again changes nothing more: providers retry, and so may we."""
    if receipt.status is None:
        return False
    if _apply_receipt(gateway, receipt.provider_id, receipt.status, receipt.detail):
        db.session.commit()
        return True
    _keep_receipt(gateway, receipt)
    # The worker may have recorded the send between our look-up and our commit, and looked for this
    # receipt before it was kept: look once more now that it is. Each side writes, commits, then reads,
    # so at least one of them sees the other.
    return _apply_pending(gateway, receipt.provider_id)


def apply_pending_receipts(sent: list[tuple[str, str]]) -> None:
    """Apply the kept receipts of sends just recorded, as (gateway, provider id): one look-up for all."""
    if not sent:
        return
    kept = set(db.session.execute(select(PendingReceipt.gateway, PendingReceipt.provider_id)
                                  .where(PendingReceipt.provider_id.in_({pid for _, pid in sent}))).all())
    db.session.rollback()
    for gateway, provider_id in sent:
        if (gateway, provider_id) in kept:
            _apply_pending(gateway, provider_id)


def _apply_receipt(gateway: str, provider_id: str, status: str, detail: str) -> bool:
    """Move the sent message a receipt names to delivered or failed, uncommitted; False if none is sent."""
    message = db.session.scalar(select(Message).where(Message.gateway == gateway,
                                                      Message.provider_id == provider_id))
    settled = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED)
    if message is None or message.status not in settled:
        return False
    if message.status is MessageStatus.FAILED and message.sent_at is None:
        return False  # failed before it was ever sent: no receipt speaks for it
    message.status = MessageStatus.DELIVERED if status == "delivered" else MessageStatus.FAILED
    message.last_error = None if status == "delivered" else (
        f"The provider reported the message as not delivered: {detail}" if detail
        else "The provider reported the message as not delivered.")
    return True


def _keep_receipt(gateway: str, receipt: Receipt) -> None:
    """Keep (or update) a receipt that names no recorded send; forget the ones that waited too long."""
    cutoff = utcnow() - timedelta(hours=PENDING_RECEIPT_HOURS)
    db.session.execute(delete(PendingReceipt).where(PendingReceipt.received_at < cutoff))
    values = {"status": receipt.status, "detail": receipt.detail[:500], "received_at": utcnow()}
    kept = db.session.scalar(select(PendingReceipt).where(PendingReceipt.gateway == gateway,
                                                          PendingReceipt.provider_id == receipt.provider_id))
    if kept is None:
        db.session.add(PendingReceipt(gateway=gateway, provider_id=receipt.provider_id, **values))
    else:
        for key, value in values.items():
            setattr(kept, key, value)
    try:
        db.session.commit()
    except IntegrityError:  # the same receipt, retried by the provider, was kept a moment ago
        db.session.rollback()


def _apply_pending(gateway: str, provider_id: str) -> bool:
    """Apply and forget a kept receipt for a send now recorded; False when there is none or no send yet."""
    kept = db.session.scalar(select(PendingReceipt).where(PendingReceipt.gateway == gateway,
                                                          PendingReceipt.provider_id == provider_id))
    if kept is None or not _apply_receipt(gateway, provider_id, kept.status, kept.detail):
        db.session.rollback()
        return False
    # The worker and the callback may both get here for one receipt: a statement, not the ORM's delete,
    # so the one that finds the row already gone is not an error.
    db.session.execute(delete(PendingReceipt).where(PendingReceipt.id == kept.id))
    db.session.commit()
    return True


def _recipient(account: Account, channel: Channel) -> str:
    if channel is Channel.EMAIL:
        if not account.email:
            raise Invalid(f"{account.username} has no e-mail address: add one, or send an SMS.")
        return account.email
    if not account.callerid.startswith("+"):
        raise Invalid(f"{account.callerid} is not an international mobile number: "
                      "SMS needs +<country><number>.")
    return account.callerid


def _check_rate(account: Account) -> None:
    """Refuse a send over the account's limit, counted under the account's row lock (see _lock):
    concurrent sends to one account count one after another, and the limit holds exactly."""
    for row in _lock([account.id]):  # a send that held the lock before may have moved the version
        set_committed_value(account, "link_version", row.link_version)
    if (refusal := _throttled(account, _recent_counts([account.id]).get(account.id, 0))) is not None:
        db.session.rollback()  # hands the lock on at once
        raise refusal


def _lock(account_ids: list[int]) -> list[Row]:
    """Lock the accounts' rows until the caller commits and read what a send checks, in id order (two
    batches never wait for each other in a circle). PostgreSQL locks the rows; SQLite has no row locks:
    a write that changes no row first takes the database's write lock (its driver begins each
    transaction that writes with BEGIN IMMEDIATE, see extensions.py)."""
    if not account_ids:
        return []
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(Account).where(false()).values(link_version=Account.link_version)
                           .execution_options(synchronize_session=False))
    return list(db.session.execute(
        select(Account.id, Account.username, Account.callerid, Account.email, Account.staff_disabled,
               Account.link_version)
        .where(Account.id.in_(account_ids)).order_by(Account.id).with_for_update()))


def _recent_counts(account_ids: list[int]) -> dict[int, int]:
    """How many messages each account got within the send-rate window (accounts with none are left out)."""
    since = utcnow() - timedelta(minutes=current_app.config["SEND_RATE_MINUTES"])
    if not account_ids:
        return {}
    return dict(db.session.execute(
        select(Message.account_id, func.count(Message.id))
        .where(Message.account_id.in_(account_ids), Message.created_at >= since)
        .group_by(Message.account_id)).all())


def _throttled(account: Account | Row, recent: int) -> Throttled | None:
    """The refusal of a send to an account that got `recent` messages within the window, if over the limit."""
    config = current_app.config
    if recent < config["SEND_RATE_LIMIT"]:
        return None
    return Throttled(f"{account.username} already got {recent} messages in the last "
                     f"{config['SEND_RATE_MINUTES']} minutes; wait before sending again.")


def _gateway_name(channel: Channel) -> str:
    if channel is Channel.EMAIL:
        return settings.get("mail").get("mode", "smtp")
    name = settings.get("sms").get("gateway")
    if not name:
        raise Invalid("No SMS gateway is configured yet: send by e-mail, or ask an administrator.")
    return name


def _by_key(key: str, account: Account) -> Message | None:
    # The account too: a key names one account's message, never another's.
    return db.session.scalar(select(Message).where(Message.idempotency_key == key,
                                                   Message.account_id == account.id))


def _by_keys(keys: dict[int, str]) -> set[int]:
    """The accounts among `keys` (account id: key) that have the message of their key, as _by_key finds it."""
    if not keys:
        return set()
    found = db.session.execute(select(Message.account_id, Message.idempotency_key)
                               .where(Message.idempotency_key.in_(list(keys.values()))))
    return {account_id for account_id, key in found if keys.get(account_id) == key}


class _AccountRef(NamedTuple):
    """An account as an audit row names it, without loading it."""

    id: int
    username: str
    __tablename__ = Account.__tablename__
