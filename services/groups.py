"""Groups and provisioning profiles."""

from typing import Any

from sqlalchemy import func, select

from extensions import db
from models import Account, Group, Profile, StaffUser
from services import audit
from services.errors import Conflict, NotFound

PROFILE_FIELDS = ("name", "description", "sip_host", "sip_port", "provisioning_host", "transport",
                  "refetch_hours", "options")


def visible_groups(user: StaffUser) -> list[Group]:
    """Return the groups a staff user may see: all for admins, their own for others."""
    query = select(Group).order_by(Group.name)
    if not user.is_admin:
        query = query.where(Group.id.in_(user.group_ids or [-1]))
    return list(db.session.scalars(query))


def list_groups() -> list[tuple[Group, int]]:
    """Return every group with its number of accounts."""
    counts = (
        select(Account.group_id, func.count(Account.id).label("n"))
        .group_by(Account.group_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Group, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.group_id == Group.id)
        .order_by(Group.name)
    )
    return [(group, count) for group, count in rows]


def get_group(group_id: int) -> Group:
    """Return a group or raise NotFound."""
    group = db.session.get(Group, group_id)
    if group is None:
        raise NotFound("No such group.")
    return group


def save_group(
    group: Group | None, *, name: str, description: str, profile_id: int | None,
    actor: StaffUser,
) -> Group:
    """Create a group (group=None) or update one."""
    name = name.strip()
    _unique(Group, name, group)
    creating = group is None
    group = group or Group()
    group.name, group.description, group.profile_id = name, description, profile_id
    db.session.add(group)
    db.session.flush()
    audit.record(actor, "group.create" if creating else "group.update", group)
    db.session.commit()
    return group


def delete_group(group: Group, *, actor: StaffUser) -> None:
    """Delete an empty group; a group with accounts is refused."""
    count = db.session.scalar(select(func.count(Account.id)).where(Account.group_id == group.id))
    if count:
        raise Conflict(f"{group.name} still has {count} accounts; move or delete them first.")
    audit.record(actor, "group.delete", group)
    db.session.delete(group)
    db.session.commit()


def list_profiles() -> list[Profile]:
    """Return every provisioning profile, by name."""
    return list(db.session.scalars(select(Profile).order_by(Profile.name)))


def get_profile(profile_id: int) -> Profile:
    """Return a profile or raise NotFound."""
    profile = db.session.get(Profile, profile_id)
    if profile is None:
        raise NotFound("No such provisioning profile.")
    return profile


def save_profile(profile: Profile | None, *, actor: StaffUser, **fields: Any) -> Profile:
    """Create a provisioning profile (profile=None) or update one."""
    fields["name"] = fields["name"].strip()
    _unique(Profile, fields["name"], profile)
    creating = profile is None
    profile = profile or Profile()
    for name in PROFILE_FIELDS:
        setattr(profile, name, fields[name])
    db.session.add(profile)
    db.session.flush()
    audit.record(actor, "profile.create" if creating else "profile.update", profile)
    db.session.commit()
    return profile


def delete_profile(profile: Profile, *, actor: StaffUser) -> None:
    """Delete a profile no group or account uses."""
    in_use = db.session.scalar(select(func.count(Group.id)).where(Group.profile_id == profile.id))
    in_use += db.session.scalar(select(func.count(Account.id)).where(Account.profile_id == profile.id))
    if in_use:
        raise Conflict(f"{profile.name} is still used by {in_use} groups or accounts.")
    audit.record(actor, "profile.delete", profile)
    db.session.delete(profile)
    db.session.commit()


def _unique(model: type, name: str, current: Any) -> None:
    existing = db.session.scalar(select(model).where(func.lower(model.name) == name.lower()))
    if existing is not None and existing is not current:
        raise Conflict(f"The name {name} is already used.", field="name")
