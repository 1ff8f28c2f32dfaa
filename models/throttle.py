"""Counters of a key's hits in a fixed time window, for rate limits that hold under concurrency."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import UTCDateTime


class RateCounter(db.Model):
    """How often one key (a purpose and who: `login:carl`, `snom-guess:203.0.113.9`) was hit in its window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(default=0)
