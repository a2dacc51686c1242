from flask import current_app, request
from flask_jwt_extended import decode_token, get_jwt

from ...rules.clients import authenticate_client, issue_client_token
from ...rules.devices import device_token
from ...rules.exceptions import InvalidInput, UnsupportedGrantType
from ...rules.sessions import Client, refresh_session, start_session
from ...rules.signin_alerts import alert_if_new_device
from ...rules.users import authenticate
from ...storage.extensions import db
from ...tokens.claims import read_refresh_claims
from ...tokens.cookies import send_token_cookies
from ...tokens.issuing import client_token_response, issue_tokens
from .. import logs
from ..guards import ANYONE, REFRESH_TOKEN, client_credentials
from ..openapi import Blueprint, errors
from ..rate_limits import per_address
from ..request_checks import FORM, JSON, accepts
from ..schemas import TokenRequestSchema, TokenResponseSchema

bp = Blueprint("token", __name__, description="Logging in and refreshing")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MISSING = "Missing data for required field."


@bp.route("/token", methods=["POST"], guard=ANYONE)
@per_address
@accepts(JSON, FORM)
# flask-smorest cannot document "JSON or a form", so the parser is called
# directly and the request body is documented by hand.
@bp.ARGUMENTS_PARSER.use_args(TokenRequestSchema, location="json_or_form")
@bp.doc(
    requestBody={
        "required": False,
        "description": "Credentials as JSON or as a form (OAuth 2.0 password grant), or none with HTTP Basic; "
        "or grant_type=refresh_token with a refresh_token. A user with a second factor adds otp or recovery_code "
        "(401 mfa_required without, 401 invalid_otp when wrong or used). A client: grant_type=client_credentials "
        "with its id and secret in HTTP Basic (or client_id and client_secret), and optionally scope.",
        "content": {JSON: {"schema": TokenRequestSchema}, FORM: {"schema": TokenRequestSchema}},
    },
    security=[{}, {"basicAuth": []}],
)
@errors(400, 401, 403, 409, 413, 415, 503)
@bp.response(200, TokenResponseSchema)
def create_token(data):
    """Trade a username and password (JSON, form or HTTP Basic), or a refresh token, for tokens."""
    if data["grant_type"] == "refresh_token":
        if "refresh_token" not in data:
            raise InvalidInput("Send the refresh token.", fields={"refresh_token": MISSING})
        # decode_token checks the signature, expiry, issuer and audience, but
        # runs none of the loaders: refresh_session makes the session checks.
        return _refreshed(decode_token(data["refresh_token"]))
    if data["grant_type"] == "client_credentials":
        return _client_token(data)
    if data["grant_type"] != "password":
        raise UnsupportedGrantType()
    username, password = _credentials(data)
    otp, recovery_code = _second_factor(data)
    login = authenticate(
        username=username,
        password=password,
        device_token=data.get("device_token"),
        otp=otp,
        recovery_code=recovery_code,
    )
    user = login.user
    logs.identify(user.id)
    login_session = start_session(user=user, client=_client(), amr=login.amr)
    alert_if_new_device(login, login_session)
    tokens = issue_tokens(user=user, login_session=login_session, fresh=True)
    # Sent back at the next login, it counts that client's failed logins apart from strangers' (rules/devices.py).
    tokens["device_token"] = device_token(user_id=user.id, device_id=login.device_id, password_hash=user.password_hash)
    db.session.commit()
    send_token_cookies(tokens)
    return tokens, NO_STORE


@bp.route("/token/refresh", methods=["POST"], guard=REFRESH_TOKEN)
@bp.response(200, TokenResponseSchema)
def refresh_token():
    """Trade the refresh token in Authorization: Bearer for new tokens of the same session."""
    return _refreshed(get_jwt())


def _client_token(data: dict):
    """A client's access token for its id and secret (HTTP Basic first, as RFC 6749 2.3.1 prefers, else the body)."""
    client = authenticate_client(*client_credentials(data))
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    token = issue_client_token(client, scope=data.get("scope"), lifetime=lifetime)
    answer = client_token_response(client=client, token=token)
    db.session.commit()
    return answer, NO_STORE


def _refreshed(claims: dict):
    token = read_refresh_claims(claims)
    user, login_session = refresh_session(
        user_id=token.user_id, session_id=token.session_id, jti=token.jti, client=_client()
    )
    tokens = issue_tokens(user=user, login_session=login_session, fresh=False)
    db.session.commit()
    send_token_cookies(tokens)
    return tokens, NO_STORE


def _client() -> Client:
    """The caller's address (behind TRUSTED_PROXIES, as the rate limits see it) and User-Agent."""
    return Client(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))


def _second_factor(data: dict) -> tuple[str | None, str | None]:
    """The body's otp and recovery_code, or else (for HTTP Basic, which has no room for them) the X-OTP and
    X-Recovery-Code headers, held to the body fields' lengths."""
    headers = {"otp": ("X-OTP", 10), "recovery_code": ("X-Recovery-Code", 64)}
    sent = {}
    for field, (header, longest) in headers.items():
        sent[field] = data.get(field, request.headers.get(header))
        if field not in data and len(sent[field] or "") > longest:
            raise InvalidInput(fields={field: "Too long."})
    return sent["otp"], sent["recovery_code"]


def _credentials(data: dict) -> tuple[str, str]:
    """The body's username and password, or else HTTP Basic's (docs/api.md, "POST /token")."""
    if "username" in data or "password" in data:
        missing = {field: MISSING for field in ("username", "password") if field not in data}
        if missing:
            raise InvalidInput(fields=missing)
        return data["username"], data["password"]
    basic = request.authorization
    # Not from a browser's form post (a navigation): behind a Basic-auth gate,
    # the browser adds the gate's own credentials to it by itself.
    navigation = request.headers.get("Sec-Fetch-Mode") == "navigate"
    if basic is not None and basic.type == "basic" and basic.username is not None and not navigation:
        return basic.username, basic.password or ""
    raise InvalidInput(
        "Send a username and password as JSON, as a form, or with HTTP Basic.",
        fields={"username": MISSING, "password": MISSING},
    )
