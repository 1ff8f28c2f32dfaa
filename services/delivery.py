"""The worker's half of the outbox: claim due messages a batch at a time, prepare them, send each through
its gateway at the gateway's pace, record what the gateways said a batch at a time.

Each database step is one short transaction, never open during a network call. services/worker.py chains
the steps over its threads: one claims and prepares, several send, one records.
"""

import functools
import json
import logging
import random
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, select, update
from sqlalchemy.orm import joinedload

import gateways
from extensions import VaultError, db, vault
from gateways import sms_http
from gateways.base import PROVIDER_ID_MAX, Outcome, Outgoing, Result
from models import Account, Channel, Message, MessageStatus, utcnow
from services import accounts, leases, links, message_templates, messaging, pace, settings
from services.errors import Invalid, ServiceError

log = logging.getLogger(__name__)
# How long a gateway waits after a provider's "slow down" that named no wait.
DEFAULT_HOLD_SECONDS = 1.0
# What a send may take at the provider at worst (Orange: a token, then the message, each up to the
# gateways' timeout): a sender waits for its slot only while this much of the lease is left after it.
SEND_SECONDS = 2 * sms_http.TIMEOUT_SECONDS
SUPERSEDED = "Superseded by a newer message before it was sent."


@dataclass(frozen=True)
class Delivery:
    """A claimed message ready for its gateway, or with its result known before any send."""

    message_id: int
    lease_until: datetime | None = None  # the lease it was claimed under: only it may hand the message back
    gateway: gateways.Gateway | None = None
    outgoing: Outgoing | None = None
    result: Result | None = None  # the account was deleted, a newer send replaced it, …


