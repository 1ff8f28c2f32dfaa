"""SIP accounts: creation (plain and wizard), edits, lifecycle, and the actions on one account."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db, vault
from models import (
    AccessRule,
    Account,
    AccountType,
    Device,
    Group,
    LicenceState,
    Profile,
    PublicKey,
    RuleKind,
    StaffUser,
    Status,
    StatusEvent,
    utcnow,
)
from services import account_rules, audit, groups, keyset, registrar
from services.errors import Conflict, Invalid, NotFound
from services.search import condition as search_condition
from services.staff import check_password_strength


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paginated list; `next_before` is the cursor of the next page."""

    items: list[Account]
    next_before: int | None


def scoped(query: Select, user: StaffUser) -> Select:
    """Limit an account query to the groups a staff user serves."""
    if user.is_admin:
        return query
    return query.where(Account.group_id.in_(user.group_ids or [-1]))


def get_visible(account_id: int, user: StaffUser) -> Account:
    """Return an account the user may see; another group's account does not exist for them."""
    account = db.session.scalar(scoped(select(Account).where(Account.id == account_id), user))
    if account is None:
        raise NotFound("No such account.")
    return account


COUNT_LIMIT = 10_000  # the account list counts its matches this far


def list_page(user: StaffUser, *, before: keyset.Cursor = None, page_size: int = 50, **filters: Any) -> Page:
    """Return newest-first accounts, one page at a time, without OFFSET (filters: see `filtered`)."""
    return Page(*keyset.newest_first(filtered(select(Account), user, **filters), Account.id,
                                     before=before, page_size=page_size))


def count_matching(user: StaffUser, **filters: Any) -> int:
    """How many accounts the list's filters find (see `filtered`), counted up to COUNT_LIMIT + 1 at most:
    a page load must not cost a scan of every account, so past the limit the list says "more than"."""
    matching = filtered(select(Account.id), user, **filters).limit(COUNT_LIMIT + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(matching))


def filtered(query: Select, user: StaffUser, *, search: str = "", group_id: int | None = None,
             status: Status | None = None, online_since: datetime | None = None) -> Select:
    """The account list's filters on any account query: a Lucene `search` (services.search; a wrong one
    raises QueryError), a group, a status, connected now (see _connected); always scoped to the user."""
    query = scoped(query, user)
    if search:
        query = query.where(search_condition(search, user))
    if group_id:
        query = query.where(Account.group_id == group_id)
    if status:
        query = query.where(Account.status == status)
    if online_since:
        query = query.where(_connected(online_since))
    return query


def _connected(online_since: datetime):
    """Connected now: registered at the SIP server when there is one, else a device seen since a moment."""
    if registrar.configured():
        return Account.username.in_(sorted(registrar.registered_usernames()))
    return Account.devices.any(Device.heard_since(online_since))


def new_username() -> str:
    """Return a random numeric username that no account has yet."""
    return account_rules.new_usernames(1, length=current_app.config["USERNAME_LENGTH"])[0]


def new_password() -> str:
    """Return a strong random SIP password (never shown, only carried by the activation file)."""
    return account_rules.new_passwords(1, length=current_app.config["GENERATED_PASSWORD_LENGTH"])[0]


def sip_password(account: Account) -> str:
    """Decrypt an account's SIP password, for the activation file only (the SIP server gets digests)."""
    return vault.decrypt(account.password_encrypted)


def create(data: dict[str, Any], *, wizard: bool, actor: StaffUser) -> Account:
    """Create an account: plain ones are enabled at once, wizard ones wait for activation."""
    group = _group_for(data["group_id"], actor)
    account_type = AccountType(data["account_type"])
    data = account_rules.settle(data, account_type)
    if wizard:
        password = new_password()
        if problem := account_rules.wizard_number_problem(data["callerid"]):
            raise Invalid(problem.message, field=problem.field)
        profile = _profile(data.get("profile_id"))
        _require_profile(profile.id if profile else None, group)
    else:
        password = data["password"]
        check_password_strength(password, data["username"])
    account = Account(
        account_type=account_type,
        callerid=data["callerid"],  # both numbers are fixed once the account exists
        secondary_callerid=data.get("secondary_callerid") or None,
        password_encrypted=vault.encrypt(password),
        wizard=wizard,
        enabled=not wizard,
    )
    _apply(account, data)
    db.session.add(account)
    _check_unique(account)
    _set_rules(account, data)
    account.status_events.append(StatusEvent(status=Status.CREATED, actor=actor.username))
    _commit(account, actor, "account.create", wizard=wizard)
    registrar.sync([account.id])
    return account


