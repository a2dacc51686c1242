"""Every setting the service reads, read once from the environment.

`load_settings` turns an environment mapping into Flask config keys. Unsafe
values stop the app at start with a `ConfigError` whose sentence names the
variable. `.env.example` lists the same variables with the same meaning.
"""

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import limits
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .tokens import keys

MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
MAX_BODY_BYTES = 64 * 1024
DEV_SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name, not a secret)
DEV_MFA_KEY_FILE = "mfa-key"
MIN_MFA_KEY_CHARS = 32
# How DATABASE_URL comes to be set on the host docs/deploying.md deploys to.
PROVISION_DATABASE = "on Heroku, `heroku addons:create heroku-postgresql:essential-0` sets it"


class ConfigError(RuntimeError):
    """A setting that the service refuses to start with."""


@dataclass(frozen=True)
class MailServer:
    """Where mail goes: SMTP_URL, or the Heroku Mailgun add-on's variables (docs/mail.md)."""

    host: str
    port: int
    tls: str  # "starttls", "ssl" (smtps://) or "none" (?starttls=false, no credentials)
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password, in a log line or a traceback
        return f"MailServer({self.host!r}, {self.port}, tls={self.tls!r}, user={self.username!r})"


# Where mail goes when no server is configured: in development, the log and instance/mail/ (mail/delivery.py).
MAIL_TO_LOG = "log"


