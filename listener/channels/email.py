"""Email replies over SMTP (smtplib), sent at most once as far as our records can tell.

Configuration is the ``email:`` block of config.yaml (host, port,
``security: starttls|ssl|none``, username, password ``${SMTP_PASSWORD}``,
from_address, from_name, reply_to).

Idempotency: every message carries a ``Message-ID`` derived from the outbox
idempotency key, so the same reply always has the same id and mail clients
and archives treat a repeat as the same message.

**The crash window.**  SMTP has no way to ask a server "did you already take
message X?", so :meth:`EmailChannel.find_existing` can only rely on our own
records and returns ``None``.  The outbox commits ``sending`` *before* the
SMTP conversation and records ``sent`` in its own short transaction right
after the server's final ``250``: a process killed before the end of
``DATA`` sends nothing (the server drops an unfinished message), and a retry
delivers it once.  Only a crash in the few milliseconds between the server's
``250`` and our commit can lead to a second copy (with the same
``Message-ID``).  That window is as small as we can make it without a
server-side dedupe.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import TYPE_CHECKING, ClassVar

import structlog

from listener.channels.base import OutboundMessage
from listener.errors import DeliveryError, PolicyViolation

if TYPE_CHECKING:
    from listener.config import EmailSettings

log = structlog.get_logger("listener.channels.email")


def message_id(idempotency_key: str, from_address: str) -> str:
    """A stable ``Message-ID`` for an outbox message: same key, same id."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = from_address.rpartition("@")[2] or "listener.invalid"
    return f"<listener.{digest}@{domain}>"


def build_email(
    message: OutboundMessage, settings: EmailSettings, *, brand_name: str = ""
) -> EmailMessage:
    """The MIME message for ``message`` (pure; no network)."""
    if not message.recipient or "@" not in message.recipient:
        raise PolicyViolation("no email address is known for this customer")
    mail = EmailMessage()
    subject = getattr(message, "subject", None) or f"A note from {brand_name or 'us'}"
    mail["Subject"] = subject
    mail["From"] = formataddr((settings.from_name or brand_name or "", settings.from_address))
    mail["To"] = message.recipient
    if settings.reply_to:
        mail["Reply-To"] = settings.reply_to
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id(message.idempotency_key, settings.from_address)
    if message.in_reply_to and message.in_reply_to.startswith("<"):
        mail["In-Reply-To"] = message.in_reply_to
        mail["References"] = message.in_reply_to
    mail["Auto-Submitted"] = "no"  # a person approved it
    mail.set_content(message.text)
    return mail


class EmailChannel:
    """Sends approved email replies through the configured SMTP server."""

    name: ClassVar[str] = "email"

    def __init__(self, settings: EmailSettings, *, brand_name: str = "") -> None:
        self.settings = settings
        self.brand_name = brand_name

    def _connect(self) -> smtplib.SMTP:
        cfg = self.settings
        if not cfg.host:
            raise DeliveryError("email is not configured (email.host is empty)", retryable=False)
        timeout = cfg.timeout.total_seconds()
        context = ssl.create_default_context()
        if cfg.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
            if cfg.security == "starttls":
                smtp.starttls(context=context)
        if cfg.username:
            password = cfg.password.get_secret_value() if cfg.password else ""
            smtp.login(cfg.username, password)
        return smtp

    def send(self, message: OutboundMessage) -> str:
        """Deliver ``message`` to the SMTP server; returns its ``Message-ID``."""
        mail = build_email(message, self.settings, brand_name=self.brand_name)
        bound = log.bind(idempotency_key=message.idempotency_key, host=self.settings.host)
        try:
            smtp = self._connect()
            try:
                refused = smtp.send_message(mail)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            temporary = bool(codes) and all(400 <= c < 500 for c in codes)
            raise DeliveryError(
                f"the mail server refused the recipient: {exc.recipients}", retryable=temporary
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"the mail server refused our login ({exc.smtp_code})", retryable=False
            ) from exc
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"the mail server answered {exc.smtp_code}: {exc.smtp_error!r}",
                retryable=not permanent,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot reach the mail server: {exc}") from exc
        if refused:
            raise DeliveryError(f"the mail server refused: {sorted(refused)}", retryable=False)
        bound.info("email.sent", message_id=mail["Message-ID"])
        return str(mail["Message-ID"])

    def find_existing(self, message: OutboundMessage) -> str | None:
        """SMTP cannot be asked; only our own records know (see the module docs)."""
        return None