def claim(*, limit: int = 1, now=None) -> list[int]:
    """Take up to `limit` of the oldest due messages under a lease, atomically, so no two workers send one."""
    now = now or utcnow()
    return leases.claim_many(
        Message, due=and_(Message.status == MessageStatus.QUEUED, Message.next_attempt_at <= now),
        order_by=(Message.next_attempt_at, Message.id), now=now, limit=limit,
        lease=timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"]))


def prepare(ids: list[int]) -> list[Delivery]:
    """Ready claimed messages for their gateways, in one transaction. A message is rendered once, and its
    text kept: every later try sends what the first one did. An SMS names the gateway that sends it,
    whatever was default when it was queued (its receipts come from that one)."""
    messages = db.session.scalars(
        select(Message).where(Message.id.in_(ids)).order_by(Message.next_attempt_at, Message.id)
        .options(joinedload(Message.account).joinedload(Account.group))).all()
    try:
        config = settings.for_gateways() if messages else {}
    except Exception as exc:  # a stored secret no key decrypts: each message counts a try, then fails
        return [Delivery(message.id, message.lease_until,
                         result=raised(message.id, exc, "The message could not be prepared"))
                for message in messages]
    # Each channel's configured gateway, built once per batch (a channel without one raises LookupError).
    gateway_of = functools.cache(lambda channel: gateways.for_settings(channel.value, config))
    deliveries = [replace(_prepare(message, config, gateway_of), lease_until=message.lease_until)
                  for message in messages]
    db.session.commit()
    return deliveries


def send(delivery: Delivery, stop: threading.Event) -> Result | None:
    """Send one prepared message when its gateway's pace allows; None when `stop` came first (nothing
    left). A provider's "slow down" holds every sender of the gateway for the wait it asks."""
    if delivery.result is not None:
        return delivery.result
    gateway, outgoing = delivery.gateway, delivery.outgoing
    assert gateway is not None and outgoing is not None
    if stop.is_set():
        return None
    # The wait and the send both fit in what is left of the lease, or another worker could take the
    # message meanwhile and send it too. A longer wait (a held gateway, a long queue) is not waited: the
    # message goes back to the outbox until its slot, its try uncounted, and takes no slot now.
    lease = current_app.config["OUTBOX_LEASE_SECONDS"]
    lease_left = (delivery.lease_until - utcnow()).total_seconds() if delivery.lease_until else lease
    longest = min(lease / 4, lease_left - SEND_SECONDS)
    delay = pace.next_turn(gateway.name, gateway.rate, longest)
    if delay > longest:
        return Result(Outcome.THROTTLED, retry_after=max(delay, DEFAULT_HOLD_SECONDS), detail=(
            f"Waiting for a free send slot of {gateway.name} (its send rate, or a wait it asked for)."))
    if stop.wait(delay):  # at once (the flag) when the slot is now
        return None
    try:
        result = gateway.send(outgoing)
    except Exception as exc:  # a gateway bug must not leave the message leased and retried forever
        result = raised(delivery.message_id, exc, f"The {gateway.name} gateway failed")
    if result.outcome is Outcome.THROTTLED:
        pace.hold(gateway.name, _wait_of(result))
    return result


def record(results: list[tuple[Delivery, Result]]) -> None:
    """Record what the gateways said of a batch of messages, in one transaction; then apply the receipts
    that came before their sends were recorded. A message not sent whose lease ran out and that another
    worker claimed since is that worker's to record."""
    by_id = {item.message_id: (item, result) for item, result in results}
    messages = db.session.scalars(select(Message).where(Message.id.in_(by_id))
                                  .options(joinedload(Message.account))).all()
    for message in messages:
        item, result = by_id[message.id]
        if result.outcome is Outcome.SENT or message.lease_until == item.lease_until:
            _record(message, result)
    sent = [(message.gateway, message.provider_id) for message in messages
            if message.status is MessageStatus.SENT and message.provider_id]
    db.session.commit()
    messaging.apply_pending_receipts(sent)


def release(deliveries: list[Delivery]) -> None:
    """Hand claimed messages that were not sent back at once (a stopping worker): another worker may take
    them now, not when their lease ends, and the try they never had does not count. A message whose lease
    ran out and that another worker claimed since is left to that worker."""
    by_lease: dict[datetime | None, list[int]] = {}
    for item in deliveries:
        by_lease.setdefault(item.lease_until, []).append(item.message_id)
    for lease_until, ids in by_lease.items():
        db.session.execute(update(Message)
                           .where(Message.id.in_(ids), Message.status == MessageStatus.QUEUED,
                                  Message.lease_until == lease_until)
                           .values(lease_until=None, attempts=Message.attempts - 1)
                           .execution_options(synchronize_session=False))
    db.session.commit()


def deliver_due(*, limit: int = 50) -> int:
    """Send the due messages of one batch, one after another, and record them; return how many there
    were. The worker's threads do the same concurrently; this is the one-thread way (a shell, a test)."""
    stop = threading.Event()
    deliveries = prepare(claim(limit=limit))
    results = [(delivery, send(delivery, stop)) for delivery in deliveries]
    record([(delivery, result) for delivery, result in results if result is not None])
    return len(deliveries)


def render(message: Message, account: Account, config: dict) -> Outgoing:
    """Fill the kind's template; the SIP password is never among the placeholders."""
    token = links.token_of(message)
    context = {"link": links.url_for_token(config["public_base_url"], token), "owner": account.owner,
               "username": account.username, "group": account.group.name}
    subject, body = message_templates.get(message.kind, message.channel)
    return Outgoing(message.recipient, message_templates.render(subject, context),
                    message_templates.render(body, context))


def _wait_of(result: Result) -> float:
    """The seconds a "slow down" asks for: the provider's, or DEFAULT_HOLD_SECONDS when it named none."""
    return result.retry_after or DEFAULT_HOLD_SECONDS


def _prepare(message: Message, config: dict[str, Any], gateway_of) -> Delivery:
    account = message.account
    if account is None:
        return Delivery(message.id, result=Result(Outcome.PERMANENT, detail="account deleted"))
    if account.link_version != message.link_version:
        return Delivery(message.id, result=Result(Outcome.PERMANENT, detail=SUPERSEDED))
    if message.attempts > current_app.config["OUTBOX_MAX_ATTEMPTS"]:  # its workers died mid-send each time
        return Delivery(message.id, result=Result(Outcome.PERMANENT, detail=(
            f"Gave up after {message.attempts - 1} attempts: "
            "the worker stopped before recording the last one.")))
    try:
        gateway = gateway_of(message.channel)
        outgoing = _text(message, account, config)
    except (LookupError, Invalid) as exc:
        # No gateway, or a template saved before its limits existed: fail this message, don't retry it.
        detail = exc.message if isinstance(exc, Invalid) else str(exc)
        return Delivery(message.id, result=Result(Outcome.PERMANENT, detail=detail))
    except Exception as exc:  # a stored secret no key decrypts: counted as an attempt, then failed
        return Delivery(message.id, result=raised(message.id, exc, "The message could not be prepared"))
    if message.channel is Channel.SMS:
        message.gateway = gateway.name
    return Delivery(message.id, gateway=gateway, outgoing=outgoing)


def _text(message: Message, account: Account, config: dict[str, Any]) -> Outgoing:
    """The message's text as its first try rendered it; rendered and kept (encrypted: it carries the
    signed link) on the first try."""
    if message.text_encrypted:
        subject, body = json.loads(vault.decrypt(message.text_encrypted))
        return Outgoing(message.recipient, subject, body)
    outgoing = render(message, account, config)
    if message.channel is Channel.SMS:
        message_templates.check_fits(outgoing.body, config["sms"])
    message.text_encrypted = vault.encrypt(json.dumps([outgoing.subject, outgoing.body]))
    return outgoing


def raised(message_id: int, exc: Exception, what: str) -> Result:
    """A step that raised: a transient failure (a counted try) whose reason a person understands and
    names no secret."""
    current_app.logger.error("message %s: %s", message_id, what, exc_info=exc)
    if isinstance(exc, VaultError):
        reason = (f"{what}: {exc}. Restore the PROVISIO_ENCRYPTION_KEYS key it was saved with (a gateway's "
                  "secret, or this message's link), or enter the gateway's secret again in Settings.")
    elif isinstance(exc, ServiceError):
        reason = f"{what}: {exc.message}"
    else:
        reason = f"{what}: unexpected {type(exc).__name__} (the worker's log has the details)."
    return Result(Outcome.TRANSIENT, detail=reason)


def _record(message: Message, result: Result) -> None:
    config = current_app.config
    account = message.account
    message.lease_until = None
    message.last_error = result.detail or None
    if result.outcome is Outcome.SENT:
        message.status = MessageStatus.SENT
        message.sent_at = utcnow()
        # A provider's id as the column keeps it: one odd id must not fail the batch's commit.
        message.provider_id = str(result.provider_id)[:PROVIDER_ID_MAX] if result.provider_id else None
        if account is not None and account.link_version == message.link_version:
            accounts.set_status(account, message.kind.sent_status, actor=f"gateway {message.gateway}",
                                channel=message.channel.value, resend=True)
    elif account is not None and account.link_version != message.link_version:
        # A newer send replaced it before it left: it is not sent, and it did not fail.
        message.status, message.last_error = MessageStatus.SUPERSEDED, SUPERSEDED
    elif result.outcome is Outcome.THROTTLED and message.created_at < utcnow() - timedelta(
            hours=config["OUTBOX_THROTTLED_HOURS"]):
        message.status = MessageStatus.FAILED  # a provider that never stops saying "wait" is refusing
        message.last_error = (f"Given up after {config['OUTBOX_THROTTLED_HOURS']:g} hours of waiting for "
                              f"the provider: {result.detail}")
    elif result.outcome is Outcome.THROTTLED:
        message.attempts -= 1  # the provider's "wait" is no failed try
        wait = _wait_of(result)
        # Spread over up to twice the wait: the messages held together do not all come back at once.
        message.next_attempt_at = utcnow() + timedelta(seconds=wait * (1 + random.random()))
    elif result.outcome is Outcome.TRANSIENT and message.attempts < config["OUTBOX_MAX_ATTEMPTS"]:
        backoff = min(config["OUTBOX_BACKOFF_SECONDS"] * 2 ** (message.attempts - 1), 3600)
        # Jittered between half and all of it: messages that failed together retry apart.
        message.next_attempt_at = utcnow() + timedelta(seconds=backoff * (0.5 + random.random() / 2))
    else:
        message.status = MessageStatus.FAILED
    if message.status is not MessageStatus.QUEUED:  # sent or given up: only the link's hash stays
        message.link_nonce_encrypted = message.text_encrypted = None