def load_settings(environ: Mapping[str, str], *, instance_path: str) -> dict:
    """Read the environment into Flask config keys, refusing unsafe values."""
    database_url = environ.get("DATABASE_URL") or None
    # Setting DATABASE_URL means "a real deployment" unless APP_ENV says otherwise.
    app_env = environ.get("APP_ENV") or ("production" if database_url else "development")
    if app_env not in ("development", "production"):
        raise ConfigError(f"APP_ENV must be 'development' or 'production', not {app_env!r}.")
    production = app_env == "production"

    if database_url is None and production:
        raise ConfigError(
            f"DATABASE_URL is required in production: set it to a postgres:// URL ({PROVISION_DATABASE})."
        )

    access_seconds = _seconds(environ, "JWT_ACCESS_TOKEN_EXPIRES", 900)
    refresh_seconds = _seconds(environ, "JWT_REFRESH_TOKEN_EXPIRES", 30 * 24 * 3600)
    reuse_window = _seconds(environ, "JWT_REFRESH_REUSE_WINDOW", 10, minimum=0)
    issuer = environ.get("JWT_ISSUER") or None
    audience = environ.get("JWT_AUDIENCE") or None
    locations = _token_locations(environ)
    cookie_secure = _boolean(environ, "JWT_COOKIE_SECURE", production)
    samesite = _samesite(environ, secure=cookie_secure, cookie_mode=cookie_mode(locations))
    default_origins = "" if production else "http://localhost:5173,http://127.0.0.1:5173"
    storage_uri = _rate_limit_storage(environ)
    signing = _signing_keys(environ, production=production, instance_path=instance_path)

    return {
        **_mail_settings(environ, production=production),
        **_second_factor_settings(environ, production=production, instance_path=instance_path),
        "APP_ENV": app_env,
        # false: only an admin may create users (POST /users).
        "ALLOW_REGISTRATION": _boolean(environ, "ALLOW_REGISTRATION", True),
        # None means: start the embedded development PostgreSQL (see storage/embedded_db.py).
        "SQLALCHEMY_DATABASE_URI": database_url and normalise_database_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            # Fail fast when PostgreSQL is unreachable, so clients get a 503 quickly.
            "connect_args": {"connect_timeout": 5, "application_name": "tokenservice"},
            # At most 8 connections per worker (6 pooled, 2 held by the session
            # cache's listener): a 2-worker dyno stays at 16 of the 20 that
            # Heroku's smallest plan (essential-0) allows, leaving room for
            # the release phase and a one-off dyno.
            "pool_size": 5,
            "max_overflow": 1,
            # A request waits at most 10 s for a connection, then gets a 503:
            # well before Heroku's router gives up at 30 s.
            "pool_timeout": 10,
            # Errors logged with their SQL never show the values (password hashes).
            "hide_parameters": True,
        },
        # Flask enforces this only when the body is read; web/request_checks.py
        # also refuses a large Content-Length before any view runs.
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        # Only the configured algorithm is accepted (no alg: none, no other
        # HMAC, no HS256 token signed with the public key as its secret).
        "JWT_ALGORITHM": signing.algorithm,
        "JWT_DECODE_ALGORITHMS": [signing.algorithm],
        # HS256's secret, or the private key; tokens/issuing.py picks the verifying key by kid.
        **signing.jwt_settings(),
        "SIGNING_KEYS": signing,
        # Never the query string. Cookie mode needs the SPA and the API on one host.
        "JWT_TOKEN_LOCATION": locations,
        # Cookie mode: Flask-JWT-Extended's double submit (a readable CSRF
        # cookie, echoed in X-CSRF-TOKEN); no CSRF claim in header-only mode.
        "JWT_COOKIE_CSRF_PROTECT": cookie_mode(locations),
        "JWT_CSRF_IN_COOKIES": True,
        "JWT_COOKIE_SECURE": cookie_secure,
        "JWT_COOKIE_SAMESITE": samesite,
        # Cookies that a page of another port or a sibling subdomain cannot
        # overwrite or shadow (cookie tossing): with Secure, each name carries
        # the __Host- prefix, which browsers accept only host-only, Secure, at
        # Path=/ (so the refresh cookie goes to every path too); without it,
        # tokens/cookies.py refuses a request carrying a token cookie twice. No
        # Domain: cookie mode needs the SPA and the API on one host.
        **{
            setting: ("__Host-" if cookie_secure else "") + name
            for setting, name in (
                ("JWT_ACCESS_COOKIE_NAME", "access_token_cookie"),
                ("JWT_REFRESH_COOKIE_NAME", "refresh_token_cookie"),
                ("JWT_ACCESS_CSRF_COOKIE_NAME", "csrf_access_token"),
                ("JWT_REFRESH_CSRF_COOKIE_NAME", "csrf_refresh_token"),
            )
        },
        "JWT_ACCESS_COOKIE_PATH": "/",
        "JWT_REFRESH_COOKIE_PATH": "/",
        "JWT_ACCESS_CSRF_COOKIE_PATH": "/",
        "JWT_REFRESH_CSRF_COOKIE_PATH": "/",
        # Exact origins allowed to call the API from a browser (web/cors.py).
        "CORS_ORIGINS": _origins(environ.get("CORS_ORIGINS") or default_origins),
        # How many proxies in front append to X-Forwarded-For (Heroku's router: 1);
        # that many hops are believed, no more (werkzeug's ProxyFix).
        "TRUSTED_PROXIES": _count(environ, "TRUSTED_PROXIES", 0),
        # Reads answered from each worker's memory of live sessions, kept true by
        # LISTEN/NOTIFY (tokens/session_cache.py); false: every request asks PostgreSQL.
        "SESSION_CACHE": _boolean(environ, "SESSION_CACHE", True),
        # Rate limits (web/rate_limits.py, rules/login_failures.py); false turns them all off.
        "RATELIMIT_ENABLED": _boolean(environ, "RATELIMIT_ENABLED", True),
        # Per client address, on POST /token and POST /users together (Flask-Limiter).
        "TOKEN_RATE_LIMIT": _rate(environ, "TOKEN_RATE_LIMIT", "30 per minute"),
        # Failed logins per username from any address, kept in PostgreSQL; each
        # proven device (device_token) and session has an allowance of its own.
        "LOGIN_FAILURE_LIMIT": _rate(environ, "LOGIN_FAILURE_LIMIT", "10 per 15 minutes"),
        # Sign-ups (POST /users while ALLOW_REGISTRATION, without a role) per client address.
        "REGISTRATION_RATE_LIMIT": _rate(environ, "REGISTRATION_RATE_LIMIT", "10 per hour"),
        # Password changes (POST /me/password) per account, and apart from that per client address.
        "PASSWORD_CHANGE_RATE_LIMIT": _rate(environ, "PASSWORD_CHANGE_RATE_LIMIT", "5 per minute"),
        # Where Flask-Limiter counts: Redis shares the count between workers and
        # instances; memory:// counts per process.
        "RATELIMIT_STORAGE_URI": storage_uri,
        # While Redis is unreachable, count per process rather than fail requests.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "tokenservice",
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=access_seconds),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(seconds=refresh_seconds),
        # How long a just-rotated refresh token may still be presented (two
        # tabs refreshing at once) before its use counts as theft.
        "JWT_REFRESH_REUSE_WINDOW": timedelta(seconds=reuse_window),
        "JWT_ENCODE_ISSUER": issuer,
        "JWT_DECODE_ISSUER": issuer,
        "JWT_ENCODE_AUDIENCE": audience,
        "JWT_DECODE_AUDIENCE": audience,
        # flask-smorest: the OpenAPI document at /openapi.json (docs.py serves /docs).
        "API_TITLE": "tokenservice",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {
                "description": "A bearer-token service: users in PostgreSQL, JWTs from POST /token. Authorize "
                "with the OAuth2 password flow (username and password) or paste an access token."
            }
        },
    }


