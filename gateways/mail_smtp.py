"""E-mail through SMTP with Flask-Mail: Gmail (STARTTLS, app password) or an unauthenticated relay."""

import smtplib
import uuid
from typing import Any

from flask_mail import Connection, Mail
from flask_mail import Message as MailMessage

from gateways.base import Outcome, Outgoing, Result, SettingField

TIMEOUT_SECONDS = 20
GMAIL = {"host": "smtp.gmail.com", "port": 587, "starttls": True}


class _TimedConnection(Connection):
    """Flask-Mail's connection, with a timeout so a dead server cannot hang the worker."""

    def configure_host(self) -> smtplib.SMTP:
        host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=TIMEOUT_SECONDS)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class SmtpGateway:
    """Send one e-mail; map every SMTP answer to sent, transient or permanent."""

    name = "smtp"
    settings_fields = (
        SettingField("mode", "E-mail gateway", kind="choice", choices=(
            ("smtp", "SMTP relay (no authentication)"), ("gmail", "Gmail (STARTTLS, app password)"))),
        SettingField("host", "SMTP host", kind="host"),
        SettingField("port", "SMTP port", kind="port"),
        SettingField("starttls", "Use STARTTLS", kind="check"),
        SettingField("username", "Username (Gmail address)", max_length=254),
        SettingField("password", "Password (Gmail app password)", secret=True,
                     description="Stored encrypted. Leave empty to keep the current one."),
        SettingField("sender", "Sender address", kind="address", required=True),
    )
    rate = None  # a relay queues what it takes; a Gmail account's daily cap is no rate per second

    def __init__(self, settings: dict[str, Any]) -> None:
        preset = GMAIL if settings.get("mode") == "gmail" else {}
        self.state = Mail().init_mail({
            "MAIL_SERVER": preset.get("host") or settings.get("host") or "127.0.0.1",
            "MAIL_PORT": int(preset.get("port") or settings.get("port") or 25),
            "MAIL_USE_TLS": bool(preset.get("starttls") or settings.get("starttls")),
            "MAIL_USERNAME": settings.get("username") or None,
            "MAIL_PASSWORD": settings.get("password") or None,
            "MAIL_DEFAULT_SENDER": settings.get("sender") or "provisio@localhost",
        })

    def send(self, message: Outgoing) -> Result:
        """Hand the e-mail to the SMTP server."""
        message_id = f"<{uuid.uuid4()}@provisio>"
        mail = MailMessage(subject=message.subject, recipients=[message.recipient], body=message.body,
                           sender=self.state.default_sender)
        mail.msgId = message_id  # Flask-Mail writes its own Message-ID; an extra header would be a second one
        try:
            with _TimedConnection(self.state) as connection:
                connection.send(mail)
        except smtplib.SMTPAuthenticationError as exc:
            return Result(Outcome.PERMANENT, detail=f"SMTP authentication failed: {_text(exc)}")
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return Result(_by_code(code), detail=f"Recipient refused: {code} {_decode(text)}")
        except smtplib.SMTPResponseException as exc:
            return Result(_by_code(exc.smtp_code),
                          detail=f"SMTP error {exc.smtp_code} {_decode(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:
            return Result(Outcome.TRANSIENT, detail=f"SMTP server unreachable: {exc}")
        return Result(Outcome.SENT, provider_id=message_id)


def _by_code(code: int) -> Outcome:
    return Outcome.PERMANENT if 500 <= code < 600 else Outcome.TRANSIENT


def _decode(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _text(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_decode(exc.smtp_error)}"
