"""Demo data so a newcomer sees a living console."""

import random
from datetime import timedelta

from sqlalchemy import select

from extensions import db, vault
from models import Account, AccountType, Group, Profile, Role, StaffUser, Status, StatusEvent, utcnow
from services import accounts, registrar, staff

GROUPS = ("Acme Bank", "Helvetia Logistics", "Northwind Legal", "Globex Security")
OWNERS = ("Anna Meier", "Luca Rossi", "Sofia Keller", "Noah Weber", "Mia Frei", "Elias Graf",
          "Lea Huber", "Jonas Brunner", "Emma Baumann", "Leon Fischer", "Nina Steiner")


def seed(count: int, *, rng: random.Random | None = None) -> str:
    """Create demo groups, profiles, a CSR and `count` accounts spread over every status."""
    rng = rng or random.Random(7)
    profiles = [_profile("Default TLS", "sip.example.net"), _profile("Obfuscated", "edge.example.net")]
    groups = [_group(name, profiles[i % 2]) for i, name in enumerate(GROUPS)]
    if not db.session.scalar(select(StaffUser.id).where(StaffUser.username == "csr")):
        staff.create(username="csr", password="provisio-demo-2026", role=Role.CSR,
                     full_name="Demo CSR", group_ids=[groups[0].id, groups[1].id], actor="seed-demo")
    statuses = list(Status)
    now = utcnow()
    for _ in range(count):
        kind = AccountType.SNOM if rng.random() < 0.1 else AccountType.PGSM
        final = rng.choice(statuses)
        callerid, username = f"+4179{rng.randrange(10**7):07d}", accounts.new_username()
        if db.session.scalar(select(Account.id).where(Account.callerid == callerid)):
            continue
        account = Account(
            username=username,
            password_encrypted=vault.encrypt(accounts.new_password()),
            callerid=callerid,
            owner=rng.choice(OWNERS),
            email=f"user{rng.randrange(10**6)}@example.com",
            account_type=kind,
            security_model=None if kind is AccountType.SNOM else rng.choice(("end-to-end", "end-to-site")),
            obfuscation=kind is AccountType.PGSM,
            obfuscation_key="9" if kind is AccountType.PGSM else "",
            group=rng.choice(groups),
            wizard=True,
            enabled=final.rank >= Status.ACTIVATED.rank,
        )
        moment = now - timedelta(days=rng.randrange(1, 60), minutes=rng.randrange(1440))
        for status in statuses[: final.rank + 1]:
            moment += timedelta(minutes=rng.randrange(5, 600))
            channel = rng.choice(("sms", "email")) if status.name.endswith("_SENT") else None
            account.status_events.append(
                StatusEvent(status=status, channel=channel, actor="seed-demo", created_at=moment)
            )
            account.status, account.status_channel, account.status_changed_at = status, channel, moment
        db.session.add(account)
        db.session.flush()
    db.session.commit()
    registrar.sync()
    return (f"Demo data: {len(groups)} groups, {len(profiles)} profiles, {count} accounts; "
            "CSR login csr / provisio-demo-2026.")


def _profile(name: str, host: str) -> Profile:
    profile = db.session.scalar(select(Profile).where(Profile.name == name))
    if profile is None:
        profile = Profile(name=name, sip_host=host, provisioning_host=f"prov.{host.split('.', 1)[1]}",
                          transport="tls", options={"codecs": ["opus", "g722", "pcma"]})
        db.session.add(profile)
    return profile


def _group(name: str, profile: Profile) -> Group:
    group = db.session.scalar(select(Group).where(Group.name == name))
    if group is None:
        group = Group(name=name, profile=profile, description=f"Demo customer {name}")
        db.session.add(group)
        db.session.flush()
    return group
