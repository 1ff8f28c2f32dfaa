"""Every model, importable from one place (and visible to Alembic)."""

from models.account import AccessRule, Account, PublicKey, StatusEvent
from models.audit import AuditEvent
from models.base import utcnow
from models.enums import AccountType, LicenceState, Role, RuleKind, Status
from models.group import Group, Profile
from models.staff import StaffSession, StaffUser, staff_groups

__all__ = [
    "AccessRule",
    "Account",
    "AccountType",
    "AuditEvent",
    "Group",
    "LicenceState",
    "Profile",
    "PublicKey",
    "Role",
    "RuleKind",
    "StaffSession",
    "StaffUser",
    "Status",
    "StatusEvent",
    "staff_groups",
    "utcnow",
]
