"""Secure links for `/m/<token>`: a signed, timed random value whose hash finds its message.

A token is `URLSafeTimedSerializer(keys, salt).dumps(nonce)`: 128 random bits and nothing else (no
account id, no version). The message row keeps the nonce's SHA-256 for lookups, and the nonce itself,
encrypted with the vault's keys, only until the gateway accepts the message. So `SECRET_KEY` alone
mints nothing (no row has the hash of a made-up nonce), a copy of the database alone signs nothing,
and the link is alive while its message's link version is the account's.

Three readers verify a token and find its live link, each shaped for its caller (bench/bench_landing.py
measures what the shapes buy). Use
- read_for_page to show or probe a link and change nothing (the landing page, a HEAD): one query on a
  DriverConnection of its own (no Core execution, no ORM), for a small Glance;
- read_for_change to change the account in the ORM session (Install, a Snom first boot): the Account,
  with its profile and its group's;
- read_for_activation to consume the link on the caller's DriverConnection (activation): one row with
  everything the activation file needs.
"""

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from types import SimpleNamespace

from flask import current_app
from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.orm import joinedload

from extensions import DriverConnection, DriverStatement, db, vault
from models import Account, Device, Group, Message, Profile, Status
from services.errors import ServiceError

SALT = "provisio.secure-link.v2"  # v1 signed [account id, version, hint]: those tokens no longer verify
FORM_SALT = b"provisio.secure-link-form.v1"
NONCE_BYTES = 16  # 128 bits


class LinkGone(ServiceError):
    """The link is tampered, expired, superseded by a newer one, or already used."""

    def __init__(self, reason: str, *, link_hash: str | None = None) -> None:
        super().__init__("This link has expired or was replaced — ask your operator for a new one.")
        self.reason = reason  # for the audit log, never shown
        # A genuine link's (its signature held), so its refusal can name the account.
        self.link_hash = link_hash


@dataclass(frozen=True)
class Glance:
    """A verified link with only what its page shows, read in one light query (no ORM objects)."""

    hint: str  # the message kind it was sent as: which button the page emphasises
    owner: str
    status: Status
    security_model: str | None


# What decides whether a link is alive, under the names _ensure_alive() reads: the message's version and
# use, the account's version and staff switch.
_MESSAGE_COLUMNS = (Message.link_version.label("message_version"), Message.link_used_at)
_LINK_COLUMNS = (*_MESSAGE_COLUMNS, Account.link_version, Account.staff_disabled)
# Built once: composing a statement costs more than running it.
_FOR_PAGE = DriverStatement(
    select(Message.kind, *_LINK_COLUMNS, Account.owner, Account.status, Account.security_model)
    .join(Account, Account.id == Message.account_id)
    .where(Message.link_hash == bindparam("link_hash")))
_PROFILE = Profile.__table__
# The message's columns that decide the link, the whole account row, its effective profile (its own,
# else its group's) as profile__* columns, and whether a device holds a live credential.
_FOR_ACTIVATION = DriverStatement(
    select(Account.__table__, Message.id.label("message_id"), *_MESSAGE_COLUMNS,
           *(column.label(f"profile__{column.key}") for column in _PROFILE.c),
           exists().where(Device.account_id == Account.id, Device.revoked_at.is_(None)).label("has_device"))
    .select_from(Message.__table__)
    .join(Account.__table__, Account.id == Message.account_id)
    .join(Group.__table__, Group.id == Account.group_id)
    .outerjoin(_PROFILE, _PROFILE.c.id == func.coalesce(Account.profile_id, Group.profile_id))
    .where(Message.link_hash == bindparam("link_hash"))
)


