"""Idempotency keys: a double-clicked or retried request finds the row its first try made, and only that.

No key is stored as a client sent it. A form carries a random one-time value the server handed out;
the key kept in the database is derived from that value together with who sent it and what it is for
(the account, the kind of message), so no staff user can collide with, plant or read another's row by
naming a key. The server's own keys (one per job and account, so that a resumed job repeats nothing)
are derived in a namespace of their own, which no client value reaches."""

import hashlib
import json
import re
import secrets

from models import Channel, MessageKind, StaffUser
from services.errors import Invalid

CLIENT_VALUE = re.compile(r"[0-9a-f]{32}")  # the shape new_value() hands out, and the only one taken


def new_value() -> str:
    """Return a fresh one-time value for a form's hidden key field (128 random bits, 32 hex digits)."""
    return secrets.token_hex(16)


def from_client(value: str | None, *, actor: StaffUser, purpose: str, target: int | None = None) -> str:
    """Derive the stored key of a form's one-time value, bound to the actor, the purpose and the target."""
    if not isinstance(value, str) or not CLIENT_VALUE.fullmatch(value):
        raise Invalid("This form's one-time key is missing or was altered, so nothing was done: "
                      "reload the page and try again.")
    return _derive("client", actor.id, purpose, target, value)


def for_message(kind: MessageKind, channel: Channel, *, account_id: int, actor: StaffUser,
                value: str | None = None, job_id: int | None = None) -> str | None:
    """The stored key of a message: a job's own for each of its accounts, or the form's value bound to
    who sends what to which account; None when the send carries no key."""
    if job_id is not None:
        return for_job(job_id, account_id)
    if value is None:
        return None
    return from_client(value, actor=actor, purpose=f"message:{kind.value}:{channel.value}", target=account_id)


def for_job(job_id: int, target: int) -> str:
    """The stored key of one step of a job (its send to one account): the same on every run of the job."""
    return _derive("job", job_id, target)


def _derive(namespace: str, *parts: object) -> str:
    # SHA-256 over an unambiguous encoding: the namespace and the server's own parts come first, so
    # a client's value cannot reach another namespace or another actor's key. 64 hex digits fit the
    # columns; no secret is needed because no stored key comes from anywhere but here.
    return hashlib.sha256(json.dumps([namespace, *parts]).encode()).hexdigest()