def update_account(account: Account, data: dict[str, Any], *, actor: StaffUser) -> Account:
    """Save a CSR's edit; the type and both virtual numbers stay as created."""
    group = _group_for(data["group_id"], actor)
    if account.wizard:
        _require_profile(data.get("profile_id", account.profile_id), group)
    changed = sorted(name for name in account_rules.EDITABLE
                     if name in data and getattr(account, name) != data[name])
    data = account_rules.settle(data, account.account_type)
    _apply(account, data)
    _check_unique(account)
    _set_rules(account, data)
    _commit(account, actor, "account.update", fields=changed)
    registrar.sync([account.id])
    return account


def delete(account: Account, *, actor: StaffUser) -> None:
    """Delete an account, its history and keys; the audit trail keeps its name."""
    account_id = account.id
    audit.record(actor, "account.delete", account)
    db.session.delete(account)
    db.session.commit()
    registrar.sync([account_id])  # its subscriber goes, and its registrations end


def set_enabled(account: Account, enabled: bool, *, actor: StaffUser) -> None:
    """Enable or disable an account; disabling also kills every link sent so far."""
    account.enabled = enabled
    account.staff_disabled = not enabled
    if not enabled:
        account.link_version += 1
    audit.record(actor, "account.enable" if enabled else "account.disable", account)
    db.session.commit()
    registrar.sync([account.id])


