"""Secure links: signed, timed, versioned tokens for `/m/<token>`. Tokens are never stored."""

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import joinedload

from extensions import db
from models import Account, Group
from services.errors import ServiceError

SALT = "provisio.secure-link.v1"


class LinkGone(ServiceError):
    """The link is tampered, expired, superseded by a newer one, or already used."""

    def __init__(self, reason: str) -> None:
        super().__init__("This link has expired or was replaced — ask your operator for a new one.")
        self.reason = reason  # for the audit log, never shown


@dataclass(frozen=True)
class Link:
    """A verified link: its account and the version it was made for."""

    account: Account
    version: int
    hint: str  # the message kind it was sent as: which button the page emphasises


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def make_token(account_id: int, version: int, hint: str = "link") -> str:
    """Sign (account id, link version, hint); any later version bump kills this token."""
    return _serializer().dumps([account_id, version, hint])


def url_for_token(base_url: str, token: str) -> str:
    """The public URL of a link, from the configured base, never from the request's Host."""
    return f"{base_url.rstrip('/')}/m/{token}"


def load(token: str, *, max_age_hours: float) -> Link:
    """Verify a token and return its link, or raise LinkGone."""
    try:
        account_id, version, hint = _serializer().loads(token, max_age=int(max_age_hours * 3600))
    except SignatureExpired:
        raise LinkGone("expired") from None
    except (BadSignature, ValueError, TypeError):
        raise LinkGone("invalid") from None
    # One query for what the page and the activation file read: the account, its profile, its group's.
    options = [joinedload(Account.profile), joinedload(Account.group).joinedload(Group.profile)]
    account = db.session.get(Account, account_id, options=options) if isinstance(account_id, int) else None
    if account is None:
        raise LinkGone("no_account")
    if account.link_version != version:
        raise LinkGone("superseded")
    if account.staff_disabled:
        raise LinkGone("disabled")
    return Link(account, version, str(hint))
