"""Snom desk phones: settings XML at a per-phone secret URL (or a first-boot link), to the phone whose
MAC the URL names, behind the account's deny/permit rules; every fetch audited, failures counted."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Account, AccountType, RuleKind, StaffUser, Status, utcnow
from services import accounts, audit, links, settings, throttle
from services.access_rules import is_allowed
from services.activation import ActivationFile, snom_file
from services.devices import ApiError
from services.errors import Invalid

# e.g. "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS 000413922D24)"
USER_AGENT = re.compile(r"snom(?P<model>[A-Za-z0-9]+)-SIP\s+(?P<firmware>[\d.]+)"
                        r".*?(?P<mac>[0-9A-Fa-f]{12})\b")
MAC = re.compile(r"[0-9A-Fa-f]{12}")
SECRET_BYTES = 24  # 192 random bits; token_urlsafe makes 32 URL-safe characters of them
SECRET = re.compile(r"[A-Za-z0-9_-]{32}")
PHONE = "phone"  # the audit actor of every fetch

# Every miss of the secret URL answers exactly this, so no answer tells which part was wrong.
NOT_FOUND = (404, "not_found", "No settings at this address.")
# Refusals of a request that named a real account (a valid secret or first-boot link).
REFUSALS = {
    "address_refused": (403, "This network address may not fetch these settings."),
    "account_disabled": (403, "The account is disabled."),
    "not_a_snom_phone": (400, "This address is for a Snom desk phone."),
    "other_phone": (403, "This address belongs to another phone."),
    "mac_in_use": (409, "This phone is already bound to another account."),
}


class TooManyFailures(ApiError):
    """An address used up its failed fetches for this window; nothing is looked up until it ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "throttled", "Too many failed requests from this address; try again later.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Fetch:
    """One settings request: the client address, what its User-Agent says, which URL it used."""

    ip: str
    user_agent: str
    via: str  # "secret" or "first_boot"

    def detail(self) -> dict[str, Any]:
        """What its audit row says about it besides the address."""
        return {"user_agent": self.user_agent[:256], "via": self.via}


def phone_of(user_agent: str) -> tuple[str, str, str] | None:
    """Return (model, firmware, MAC) from a Snom User-Agent, or None for anything else."""
    match = USER_AGENT.search(user_agent or "")
    return (match["model"], match["firmware"], match["mac"].upper()) if match else None


def secret_hash(secret: str) -> str:
    """The form in which a settings secret is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def settings_url(secret: str) -> str:
    """The URL entered in the phone's redirection service or DHCP option 66; the phone fills in {mac}."""
    return f"{settings.get('public_base_url').rstrip('/')}/snom/{secret}/{{mac}}.xml"


def rotate_secret(account: Account, *, actor: StaffUser | str, ip: str | None = None) -> str:
    """Give a SNOM account a new settings secret, killing the old URL; return it to be shown once."""
    if not account.is_snom:
        raise Invalid("Only SNOM desk phones have a settings URL.")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    replaced = account.snom_secret_hash is not None
    account.snom_secret_hash, account.snom_secret_set_at = secret_hash(secret), utcnow()
    account.link_version += 1  # a first-boot link sent before the rotation dies with the old URL
    audit.record(actor, "snom.rotate_secret", account, ip=ip, replaced=replaced)
    db.session.commit()
    return secret


def settings_for_secret(secret: str, mac: str, fetch: Fetch) -> ActivationFile:
    """Serve the settings of the SNOM account whose secret the URL carries, to the phone the URL names."""
    account = _account_for(secret, mac, fetch.user_agent)
    if account is None:
        # A guess: counted per address, no audit row of its own, and the same 404 for every miss.
        _count_failure(fetch)
        raise ApiError(*NOT_FOUND)
    return _serve(account, mac.upper(), fetch)


def first_boot(token: str, fetch: Fetch, *, max_age_hours: float) -> ActivationFile:
    """A token-bound URL for a new phone: binds its MAC (from the User-Agent) when the account has none."""
    try:
        account = links.read_for_change(token, max_age_hours=max_age_hours)
    except links.LinkGone:
        _count_failure(fetch)
        raise
    phone = phone_of(fetch.user_agent)
    if not account.is_snom or phone is None:
        _refuse(account, "not_a_snom_phone", fetch)
    if account.mac_address not in (None, phone[2]):
        _refuse(account, "other_phone", fetch)
    _consume(account, fetch)
    return _serve(account, phone[2], fetch)