def revoke_keys(account: Account, *, actor: StaffUser) -> int:
    """Revoke every public key; the client may upload a new one only after re-provisioning."""
    result = db.session.execute(
        update(PublicKey)
        .where(PublicKey.account_id == account.id, PublicKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    account.keys_locked = True
    audit.record(actor, "account.revoke_keys", account, revoked=result.rowcount)
    db.session.commit()
    return result.rowcount


def rotate_password(account: Account, *, actor: StaffUser) -> None:
    """Give the account a new SIP password; devices fetch it, older links die."""
    account.password_encrypted = vault.encrypt(new_password())
    account.link_version += 1
    audit.record(actor, "account.rotate_password", account)
    db.session.commit()
    registrar.sync([account.id])


def clear_licence(account: Account, *, actor: StaffUser) -> None:
    """Unbind the licence so a replaced or stuck device can validate again."""
    account.licence_state = LicenceState.CLEARED
    account.licence_device = None
    audit.record(actor, "account.clear_licence", account)
    db.session.commit()


def status_moves(
    account: Account, status: Status, *, channel: str | None = None, resend: bool = False
) -> bool:
    """True when the lifecycle may go to `status`: forward, or back to a "sent" state on resend."""
    if status.rank < account.status.rank and not resend:
        return False
    return status is not account.status or channel != account.status_channel


@dataclass(frozen=True)
class StatusChange:
    """One step of an account's lifecycle: what the account row and its history row get."""

    status: Status
    channel: str | None
    actor: str
    at: datetime

    @property
    def account_columns(self) -> dict[str, Any]:
        """The account's status columns after the step."""
        return {"status": self.status, "status_channel": self.channel, "status_changed_at": self.at}

    @property
    def event_columns(self) -> dict[str, Any]:
        """The status_events row that records the step, all but its account."""
        return {"status": self.status, "channel": self.channel, "actor": self.actor, "created_at": self.at}


def status_change(account: Account, status: Status, *, actor: str, channel: str | None = None,
                  resend: bool = False) -> StatusChange | None:
    """The step to `status` and what it writes, or None when the lifecycle stays (see status_moves).

    The one home of a status change's writes: set_status applies it in the ORM session, the
    activation (services.activation) in its own Core statements.
    """
    if not status_moves(account, status, channel=channel, resend=resend):
        return None
    return StatusChange(status, channel, actor, utcnow())


def set_status(account: Account, status: Status, *, actor: str, channel: str | None = None,
               resend: bool = False) -> bool:
    """Apply status_change in the ORM session, history row included; False when the lifecycle stays."""
    change = status_change(account, status, actor=actor, channel=channel, resend=resend)
    if change is None:
        return False
    for name, value in change.account_columns.items():
        setattr(account, name, value)
    # Added by its many-to-one side: the account's whole history is not loaded for one row.
    db.session.add(StatusEvent(account=account, **change.event_columns))
    return True


def _apply(account: Account, data: dict[str, Any]) -> None:
    """Set the editable fields of settled data (account_rules.settle: the type's blanks are in it)."""
    if "username" in data:
        try:
            data = {**data, "username": account_rules.parse_username(data["username"] or "")}
        except ValueError as exc:
            raise Invalid(str(exc), field="username") from None
        if not data["username"]:
            raise Invalid("Give the account a username.", field="username")
    for name in account_rules.EDITABLE:
        if name in data:
            setattr(account, name, data[name])
    if account.account_type is AccountType.PGSM and account.security_model not in _security_models():
        raise Invalid("Choose one of the configured security models.", field="security_model")


def _set_rules(account: Account, data: dict[str, Any]) -> None:
    # Settled data: a softphone's rules are empty.
    rules = [AccessRule(kind=kind, network=network, position=position)
             for kind in RuleKind for position, network in enumerate(data.get(kind.value) or [])]
    # Loading the old rules must not flush the edit: a unique index firing here would
    # escape _commit and answer 500 instead of a field error.
    with db.session.no_autoflush:
        account.rules = rules


def _check_unique(account: Account) -> None:
    """Say which field clashes before the database's unique indexes have to."""
    if problem := account_rules.secondary_problem(account.callerid, account.secondary_callerid):
        raise Conflict(problem.message, field=problem.field)
    with db.session.no_autoflush:  # the pending account must not reach the unique indexes first
        taken = account_rules.taken(account_rules.wanted([account]), other_than=account.id)
    if clashing := account_rules.clashes(account, taken):
        raise Conflict(clashing[0].message, field=clashing[0].field)


def _commit(account: Account, actor: StaffUser, action: str, **detail: Any) -> None:
    """Commit; a unique index that fires under a race becomes the same field error."""
    try:
        db.session.flush()
        audit.record(actor, action, account, **detail)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        text = str(exc.orig)
        # secondary_callerid before callerid: the one name holds the other
        field = next((field.name for field in reversed(account_rules.UNIQUE) if field.name in text), None)
        raise Conflict("That value is already used by another account.", field=field) from None


def _require_profile(profile_id: int | None, group: Group) -> None:
    """A wizard account's activation file needs a provisioning profile: its own, or its group's."""
    if account_rules.lacks_profile(profile_id, group.profile_id):
        raise Invalid(f"Choose a provisioning profile: group {group.name} has none.", field="profile_id")


def _group_for(group_id: int, actor: StaffUser) -> Group:
    group = next((group for group in groups.visible_groups(actor) if group.id == group_id), None)
    if group is None:
        raise Invalid("Choose one of your groups.", field="group_id")
    return group


def _profile(profile_id: int | None) -> Profile | None:
    return db.session.get(Profile, profile_id) if profile_id else None


def _security_models() -> list[str]:
    return current_app.config["SECURITY_MODELS"]


def status_counts(user: StaffUser) -> dict[Status, int]:
    """Count the accounts a user may see, per lifecycle status."""
    query = scoped(select(Account.status, func.count(Account.id)).group_by(Account.status), user)
    counts = dict.fromkeys(Status, 0)
    counts.update({status: n for status, n in db.session.execute(query)})
    return counts