def _second_factor_settings(environ: Mapping[str, str], *, production: bool, instance_path: str) -> dict:
    key = environ.get("MFA_KEY") or None
    if key is None and not production:
        key = _development_secret(Path(instance_path), DEV_MFA_KEY_FILE)
    if key is not None and len(key) < MIN_MFA_KEY_CHARS:
        raise ConfigError(
            f"MFA_KEY must be a random string of at least {MIN_MFA_KEY_CHARS} characters, e.g. the output of "
            "`python3 -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    issuer = (environ.get("TOTP_ISSUER") or "tokenservice").strip()
    if not issuer or ":" in issuer or not issuer.isprintable():
        raise ConfigError(f"TOTP_ISSUER must be a printable name without ':', not {issuer!r}.")
    return {
        # The key TOTP secrets are encrypted under (rules/second_factor.py); None: no second factors offered.
        "MFA_KEY": key,
        # The name authenticator apps show beside the account.
        "TOTP_ISSUER": issuer,
        # Mail a user when a device it has not seen signs in (rules/signin_alerts.py).
        "SIGNIN_ALERTS": _boolean(environ, "SIGNIN_ALERTS", True),
    }


def _mail_settings(environ: Mapping[str, str], *, production: bool) -> dict:
    server = _mail_server(environ)
    delivery = server or (None if production else MAIL_TO_LOG)
    public_url = (environ.get("PUBLIC_URL") or "").strip().rstrip("/") or None
    if public_url is None and not production:
        public_url = "http://127.0.0.1:5000"  # `make serve`
    if public_url is not None:
        _check_link_base("PUBLIC_URL", public_url, production=production)
    links = {
        "PASSWORD_RESET_URL": _link(environ, "PASSWORD_RESET_URL", public_url, "reset-password", production),
        "EMAIL_VERIFY_URL": _link(environ, "EMAIL_VERIFY_URL", public_url, "verify-email", production),
        "SIGNIN_ALERT_URL": _link(environ, "SIGNIN_ALERT_URL", public_url, "end-session", production),
    }
    if server is not None and None in links.values():
        # Never the Host a request names: a stranger could make a reset link point at their own site.
        raise ConfigError(
            "PUBLIC_URL is required in production once mail is configured: the service's (or your SPA's) "
            "https:// address, where the links in its mails point (or set PASSWORD_RESET_URL, EMAIL_VERIFY_URL "
            "and SIGNIN_ALERT_URL)."
        )
    mail_from = (environ.get("MAIL_FROM") or "").strip()
    if not mail_from and environ.get("MAILGUN_DOMAIN") and server is not None:
        mail_from = f"no-reply@{environ['MAILGUN_DOMAIN'].strip()}"
    if not mail_from and server is not None:
        raise ConfigError("MAIL_FROM is required with a mail server: the address mails come from.")
    mail_from = mail_from or "tokenservice@localhost"
    if "\r" in mail_from or "\n" in mail_from or "@" not in parseaddr(mail_from)[1]:
        raise ConfigError(f"MAIL_FROM must be an e-mail address, optionally with a name, not {mail_from!r}.")
    return {
        # A MailServer, MAIL_TO_LOG (development without one), or None: nothing that sends mail is offered.
        "MAIL_DELIVERY": delivery,
        "MAIL_FROM": mail_from,
        "PUBLIC_URL": public_url,
        **links,
        # Refuse logins (403 email_not_verified) of users whose address is missing or not verified.
        "REQUIRE_VERIFIED_EMAIL": _boolean(environ, "REQUIRE_VERIFIED_EMAIL", False),
        # Reset links and verification links mailed to one account, each kind counted apart.
        "MAIL_RATE_LIMIT": _rate(environ, "MAIL_RATE_LIMIT", "5 per hour"),
        # false: no sender in the web workers; `flask mail send` (a worker dyno, a scheduler) sends instead.
        "MAIL_SENDER_IN_WEB": _boolean(environ, "MAIL_SENDER_IN_WEB", True),
    }


def _link(environ: Mapping[str, str], name: str, public_url: str | None, screen: str, production: bool) -> str | None:
    """A link template with {token} in it: the setting, or the demo page's screen at PUBLIC_URL."""
    template = (environ.get(name) or "").strip() or (public_url and f"{public_url}/#action={screen}&token={{token}}")
    if not template:
        return None
    try:
        example = template.format(token="t")  # noqa: S106 (as rules/notices.py fills it in)
    except (KeyError, IndexError, ValueError):
        example = None
    if example is None or "{token}" not in template:
        raise ConfigError(f"{name} must contain {{token}}, where the link's token goes, and no other {{...}}.")
    _check_link_base(name, example, production=production)
    return template


def _mail_server(environ: Mapping[str, str]) -> MailServer | None:
    url = (environ.get("SMTP_URL") or "").strip()
    if not url and environ.get("MAILGUN_SMTP_SERVER"):
        # The Heroku Mailgun add-on's own variables (devcenter.heroku.com/articles/mailgun).
        port = _count(environ, "MAILGUN_SMTP_PORT", 587)
        return MailServer(
            host=environ["MAILGUN_SMTP_SERVER"].strip(),
            port=port,
            tls="ssl" if port == 465 else "starttls",
            username=environ.get("MAILGUN_SMTP_LOGIN") or None,
            password=environ.get("MAILGUN_SMTP_PASSWORD") or None,
        )
    if not url:
        return None
    # Not the URL itself in a sentence: it may hold a password.
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(f"SMTP_URL must be smtp://[user:password@]host[:port] or smtps://..., not {parts.scheme}://.")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError:
        raise ConfigError("SMTP_URL has a port that is not a number.") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    tls = "ssl" if parts.scheme == "smtps" else "starttls"
    if parts.query:
        if parts.scheme != "smtp" or parts.query != "starttls=false":
            raise ConfigError("SMTP_URL takes one option, smtp://...?starttls=false, for a relay without TLS.")
        if username or password:
            raise ConfigError("SMTP_URL with starttls=false would send its password in clear: drop one or the other.")
        tls = "none"
    return MailServer(host=parts.hostname, port=port, tls=tls, username=username, password=password)


def _check_link_base(name: str, url: str, *, production: bool) -> None:
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or (parts.scheme == "http" and production and not local)
    ):
        raise ConfigError(f"{name} must be an https:// address (http:// only for localhost), not {url!r}.")


