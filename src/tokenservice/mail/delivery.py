"""Handing one mail to the mail server over SMTP, or, in development without one, to the log and instance/mail/."""

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from flask import current_app

from ..config import MAIL_TO_LOG, MailServer

SMTP_SECONDS = 10  # per connection step; well inside the sender's claim on the mail

log = logging.getLogger("tokenservice.mail")


def message(*, item_id: int, payload: dict, mail_from: str) -> EmailMessage:
    """The MIME message of an outbox mail: plain text with an HTML alternative.

    Its headers hold only what the service wrote and the validated address:
    EmailMessage refuses a header with a line break in it.
    """
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = payload["to"]
    mail["Subject"] = payload["subject"]
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=str(item_id), domain=parseaddr(mail_from)[1].rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    mail.set_content(payload["text"])
    mail.add_alternative(payload["html"], subtype="html")
    return mail


def deliver(mail: EmailMessage, *, item_id: int) -> None:
    """Send it, or raise (smtplib.SMTPException, OSError): the sender tries again later."""
    delivery = current_app.config["MAIL_DELIVERY"]
    if delivery == MAIL_TO_LOG:
        _to_log(mail, item_id=item_id)
    else:
        _over_smtp(mail, delivery)


def _over_smtp(mail: EmailMessage, server: MailServer) -> None:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if server.tls == "ssl":
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_SECONDS)
    with smtp:
        if server.tls == "starttls":
            smtp.starttls(context=context)  # refuses to go on in clear when the server cannot
        if server.username:
            smtp.login(server.username, server.password or "")
        smtp.send_message(mail)


def _to_log(mail: EmailMessage, *, item_id: int) -> None:
    """Development: the mail in the log, and as a file to open, so the quick start shows the whole flow."""
    folder = Path(current_app.instance_path) / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{item_id:06d}.eml"
    path.write_bytes(bytes(mail))
    body = mail.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    log.info("mail to %s (%s), saved as %s:\n%s", mail["To"], mail["Subject"], path, text)
