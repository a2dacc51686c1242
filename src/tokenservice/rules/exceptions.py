"""What the rules refuse, named for what happened.

The modules that hold the rules (users, passwords, sessions, roles) and the
routes raise these. They carry a sentence for a person and, for input
problems, what is wrong with each field; no status code. `web/errors.py` turns
each into its HTTP answer (docs/api.md, "Errors"); `cli.py` turns them into a
message and exit status 1.
"""


class Refusal(Exception):
    """A request the service refuses.

    `message` is one human sentence, `fields` what is wrong with each field,
    `details` more facts for the answer (GET /health's "database").
    """

    message = "The request was refused."
    fields: dict[str, str] | None = None
    retry_after: int | None = None  # seconds after which trying again makes sense

    def __init__(
        self, message: str | None = None, *, fields: dict[str, str] | None = None, details=None, retry_after=None
    ):
        self.message = message or self.message
        self.fields = fields or self.fields
        self.details: dict = details or {}
        self.retry_after = retry_after or self.retry_after
        super().__init__(self.message)


class InvalidInput(Refusal):
    message = "Some fields are missing or invalid."


class PasswordRefused(InvalidInput):
    """A new password breaks the password rules (passwords.password_problem)."""


class WrongCurrentPassword(InvalidInput):
    message = "The current password is wrong."
    fields = {"current_password": "Wrong password."}


class UnsupportedMediaType(Refusal):
    pass


class BodyTooSlow(Refusal):
    """The declared body did not arrive in time (request_checks.BODY_SECONDS)."""

    message = "The request body did not arrive in time."


class UnsupportedGrantType(Refusal):
    message = "grant_type must be 'password', 'refresh_token' or 'client_credentials'."


class InvalidCredentials(Refusal):
    """A wrong username or password, or an inactive user: one answer for all three."""

    message = "Wrong username or password."


class MfaRequired(Refusal):
    """The password was right, and the user has a second factor: send `otp` or `recovery_code` with it."""

    message = "This account has a second factor: send the code from its authenticator app (otp) or a recovery code."


class InvalidOtp(Refusal):
    """At login: a code that is wrong, outside the clock's window, already used, or a used recovery code."""

    message = "The code is wrong or has been used already."


class WrongCode(InvalidInput):
    """Confirming or turning off a second factor: the code is wrong or has been used already."""

    message = "The code is wrong or has been used already."
    fields = {"code": "Wrong or already used."}


class MfaAlreadyEnabled(Refusal):
    message = "This account's second factor is on already: turn it off first to enrol another."


class MfaNotEnabled(Refusal):
    message = "This account has no second factor (start the enrolment first to confirm one)."


class MfaUnavailable(Refusal):
    """No MFA_KEY is configured: second factors cannot be stored."""

    message = "This service cannot store second factors: its operator has not set MFA_KEY."


class FreshLoginRequired(Refusal):
    """A token that came from a refresh, not from a login with the password."""

    message = "This needs a token from a login with the password just now: log in again, then try again."


class SecondFactorRequired(Refusal):
    """A route that needs a session that proved a second factor (amr "otp")."""

    message = "This needs a session that logged in with a second factor."


class InvalidClient(Refusal):
    """Client credentials that are missing, wrong, or of a client disabled or deleted (RFC 6749 5.2)."""

    message = "The client credentials are missing or wrong."


class InvalidScope(Refusal):
    message = "The client may not ask for that scope."


class UnauthorizedClient(Refusal):
    """A client revoking a token that was issued to another client (RFC 7009 2.1)."""

    message = "That token was not issued to this client."


class NotDiscoverable(Refusal):
    """The discovery documents need an issuer other services can start from."""

    message = "Discovery needs JWT_ISSUER set to this service's https:// address (the tokens' iss)."


class NoSuchClient(Refusal):
    message = "There is no such client."


class TokenRequired(Refusal):
    message = "This route needs an access token."


class InvalidToken(Refusal):
    message = "The token is not valid."


class SessionEnded(InvalidToken):
    """The token is well signed, but its session has ended or its user is gone or inactive."""

    message = "The token's session has ended, or its user is gone or inactive."


class RefreshTokenReused(SessionEnded):
    """A retired refresh token came back after the reuse window: theft, so the session ended."""

    message = "This refresh token was already used, so the session has ended; log in again."


class TokenExpired(Refusal):
    message = "The token has expired; refresh it or log in again."


class CsrfFailed(Refusal):
    message = "A request authenticated by cookie must send the CSRF cookie's value in X-CSRF-TOKEN."


class Forbidden(Refusal):
    """A valid token whose user lacks the role the action needs."""

    message = "This needs an admin."


class ClientTokenRefused(Forbidden):
    """A client's token on a route for users only."""

    message = "This route is for users: a client's token is not accepted here."


class NoSuchUser(Refusal):
    message = "There is no such user."


class NoSuchSession(Refusal):
    """No live session of this user has that id (another user's sessions are none of the caller's)."""

    message = "There is no such session."


class UsernameTaken(Refusal):
    message = "That username is taken."
    fields = {"username": "Already taken."}


class EmailTaken(Refusal):
    message = "That e-mail address belongs to another account."
    fields = {"email": "Already in use."}


class InvalidLink(Refusal):
    """A link token that is unknown, used, expired, for another purpose, or killed by a password change."""

    message = "This link is invalid, expired or already used: ask for a new one."
    fields = {"token": "Invalid, expired or already used."}


class EmailNotVerified(Refusal):
    """REQUIRE_VERIFIED_EMAIL: a login of a user whose address is missing or not verified yet."""

    message = (
        "This account's e-mail address must be verified first: follow the link just mailed to it "
        "(an account without an address needs an admin to set one)."
    )


class NoEmailAddress(Refusal):
    message = "This account has no e-mail address: set one first."


class EmailAlreadyVerified(Refusal):
    message = "This account's e-mail address is verified already."


class MailUnavailable(Refusal):
    """No mail server is configured (production without SMTP_URL): what would send mail is refused."""

    message = "This service cannot send mail: its operator has not configured a mail server."


class LastAdmin(Refusal):
    message = "This is the last active admin: make another admin first."


class ChangedMeanwhile(Refusal):
    """The password changed again and again while this request checked it (several changes at once)."""

    message = "The account changed while this request was being checked; try again."


class TooManyFailedLogins(Refusal):
    """LOGIN_FAILURE_LIMIT reached for a username (existing or not): wait `retry_after` seconds."""

    message = "Too many failed logins for this username; try again later."


class TooManyAttempts(Refusal):
    """A limit of attempts per account or per client address (password changes, registrations): wait `retry_after`."""

    message = "Too many attempts; try again later."


class HashingBusy(Refusal):
    """Every place in this worker's queue for password hashing is taken: try again in a moment."""

    message = "The service is busy checking passwords; try again in a moment."
    retry_after = 1


class DatabaseUnavailable(Refusal):
    message = "The service cannot reach its database; try again shortly."
    retry_after = 5
