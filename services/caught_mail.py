"""Development only: the e-mail tools/mail_catcher.py kept, for the console's Caught e-mail page."""

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from flask import current_app

SHOWN = 50  # the newest ones; older files stay in the folder
LINK = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class CaughtMail:
    """One kept e-mail as the page shows it."""

    recipient: str
    subject: str
    received_at: datetime
    body: str

    @property
    def links(self) -> list[str]:
        """The addresses in the text, to open with a click."""
        return LINK.findall(self.body)


def enabled() -> bool:
    """True when this app keeps its e-mail (development with CAUGHT_MAIL_DIR set)."""
    return bool(current_app.config.get("CAUGHT_MAIL_DIR"))


def recent() -> list[CaughtMail]:
    """The newest kept e-mails first; a file that is not an e-mail is left out."""
    folder = Path(current_app.config["CAUGHT_MAIL_DIR"])
    files = sorted(folder.glob("*.eml"), reverse=True)[:SHOWN] if folder.is_dir() else []
    found = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if isinstance(message, EmailMessage) and (part := message.get_body(preferencelist=("plain",))):
            received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found.append(CaughtMail(str(message.get("To", "")), str(message.get("Subject", "")), received,
                                    part.get_content()))
    return found