def mail_warning(settings: Mapping) -> str | None:
    """The sentence to log once at start in production when no mail server is configured."""
    if settings["APP_ENV"] == "production" and settings["MAIL_DELIVERY"] is None:
        return (
            "No mail server (SMTP_URL, or the Mailgun add-on): password resets and e-mail verification answer "
            "503 mail_unavailable, and no security notices are sent; `flask users reset-link` prints a reset link."
        )
    return None


def normalise_database_url(url: str) -> str:
    """Map postgres:// and postgresql:// URLs to the psycopg2 driver.

    Heroku hands out postgres://, which SQLAlchemy no longer knows, and
    SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we do not
    install.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL is not a valid URL: use postgres://user:password@host:port/dbname ({PROVISION_DATABASE})."
        ) from None
    if parsed.drivername not in ("postgres", "postgresql", "postgresql+psycopg2"):
        raise ConfigError(f"DATABASE_URL must be a postgres:// or postgresql:// URL, not {parsed.drivername}://.")
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def _token_locations(environ: Mapping[str, str]) -> list[str]:
    raw = (environ.get("JWT_TOKEN_LOCATION") or "headers").replace(" ", "").lower()
    if raw not in ("headers", "headers,cookies", "cookies,headers"):
        raise ConfigError(f"JWT_TOKEN_LOCATION must be 'headers' or 'headers,cookies', not {raw!r}.")
    return ["headers", "cookies"] if "cookies" in raw else ["headers"]


def cookie_mode(locations: list[str]) -> bool:
    """Whether tokens are also set, and read, as cookies: JWT_TOKEN_LOCATION is headers,cookies."""
    return "cookies" in locations


def _samesite(environ: Mapping[str, str], *, secure: bool, cookie_mode: bool) -> str:
    raw = (environ.get("JWT_COOKIE_SAMESITE") or "Lax").strip().capitalize()
    if raw not in ("Lax", "Strict", "None"):
        raise ConfigError(f"JWT_COOKIE_SAMESITE must be Lax, Strict or None, not {raw!r}.")
    if raw == "None" and not secure and cookie_mode:
        raise ConfigError("JWT_COOKIE_SAMESITE=None needs JWT_COOKIE_SECURE=true: browsers drop such cookies.")
    return raw


def _origins(raw: str) -> list[str]:
    """CORS_ORIGINS as a list of exact origins: scheme://host[:port], no path, no wildcard."""
    if raw.strip().lower() == "none":
        return []
    return [_origin(entry.strip()) for entry in raw.split(",") if entry.strip()]


