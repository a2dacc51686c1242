"""Request and response schemas: they validate input and document the API (openapi.py)."""

import re

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ..rules.clients import SCOPES
from ..rules.passwords import password_problem
from ..storage.models import ROLES

USERNAME_PATTERN = "^[A-Za-z0-9._-]{3,64}$"  # as the OpenAPI document states it (JSON Schema regex)


def valid_username(value: str) -> None:
    # fullmatch: Python's `$` would also match before a trailing newline.
    if not re.fullmatch(USERNAME_PATTERN.strip("^$"), value):
        raise ValidationError("Must be 3 to 64 characters: ASCII letters, digits, '.', '_' or '-'.")


def no_nul(value: str) -> None:
    # PostgreSQL cannot store NUL in text; refuse it as a 400, not a 500.
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


NAME = validate.And(validate.Length(max=200), no_nul)
# Its syntax is checked by the rules (rules/users.py, email-validator), for every caller.
EMAIL = validate.And(validate.Length(max=254), no_nul)
EMAIL_DOC = {"description": "Unverified until its owner follows the link mailed to it.", "format": "email"}


def link_token() -> fields.String:
    return fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(max=100),
        metadata={"description": "From the mailed link."},
    )


class ErrorSchema(Schema):
    """The one error shape: every error, from every route and from Flask itself (errors.py)."""

    class Meta:
        # GET /health's 503 adds "status" and "database" beside the error.
        unknown = INCLUDE

    error = fields.String(required=True, metadata={"description": "A stable snake_case code."})
    message = fields.String(required=True, metadata={"description": "One human sentence."})
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "For validation errors: what is wrong with each field."},
    )


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    name = fields.String(allow_none=True)
    role = fields.String()
    is_active = fields.Boolean()
    email = fields.String(allow_none=True)
    email_verified = fields.Boolean()
    mfa = fields.Boolean(metadata={"description": "Whether a second factor (TOTP) is on."})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class NewUserSchema(Schema):
    username = fields.String(required=True, validate=valid_username, metadata={"pattern": USERNAME_PATTERN})
    password = fields.String(required=True, load_only=True)
    name = fields.String(allow_none=True, validate=NAME)
    email = fields.String(allow_none=True, validate=EMAIL, metadata=EMAIL_DOC)
    role = fields.String(validate=validate.OneOf(ROLES), metadata={"description": "Admins only."})

    @validates_schema(skip_on_field_errors=False)
    def check_password(self, data, **kwargs):
        if "password" in data:
            problem = password_problem(data["password"], username=data.get("username"))
            if problem:
                raise ValidationError(problem, field_name="password")


class UserListQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    q = fields.String(validate=no_nul, metadata={"description": "Username prefix, any case."})
    role = fields.String(validate=validate.OneOf(ROLES))
    active = fields.Boolean()


class UserListSchema(Schema):
    items = fields.List(fields.Nested(UserSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class UserUpdateSchema(Schema):
    """What an admin may change about a user."""

    name = fields.String(allow_none=True, validate=NAME)
    email = fields.String(allow_none=True, validate=EMAIL, metadata=EMAIL_DOC)
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()
    password = fields.String(load_only=True)


class ProfileUpdateSchema(Schema):
    name = fields.String(allow_none=True, validate=NAME)
    email = fields.String(allow_none=True, validate=EMAIL, metadata=EMAIL_DOC)
    current_password = fields.String(
        load_only=True, metadata={"description": "Required to change `email` (a name needs none)."}
    )


class ForgotPasswordSchema(Schema):
    """One of the two: the answer is the same whether or not it names an account."""

    username = fields.String(validate=validate.And(validate.Length(max=64), no_nul))
    email = fields.String(validate=EMAIL)

    @validates_schema
    def one_of_them(self, data, **kwargs):
        if len(data) != 1:
            raise ValidationError("Send the username or the e-mail address (one of them).", field_name="username")


class PasswordResetSchema(Schema):
    token = link_token()
    new_password = fields.String(required=True, load_only=True)


class LinkTokenSchema(Schema):
    token = link_token()


class SessionSchema(Schema):
    id = fields.UUID()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(metadata={"description": "Its last login or refresh."})
    ip = fields.String(allow_none=True, metadata={"description": "The client's address then (as rate limits see it)."})
    user_agent = fields.String(allow_none=True, metadata={"description": "At most 200 printable characters."})
    current = fields.Boolean(metadata={"description": "The session of the token that asked."})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema))


def one_time_code(description: str) -> fields.String:
    return fields.String(
        required=True, load_only=True, validate=validate.Length(max=64), metadata={"description": description}
    )


class TotpEnrolmentSchema(Schema):
    secret = fields.String(metadata={"description": "Base32, to type into an authenticator app."})
    uri = fields.String(metadata={"description": "The otpauth:// URI the QR code holds."})
    qr_svg = fields.String(metadata={"description": "The URI as a QR code: an <svg> element."})


class TotpConfirmSchema(Schema):
    code = one_time_code("The app's current 6-digit code for the new secret.")


class TotpTurnOffSchema(Schema):
    password = fields.String(required=True, load_only=True)
    code = one_time_code("The app's current 6-digit code, or a recovery code.")


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(
        fields.String(), metadata={"description": "Shown this once: each logs in once instead of a code."}
    )


class EndAlertedSessionSchema(Schema):
    token = link_token()
    everywhere = fields.Boolean(load_default=False, metadata={"description": "End every other session too."})


