"""Background jobs: long work a person starts in the console and follows on a progress page."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import TimestampMixin, UTCDateTime, enum_type
from models.enums import JobState


class Job(TimestampMixin, db.Model):
    """One job: what to do (`kind`, `payload`), how far it got (`done` of `total`) and what came of it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[JobState] = mapped_column(enum_type(JobState), default=JobState.QUEUED)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"),
                                                 index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    phase: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The confirmation's one-time key: a double-clicked or re-sent confirmation finds this job.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    @property
    def percent(self) -> int:
        return 100 if self.state.finished else int(100 * self.done / self.total) if self.total else 0