# A host name, an IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?|\[[0-9a-f:.]+\]")


def _origin(entry: str) -> str:
    """One CORS_ORIGINS entry as a browser writes Origin, or a ConfigError.

    A path, query, fragment, user info, wildcard or stray bracket would make
    the entry silently never match, so it stops the app instead.
    """
    refused = ConfigError(f"CORS_ORIGINS must list exact origins like https://app.example.com, not {entry!r}.")
    try:
        parts = urlsplit(entry.lower())
        port = parts.port
    except ValueError:
        raise refused from None
    host = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    if (
        parts.scheme not in ("http", "https")
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "?" in entry
        or "#" in entry
        or "@" in parts.netloc
        or not _HOST.fullmatch(host)
    ):
        raise refused
    # Browsers never send a default port in Origin.
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _rate(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = (environ.get(name) or default).strip()
    try:
        limits.parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as '{default}', not {raw!r}.") from None
    return raw


def _rate_limit_storage(environ: Mapping[str, str]) -> str:
    uri = environ.get("RATELIMIT_STORAGE_URI")
    if not uri and environ.get("REDIS_URL", "").startswith("rediss://") and "ssl_cert_reqs" not in environ["REDIS_URL"]:
        # Heroku's Key-Value Store sets REDIS_URL to a TLS address whose
        # certificate is self-signed; Heroku's own advice is not to verify it.
        separator = "&" if "?" in environ["REDIS_URL"] else "?"
        uri = environ["REDIS_URL"] + separator + "ssl_cert_reqs=none"
    uri = uri or environ.get("REDIS_URL") or "memory://"
    scheme = uri.partition("://")[0]
    if scheme not in ("memory", "redis", "rediss"):
        # Not the URL itself in the sentence: it may hold a password.
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI (or REDIS_URL) must be a redis://, rediss:// or memory:// URL, not {scheme}://."
        )
    return uri


def storage_warning(settings: Mapping) -> str | None:
    """The sentence to log at start in production when limits are counted per process."""
    if (
        settings["APP_ENV"] == "production"
        and settings["RATELIMIT_ENABLED"]
        and settings["RATELIMIT_STORAGE_URI"] == "memory://"
    ):
        return (
            "Rate limits per client address are counted per process (no RATELIMIT_STORAGE_URI or REDIS_URL): "
            "each worker and instance allows TOKEN_RATE_LIMIT on its own. Failed logins per username are "
            "shared through PostgreSQL regardless."
        )
    return None


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = (environ.get(name) or str(default)).strip()
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, 0 or more, not {raw!r}.")
    return int(raw)


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be 'true' or 'false', not {raw!r}.")
    return raw == "true"


def _seconds(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} seconds.")
    return value


def _signing_keys(environ: Mapping[str, str], *, production: bool, instance_path: str) -> keys.SigningKeys:
    algorithm = (environ.get("JWT_ALGORITHM") or "HS256").strip().upper()
    if algorithm not in keys.ALGORITHMS:
        raise ConfigError(f"JWT_ALGORITHM must be HS256, RS256 or ES256, not {algorithm!r}.")
    if algorithm == "HS256":
        return keys.SharedSecret(_jwt_secret(environ, production=production, instance_path=instance_path))
    from .tokens import key_pairs  # cryptography, which only a key pair uses

    try:
        return key_pairs.asymmetric(
            algorithm,
            private=environ.get("JWT_PRIVATE_KEY") or None,
            public=environ.get("JWT_PUBLIC_KEY") or None,
            previous=environ.get("JWT_PREVIOUS_PUBLIC_KEYS") or None,
        )
    except keys.KeySettingError as refused:
        raise ConfigError(str(refused)) from None


def _jwt_secret(environ: Mapping[str, str], *, production: bool, instance_path: str) -> str:
    secret = environ.get("JWT_SECRET_KEY") or None
    if secret is None:
        if production:
            raise ConfigError(
                f"JWT_SECRET_KEY is required in production: set it to a random string of at least "
                f"{MIN_SECRET_BYTES} bytes, e.g. the output of "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        return _development_secret(Path(instance_path), DEV_SECRET_FILE)
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long.")
    return secret


def _development_secret(instance_dir: Path, name: str) -> str:
    """A random key made once and kept in instance/`name`, so restarts and all workers agree."""
    path = instance_dir / name
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        draft = instance_dir / f".{name}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            # link() fails if another worker got there first: theirs wins.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
