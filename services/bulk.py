"""Bulk actions over a search result or a selection: send a message, enable, disable. The accounts are
fixed when the CSR confirms; the worker runs the job in chunks; one audit row names the whole batch."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from extensions import db
from models import Account, Channel, Job, MessageKind, StaffUser
from services import accounts, idempotency, jobs, messaging, registrar
from services.errors import Invalid, ServiceError
from services.keyset import MAX_ID

KIND = "bulk"
CHUNK = 500
SENDS = {f"send-{kind.value}-{channel.value}": (kind, channel)
         for kind in (MessageKind.LINK, MessageKind.INSTALL, MessageKind.ACTIVATION) for channel in Channel}
ACTIONS = {"enable", "disable", *SENDS}


def describe(action: str) -> str:
    """The action in words, for the confirmation and progress pages."""
    if action in SENDS:
        kind, channel = SENDS[action]
        words = {MessageKind.LINK: "secure link", MessageKind.INSTALL: "installation message",
                 MessageKind.ACTIVATION: "activation message"}[kind]
        return f"Send the {words} by {'SMS' if channel is Channel.SMS else 'e-mail'}"
    return action.capitalize()


def matching_ids(user: StaffUser, *, selected: list[int] | None = None, **filters: Any) -> list[int]:
    """The ids a bulk action will touch: the ticked ones, or the whole search result, as the user sees it."""
    query = accounts.filtered(select(Account.id), user, **({} if selected is not None else filters))
    if selected is not None:
        # An id past the ids' type names no account (and SQLite cannot bind one past 64 bits).
        query = query.where(Account.id.in_([i for i in selected if 1 <= i <= MAX_ID]))
    return list(db.session.scalars(query.order_by(Account.id)))


@dataclass(frozen=True)
class Review:
    """A bulk action as the CSR reviews it: the accounts it applies to now, and its job once confirmed."""

    ids: list[int]
    job: Job | None = None
    changed: bool = False  # confirmed, but the accounts matched now are another number


def review(user: StaffUser, action: str, *, selected: list[int] | None, filters: dict[str, Any],
           typed: dict[str, Any], confirmed: bool, count: int | None, key: str | None) -> Review:
    """Find the accounts a bulk action applies to (the `selected` ids, or with None every account the
    `filters` find) and start it once the CSR confirmed that very number of accounts. The audit row names
    the ticked ids, or the search as the CSR `typed` it."""
    ids = matching_ids(user, selected=selected, **filters)
    if confirmed and count == len(ids) and key:
        scope = {"ids": ids} if selected is not None else typed
        return Review(ids, job=start(user, action, ids, key=key, scope=scope))
    return Review(ids, changed=confirmed)


def start(user: StaffUser, action: str, ids: list[int], *, key: str, scope: dict[str, Any]) -> Job:
    """Queue the bulk job and its one audit row together. `key` is the confirmation's one-time value
    (services.idempotency binds it to the user and the action): the same confirmation sent twice (a
    double click, a retried request) finds the job it started."""
    if action not in ACTIONS:
        raise Invalid("Choose one of the bulk actions.", field="action")
    if not ids:
        raise Invalid("No account is selected: tick some, or choose every account of the search.")
    stored_key = idempotency.from_client(key, actor=user, purpose=f"bulk:{action}")
    # What was touched, for the audit log: the search (or the ticked ids) and the job that ran it.
    return jobs.start(KIND, {"action": action, "ids": ids}, total=len(ids), actor=user,
                      phase=describe(action), idempotency_key=stored_key,
                      audit_action=f"bulk.{action}", audit_detail={"count": len(ids), **scope})


def run(job: Job) -> dict[str, Any]:
    """Apply the action chunk by chunk; each chunk commits, so a restarted job repeats nothing twice
    (sends carry one idempotency key per job and account)."""
    job_id, action, ids = job.id, job.payload["action"], job.payload["ids"]
    actor = db.session.get(StaffUser, job.staff_id) if job.staff_id else None
    if actor is None or not actor.active or not actor.can_write:
        raise ServiceError("The staff user who started this job may no longer change accounts.")
    skipped: Counter[str] = Counter()
    changed = 0
    for start_at in range(0, len(ids), CHUNK):
        chunk = ids[start_at:start_at + CHUNK]
        if action in SENDS:
            sent, reasons = _send(job_id, actor, chunk, *SENDS[action])
            changed += sent
            skipped.update(reasons)
        else:
            changed += _set_enabled(actor, chunk, enabled=action == "enable")
        jobs.progress(job, min(start_at + CHUNK, len(ids)))
    gone = len(ids) - changed - sum(skipped.values())
    if gone:
        skipped["deleted or moved out of your groups since"] += gone
    return {"changed": changed, "skipped": dict(skipped.most_common())}


def _send(
    job_id: int, actor: StaffUser, ids: list[int], kind: MessageKind, channel: Channel
) -> tuple[int, Counter]:
    """Queue the chunk's messages in one batch; an account deleted or moved meanwhile is simply skipped."""
    visible = db.session.scalars(accounts.scoped(select(Account.id).where(Account.id.in_(ids)), actor)
                                 .order_by(Account.id))
    batch = messaging.queue_many(list(visible), kind, channel, actor=actor, job_id=job_id, audited=False)
    return len(batch.sent), Counter(_reason(exc.message, account) for account, exc in batch.refused)


def _set_enabled(actor: StaffUser, ids: list[int], *, enabled: bool) -> int:
    """One UPDATE per chunk, with the effect of accounts.set_enabled on each account."""
    values: dict[str, Any] = {"enabled": enabled, "staff_disabled": not enabled}
    if not enabled:
        values["link_version"] = Account.link_version + 1  # every link sent so far dies
    visible = accounts.scoped(select(Account.id).where(Account.id.in_(ids)), actor)
    result = db.session.execute(update(Account).where(Account.id.in_(visible.scalar_subquery()))
                                .values(**values).execution_options(synchronize_session=False))
    db.session.commit()
    registrar.sync(ids)
    return result.rowcount


def _reason(message: str, account: Any) -> str:
    """A skip reason without the account's own values (`account`: an Account, or the row queue_many read),
    so equal reasons count together."""
    for value, word in ((account.username, "the account"), (account.callerid, "its number"),
                        (account.email, "its e-mail address")):
        if value:
            message = message.replace(value, word)
    return message
