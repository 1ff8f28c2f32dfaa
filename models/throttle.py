"""Counters of a key's hits in a fixed time window, for rate limits that hold under concurrency, and each
gateway's send pace."""

from datetime import datetime

from sqlalchemy import Double, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import UTCDateTime


class RateCounter(db.Model):
    """How often one key (a purpose and who: `login:carl`, `snom-guess:203.0.113.9`) was hit in its window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(default=0)


class GatewayPace(db.Model):
    """The next free send slot of one gateway (services/pace.py), in seconds since the epoch on the
    database's clock, so that the senders of every worker process, on one host or several, share it."""

    __tablename__ = "gateway_paces"

    gateway: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Double)
