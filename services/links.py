"""Secure links: signed, timed, versioned tokens for `/m/<token>`. Tokens are never stored."""

import functools
import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from extensions import db
from models import Account, Group, Status
from services.errors import ServiceError

SALT = "provisio.secure-link.v1"
FORM_SALT = b"provisio.secure-link-form.v1"


class LinkGone(ServiceError):
    """The link is tampered, expired, superseded by a newer one, or already used."""

    def __init__(self, reason: str) -> None:
        super().__init__("This link has expired or was replaced — ask your operator for a new one.")
        self.reason = reason  # for the audit log, never shown


@dataclass(frozen=True)
class Glance:
    """A verified link with only what its page shows, read in one light query (no ORM objects)."""

    hint: str  # the message kind it was sent as: which button the page emphasises
    owner: str
    status: Status
    security_model: str | None


# Built once: composing a statement costs more than running it.
_GLANCE = select(Account.link_version, Account.staff_disabled, Account.owner, Account.status,
                 Account.security_model).where(Account.id == bindparam("account_id"))


def _serializer() -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _serializer_for(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(account_id: int, version: int, hint: str = "link") -> str:
    """Sign (account id, link version, hint); any later version bump kills this token."""
    return _serializer().dumps([account_id, version, hint])


def url_for_token(base_url: str, token: str) -> str:
    """The public URL of a link, from the configured base, never from the request's Host."""
    return f"{base_url.rstrip('/')}/m/{token}"


def verify(token: str, *, max_age_hours: float) -> tuple[int, int, str]:
    """Check a token's signature and age; return (account id, version, hint) or raise LinkGone."""
    try:
        account_id, version, hint = _serializer().loads(token, max_age=int(max_age_hours * 3600))
    except SignatureExpired:
        raise LinkGone("expired") from None
    except (BadSignature, ValueError, TypeError):
        raise LinkGone("invalid") from None
    if not isinstance(account_id, int):
        raise LinkGone("invalid")
    return account_id, version, str(hint)


def load(token: str, *, max_age_hours: float) -> Account:
    """Verify a token and return its account (with its profile and its group's), or raise LinkGone."""
    account_id, version, _hint = verify(token, max_age_hours=max_age_hours)
    options = [joinedload(Account.profile), joinedload(Account.group).joinedload(Group.profile)]
    account = db.session.get(Account, account_id, options=options)
    ensure_alive(account, version)
    return account


def glance(token: str, *, max_age_hours: float) -> Glance:
    """Verify a token for its landing page, the hottest read of the server, or raise LinkGone."""
    account_id, version, hint = verify(token, max_age_hours=max_age_hours)
    with db.engine.connect() as connection:  # no ORM session: nothing to track, nothing to close
        row = connection.execute(_GLANCE, {"account_id": account_id}).one_or_none()
    ensure_alive(row, version)
    return Glance(hint, row.owner, row.status, row.security_model)


def ensure_alive(account, version: int) -> None:
    """Raise LinkGone unless the account (an ORM object or a row) still honours this link version."""
    if account is None:
        raise LinkGone("no_account")
    if account.link_version != version:
        raise LinkGone("superseded")
    if account.staff_disabled:
        raise LinkGone("disabled")


def form_token(token: str) -> str:
    """The token of the page's forms: bound to the link, which is the end user's only session.

    An HMAC needs no cookie and no server state; it guards the Install and Activate forms as a
    session's CSRF token guards the console's (whoever holds the link can open its page anyway).
    """
    key = hashlib.sha256(FORM_SALT + current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def form_token_matches(token: str, posted: str) -> bool:
    """True when a POST carries the form token of its link's page."""
    return hmac.compare_digest(form_token(token).encode(), posted.encode())
