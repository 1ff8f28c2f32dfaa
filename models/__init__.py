"""Every model, importable from one place (and visible to Alembic)."""

from models.account import AccessRule, Account, AccountTerm, PublicKey, StatusEvent
from models.audit import AuditEvent
from models.base import utcnow
from models.device import Device
from models.enums import (
    AccountType,
    Channel,
    JobState,
    LicenceState,
    MessageKind,
    MessageStatus,
    Platform,
    Role,
    RuleKind,
    Status,
)
from models.group import Group, Profile
from models.job import Job
from models.message import Message, PendingReceipt
from models.setting import Setting
from models.staff import StaffSession, StaffUser, staff_groups
from models.throttle import GatewayPace, RateCounter
from models.worker import WorkerBeat

__all__ = [
    "AccessRule",
    "Account",
    "AccountTerm",
    "AccountType",
    "AuditEvent",
    "Channel",
    "Device",
    "Group",
    "Job",
    "JobState",
    "LicenceState",
    "Message",
    "PendingReceipt",
    "MessageKind",
    "MessageStatus",
    "Platform",
    "Profile",
    "PublicKey",
    "GatewayPace",
    "RateCounter",
    "Role",
    "RuleKind",
    "Setting",
    "StaffSession",
    "StaffUser",
    "Status",
    "StatusEvent",
    "WorkerBeat",
    "staff_groups",
    "utcnow",
]
