"""A real SMTP server for the tests (aiosmtpd, on loopback), which keeps every mail it accepts, and can be stopped.

`Mailbox.smtp_url` is what the service's SMTP_URL points at. Stopping it
closes the port (connections are refused, as when a mail server is down);
starting it again listens on the same port. With `tls` (a certificate and
key, `self_signed`) it offers STARTTLS and requires it, or with `smtps` it
speaks TLS from the start; with `login` it requires that user and password.
"""

import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
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


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, and its key: (cert.pem, key.pem) in `folder`. Trust it with SSL_CERT_FILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Mailbox:
    def __init__(self, *, tls: tuple[Path, Path] | None = None, smtps: bool = False, login=None):
        self.port = free_port()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.tls, self.smtps, self.login = tls, smtps, login
        self._controller: Controller | None = None

    @property
    def smtp_url(self) -> str:
        user = f"{quote(self.login[0], safe='')}:{quote(self.login[1], safe='')}@" if self.login else ""
        if self.smtps:
            return f"smtps://{user}127.0.0.1:{self.port}"
        return f"smtp://{user}127.0.0.1:{self.port}" + ("" if self.tls else "?starttls=false")

    def start(self) -> "Mailbox":
        options: dict = {}
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            options = {"ssl_context": context} if self.smtps else {"tls_context": context, "require_starttls": True}
        if self.login:
            # With TLS from the start, aiosmtpd does not count the session as TLS: let it offer AUTH anyway.
            options.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=not self.smtps)
        self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        # handled=False: aiosmtpd then answers the refusal itself (535), as a real server does.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == tuple(self.login), handled=False)

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