def _keys() -> tuple[str, ...]:
    """Every key a link may be signed with, the current one last (itsdangerous signs with the last)."""
    config = current_app.config
    return (*(config.get("SECRET_KEY_FALLBACKS") or ()), config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _serializer_for(keys: tuple[str, ...]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(keys), salt=SALT)


def digest(nonce: str) -> str:
    """The SHA-256 (hex) a message keeps of its link's random part."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def attach(message: Message) -> None:
    """Give a new message a link of its own: fresh random bits, kept hashed, and encrypted until sent."""
    for column, value in new_link().items():
        setattr(message, column, value)


def new_link() -> dict[str, str]:
    """The link columns of a new message (attach's, for a bulk insert): fresh random bits, hashed and
    encrypted."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    return {"link_hash": digest(nonce), "link_nonce_encrypted": vault.encrypt(nonce)}


def token_of(message: Message) -> str:
    """Sign the link of a message that is still to be sent (the worker, and its retries)."""
    if message.link_nonce_encrypted is None:
        raise LookupError("this message's link was erased when it was sent")
    return _serializer_for(_keys()).dumps(vault.decrypt(message.link_nonce_encrypted))


def sample_url(base_url: str) -> str:
    """A link of a real one's shape and length, for previews and SMS counts: signed like a real one over
    random bits no message has the hash of, so it opens nothing."""
    return url_for_token(base_url, _serializer_for(_keys()).dumps(secrets.token_urlsafe(NONCE_BYTES)))


def url_for_token(base_url: str, token: str) -> str:
    """The public URL of a link, from the configured base, never from the request's Host."""
    return f"{base_url.rstrip('/')}/m/{token}"


def verify(token: str, *, max_age_hours: float) -> str:
    """Check a token's signature and age; return the hash its message is found by, or raise LinkGone."""
    serializer = _serializer_for(_keys())
    try:
        nonce = serializer.loads(token, max_age=int(max_age_hours * 3600))
    except SignatureExpired as exc:
        raise LinkGone("expired", link_hash=_expired_hash(serializer, exc.payload)) from None
    except (BadSignature, ValueError, TypeError):
        raise LinkGone("invalid") from None
    if not isinstance(nonce, str):
        raise LinkGone("invalid")
    return digest(nonce)


def _expired_hash(serializer: URLSafeTimedSerializer, payload: bytes | None) -> str | None:
    """The hash of a genuine but expired link (its signature held), so its refusal names the account."""
    try:
        nonce = serializer.load_payload(payload) if payload is not None else None
    except BadData:
        return None
    return digest(nonce) if isinstance(nonce, str) else None


def read_for_page(token: str, *, max_age_hours: float) -> Glance:
    """Verify a token for an answer that changes nothing (the landing page, a HEAD), or raise LinkGone.

    The hottest read of the server: one query on a DriverConnection of its own (Core's execution cost
    this page more than the query itself: bench/bench_landing.py), no ORM session.
    """
    link_hash = verify(token, max_age_hours=max_age_hours)
    with DriverConnection(db.engine) as connection:
        row = connection.one_or_none(_FOR_PAGE, {"link_hash": link_hash})
    _ensure_alive(row, link_hash)
    return Glance(str(row.kind), row.owner, row.status, row.security_model)


def read_for_change(token: str, *, max_age_hours: float) -> Account:
    """Verify a token and return its account to change in the ORM session (Install, a Snom first boot).

    The account comes with its profile and its group's; raise LinkGone if the link is dead.
    """
    link_hash = verify(token, max_age_hours=max_age_hours)
    row = db.session.execute(
        select(Account, *_LINK_COLUMNS).join(Message, Message.account_id == Account.id)
        .where(Message.link_hash == link_hash)
        .options(joinedload(Account.profile), joinedload(Account.group).joinedload(Group.profile))
    ).one_or_none()
    _ensure_alive(row, link_hash)
    return row.Account


def read_for_activation(connection: DriverConnection, token: str, *, max_age_hours: float):
    """Verify a token and read its link on `connection` for the activation to consume, or raise LinkGone.

    One row (a named tuple): the account's columns (`id` is the account's), `message_id`,
    `message_version`, `has_device`, and the effective profile as profile__* columns (profile_of reads
    them).
    """
    link_hash = verify(token, max_age_hours=max_age_hours)
    row = connection.one_or_none(_FOR_ACTIVATION, {"link_hash": link_hash})
    _ensure_alive(row, link_hash)
    return row


def profile_of(row) -> SimpleNamespace | None:
    """The effective profile of a read_for_activation row under its own names, or None."""
    if row.profile__id is None:
        return None
    return SimpleNamespace(**{column.key: getattr(row, f"profile__{column.key}") for column in _PROFILE.c})


def account_id_of(link_hash: str | None) -> int | None:
    """The account of a refused link known by its hash only, to name it in the audit log."""
    if link_hash is None:
        return None
    return db.session.scalar(select(Message.account_id).where(Message.link_hash == link_hash))


def _ensure_alive(link, link_hash: str) -> None:
    """Raise LinkGone unless a link (a row with _LINK_COLUMNS) is unused, its account's newest and enabled."""
    if link is None:
        raise LinkGone("unknown")  # a forged or guessed token, or the account was deleted
    if link.link_used_at is not None:
        raise LinkGone("reused", link_hash=link_hash)
    if link.link_version != link.message_version:
        raise LinkGone("superseded", link_hash=link_hash)
    if link.staff_disabled:
        raise LinkGone("disabled", link_hash=link_hash)


@functools.lru_cache(maxsize=8)
def _form_key(secret_key: str) -> bytes:
    return hashlib.sha256(FORM_SALT + secret_key.encode()).digest()


def _form_mac(secret_key: str, token: str) -> str:
    return hmac.new(_form_key(secret_key), token.encode(), hashlib.sha256).hexdigest()


def form_token(token: str) -> str:
    """The token of the page's forms: bound to the link, which is the end user's only session.

    An HMAC needs no cookie and no server state; it guards the Install and Activate forms as a
    session's CSRF token guards the console's (whoever holds the link can open its page anyway).
    """
    return _form_mac(current_app.config["SECRET_KEY"], token)


def form_token_matches(token: str, posted: str) -> bool:
    """True when a POST carries the form token of its link's page, made with any key still honoured."""
    posted_bytes = posted.encode()
    return any(hmac.compare_digest(_form_mac(key, token).encode(), posted_bytes) for key in _keys())
