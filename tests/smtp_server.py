"""A real SMTP server for the tests (aiosmtpd, on loopback), which keeps every mail it accepts, and can be stopped.

`Mailbox.smtp_url` is what the service's SMTP_URL points at. Stopping it
closes the port (connections are refused, as when a mail server is down);
starting it again listens on the same port.
"""

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from deployment import free_port

from tokenservice.mail import sender


class _Keep:
    def __init__(self, mailbox: "Mailbox"):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.mailbox.lock:
            self.mailbox.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class Mailbox:
    def __init__(self):
        self.port = free_port()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=false"

    def start(self) -> "Mailbox":
        self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        with self.lock:
            return [message for rcpt, message in self.received if to is None or to in rcpt]

    def wait_for(self, count: int, *, to: str | None = None, timeout: float = 15) -> list[EmailMessage]:
        """At least `count` mails (to `to`, if given) within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.messages(to)) < count:
            assert time.monotonic() < deadline, f"{len(self.messages(to))} of {count} mails arrived"
            time.sleep(0.05)
        return self.messages(to)


class Outbox:
    """The outbox's sender in an app whose mail goes to the test's SMTP server."""

    def __init__(self, app, mailbox: Mailbox):
        self.app, self.mailbox = app, mailbox

    def send(self) -> dict:
        """Run the sender once, as `flask mail send` does: how many of each outcome."""
        with self.app.app_context():
            return sender.send_due()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def token_in(message: EmailMessage) -> str:
    """The `token` parameter (in the query or the fragment) of the first link in the plain-text part."""
    link = next(word for word in text_of(message).split() if word.startswith(("http://", "https://")))
    parts = urlsplit(link)
    params = {**parse_qs(parts.query), **parse_qs(parts.fragment)}
    return params["token"][0]
