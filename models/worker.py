"""Workers say they are alive: the readiness check and the operator read when each was last seen."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import UTCDateTime, utcnow


class WorkerBeat(db.Model):
    """One row per worker process (host and pid), its last sign of life."""

    __tablename__ = "worker_beats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