class NewClientSchema(Schema):
    name = fields.String(required=True, validate=validate.And(validate.Length(min=1, max=100), no_nul))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        required=True,
        validate=validate.Length(min=1, max=len(SCOPES)),
        metadata={"description": f"One or more of: {', '.join(SCOPES)}."},
    )


class NewClientSecretSchema(Schema):
    client_id = fields.String()
    client_secret = fields.String(metadata={"description": "Shown this once; only its hash is kept."})
    name = fields.String()
    scopes = fields.List(fields.String())


class ClientSchema(Schema):
    client_id = fields.String(attribute="id")
    name = fields.String()
    scopes = fields.List(fields.String())
    is_active = fields.Boolean()
    created_at = fields.DateTime()


class ClientListSchema(Schema):
    items = fields.List(fields.Nested(ClientSchema))


class ClientUpdateSchema(Schema):
    is_active = fields.Boolean(metadata={"description": "false: the client's tokens stop at once."})


FORM_TOKEN = {"description": "The token, as a client holds it."}


class TokenFormSchema(Schema):
    """The form of POST /introspect and POST /revoke (RFC 7662 2.1, RFC 7009 2.1)."""

    token = fields.String(required=True, load_only=True, validate=validate.Length(max=8192), metadata=FORM_TOKEN)
    token_type_hint = fields.String(validate=validate.Length(max=32))
    client_id = fields.String(validate=validate.Length(max=100))
    client_secret = fields.String(load_only=True, validate=validate.Length(max=200))


class IntrospectionSchema(Schema):
    """RFC 7662 2.2: only `active` when the token is not active."""

    active = fields.Boolean(required=True)
    sub = fields.String()
    exp = fields.Integer()
    iat = fields.Integer()
    sid = fields.String()
    scope = fields.String()
    client_id = fields.String()
    token_type = fields.String()
    type = fields.String(metadata={"description": "access or refresh: the token's own type claim."})
    iss = fields.String()
    aud = fields.Raw()


class DiscoverySchema(Schema):
    """RFC 8414 2's fields that are true of this service."""

    issuer = fields.String()
    token_endpoint = fields.String()
    jwks_uri = fields.String(metadata={"description": "RS256 and ES256 only: with HS256 there are no public keys."})
    grant_types_supported = fields.List(fields.String())
    token_endpoint_auth_methods_supported = fields.List(fields.String())
    response_types_supported = fields.List(
        fields.String(), metadata={"description": "None: no authorization endpoint."}
    )
    scopes_supported = fields.List(fields.String())
    introspection_endpoint = fields.String()
    introspection_endpoint_auth_methods_supported = fields.List(fields.String())
    revocation_endpoint = fields.String()
    revocation_endpoint_auth_methods_supported = fields.List(fields.String())
    service_documentation = fields.String()


class AcceptedSchema(Schema):
    message = fields.String()


class TokenRequestSchema(Schema):
    grant_type = fields.String(load_default="password")
    username = fields.String()
    password = fields.String(load_only=True)
    refresh_token = fields.String(load_only=True, metadata={"description": "With grant_type=refresh_token."})
    device_token = fields.String(
        load_only=True,
        metadata={
            "description": "The device_token of an earlier successful login: this client's failed logins are "
            "then counted apart from strangers', so their guesses cannot lock it out."
        },
    )
    otp = fields.String(
        load_only=True,
        validate=validate.Length(max=10),
        metadata={"description": "The 6-digit code of the user's second factor (with HTTP Basic: X-OTP header)."},
    )
    recovery_code = fields.String(
        load_only=True,
        validate=validate.Length(max=64),
        metadata={"description": "Instead of otp, one of the recovery codes (with HTTP Basic: X-Recovery-Code)."},
    )
    # A client's credentials and the scopes it asks for, with grant_type=client_credentials; ignored otherwise
    # (OAuth 2.0 clients, Swagger UI's Authorize among them, send them with the password grant).
    scope = fields.String(validate=validate.Length(max=200))
    client_id = fields.String(validate=validate.Length(max=100))
    client_secret = fields.String(load_only=True, validate=validate.Length(max=200))


class TokenResponseSchema(Schema):
    access_token = fields.String()
    scope = fields.String(metadata={"description": "client_credentials only: the scopes the token carries."})
    token_type = fields.String()
    expires_in = fields.Integer()
    refresh_token = fields.String()
    token = fields.String(metadata={"description": "The access token again, under the classic snippet's name."})
    user_id = fields.Integer()
    device_token = fields.String(
        metadata={
            "description": "Password logins only: send it back with later logins from this client (not a "
            "credential; it opens no session)."
        }
    )


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True)
    new_password = fields.String(required=True, load_only=True)


class LogoutQuerySchema(Schema):
    everywhere = fields.Boolean(
        data_key="all", load_default=False, metadata={"description": "End every session of the user."}
    )


class ProtectedSchema(Schema):
    id = fields.Integer()
    username = fields.String()


class HealthSchema(Schema):
    status = fields.String()
    database = fields.String()


class JwkSchema(Schema):
    """One public key (RFC 7517): RSA's n and e, or EC's crv, x and y; never a private member."""

    kty = fields.String()
    kid = fields.String(metadata={"description": "RFC 7638 thumbprint; the `kid` in the header of tokens it signed."})
    use = fields.String()
    alg = fields.String()
    n = fields.String()
    e = fields.String()
    crv = fields.String()
    x = fields.String()
    y = fields.String()


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema))
