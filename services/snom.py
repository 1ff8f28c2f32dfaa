"""Snom desk phones: settings XML by MAC address, behind the account's deny/permit rules."""

import re

from sqlalchemy import select

from extensions import db
from models import Account, AccountType, RuleKind, Status
from services import accounts, audit, links
from services.access_rules import is_allowed
from services.activation import ActivationFile, snom_file
from services.devices import ApiError

# e.g. "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS 000413922D24)"
USER_AGENT = re.compile(r"snom(?P<model>[A-Za-z0-9]+)-SIP\s+(?P<firmware>[\d.]+).*?(?P<mac>[0-9A-Fa-f]{12})\b")


def phone_of(user_agent: str) -> tuple[str, str, str] | None:
    """Return (model, firmware, MAC) from a Snom User-Agent, or None for anything else."""
    match = USER_AGENT.search(user_agent or "")
    return (match["model"], match["firmware"], match["mac"].upper()) if match else None


def settings_for_mac(mac: str, *, ip: str, user_agent: str) -> ActivationFile:
    """Serve the settings of the SNOM account bound to this MAC, to that phone only, if its address may connect."""
    phone = phone_of(user_agent)
    if phone is None or phone[2] != mac.upper():
        # A browser, or a phone asking for another phone's settings, learns nothing.
        raise ApiError(404, "not_found", "No phone with this MAC address.")
    account = db.session.scalar(select(Account).where(
        Account.mac_address == mac.upper(), Account.account_type == AccountType.SNOM))
    if account is None:
        raise ApiError(404, "not_found", "No phone with this MAC address.")
    return _serve(account, ip=ip, user_agent=user_agent)


def first_boot(token: str, *, ip: str, user_agent: str, max_age_hours: float) -> ActivationFile:
    """A token-bound URL for a new phone: binds its MAC (from the User-Agent) when the account has none."""
    account = links.load(token, max_age_hours=max_age_hours)
    phone = phone_of(user_agent)
    if not account.is_snom or phone is None:
        raise ApiError(400, "not_a_snom_phone", "This address is for a Snom desk phone.")
    mac = phone[2]
    if account.mac_address is None:
        if db.session.scalar(select(Account.id).where(Account.mac_address == mac)):
            raise ApiError(409, "mac_in_use", "This phone is already bound to another account.")
        account.mac_address = mac
        audit.record("phone", "snom.bind_mac", account, ip=ip, mac=mac)
    elif account.mac_address != mac:
        raise ApiError(403, "other_phone", "This link belongs to another phone.")
    return _serve(account, ip=ip, user_agent=user_agent)


def _serve(account: Account, *, ip: str, user_agent: str) -> ActivationFile:
    if not is_allowed(ip, account.rules_of(RuleKind.DENY), account.rules_of(RuleKind.PERMIT)):
        db.session.rollback()
        audit.record("phone", "snom.refused", account, ip=ip, reason="address")
        db.session.commit()
        raise ApiError(403, "address_refused", "This network address may not fetch these settings.")
    if account.staff_disabled:
        raise ApiError(403, "account_disabled", "The account is disabled.")
    if accounts.set_status(account, Status.ACTIVATED, actor="phone") and account.wizard:
        account.enabled = True
    db.session.commit()
    return snom_file(account, account.effective_profile)