def _consume(account: Account, fetch: Fetch) -> None:
    """A first-boot link serves once: its fetch moves the account's link version, in the transaction that
    serves (a refusal rolls it back), and of two racing fetches one wins."""
    won = db.session.execute(
        update(Account).where(Account.id == account.id, Account.link_version == account.link_version)
        .values(link_version=Account.link_version + 1),
        execution_options={"synchronize_session": False}).rowcount
    if not won:
        db.session.rollback()
        _count_failure(fetch)
        raise links.LinkGone("reused")


def _account_for(secret: str, mac: str, user_agent: str) -> Account | None:
    """The account a secret URL names, if the MAC is the requesting phone's own and the account's."""
    phone = phone_of(user_agent)
    if not (SECRET.fullmatch(secret) and MAC.fullmatch(mac)) or phone is None or phone[2] != mac.upper():
        return None
    account = db.session.scalar(select(Account).where(
        Account.snom_secret_hash == secret_hash(secret), Account.account_type == AccountType.SNOM))
    if account is None or account.mac_address not in (None, mac.upper()):
        return None
    return account


def _serve(account: Account, mac: str, fetch: Fetch) -> ActivationFile:
    """Check the address rules and the account, bind the MAC if none is, audit, and build the XML."""
    if not _address_allowed(account, fetch.ip):
        _refuse(account, "address_refused", fetch)
    if account.staff_disabled:
        _refuse(account, "account_disabled", fetch)
    if account.mac_address is None:
        _bind(account, mac, fetch)
    if accounts.set_status(account, Status.ACTIVATED, actor=PHONE) and account.wizard:
        account.enabled = True
    audit.record(PHONE, "snom.fetch", account, ip=fetch.ip, mac=mac, **fetch.detail())
    db.session.commit()
    return snom_file(account, account.effective_profile)


def _address_allowed(account: Account, ip: str) -> bool:
    """The account's deny/permit rules, deny first (services.access_rules); no usable address, no settings."""
    try:
        return is_allowed(ip, account.rules_of(RuleKind.DENY), account.rules_of(RuleKind.PERMIT))
    except ValueError:
        return False


def _bind(account: Account, mac: str, fetch: Fetch) -> None:
    """Bind the phone's MAC to an account that has none; of two phones racing for it, one wins."""
    if db.session.scalar(select(Account.id).where(Account.mac_address == mac)) is not None:
        _refuse(account, "mac_in_use", fetch)
    try:
        won = db.session.execute(
            update(Account).where(Account.id == account.id, Account.mac_address.is_(None))
            .values(mac_address=mac),
            execution_options={"synchronize_session": False}).rowcount
    except IntegrityError:  # another account took this MAC since the check above
        _refuse(account, "mac_in_use", fetch)
    db.session.refresh(account)
    if not won and account.mac_address != mac:
        _refuse(account, "other_phone", fetch)
    if won:
        audit.record(PHONE, "snom.bind_mac", account, ip=fetch.ip, mac=mac)


def _refuse(account: Account, reason: str, fetch: Fetch) -> NoReturn:
    """Undo the fetch's changes, count it as a failure, audit the refusal, and raise it."""
    db.session.rollback()
    _count_failure(fetch)
    audit.record(PHONE, "snom.fetch", account, ip=fetch.ip, outcome="refused", reason=reason,
                 **fetch.detail())
    db.session.commit()
    status, message = REFUSALS[reason]
    raise ApiError(status, reason, message)


def _count_failure(fetch: Fetch) -> None:
    """Count a failed fetch of the address; past the limit answer 429 (only the crossing one is audited).

    The count is exact under concurrency, so exactly the limit's number of failures get their own answer.
    """
    limit, window = _limits()

    def crossing() -> None:
        audit.record(PHONE, "snom.fetch", ip=fetch.ip, outcome="throttled", limit=limit,
                     window_seconds=window, **fetch.detail())
        db.session.commit()

    if throttle.over_limit(_client_key(fetch.ip), limit=limit, window_seconds=window, crossing=crossing):
        raise TooManyFailures(window)


def _limits() -> tuple[int, int]:
    return current_app.config["SNOM_GUESS_LIMIT"], current_app.config["SNOM_GUESS_WINDOW_SECONDS"]


def _client_key(ip: str) -> str:
    return throttle.client_key("snom-guess", ip)
