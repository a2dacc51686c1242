from flask_jwt_extended import current_user, get_jwt

from ...rules import second_factor
from ...rules.users import get_user, remove_second_factor, turn_off_second_factor
from ...storage.extensions import db
from ...tokens.claims import read_claims
from ..guards import ACCESS_TOKEN, ADMIN, FRESH_ACCESS_TOKEN, SECOND_FACTOR
from ..openapi import Blueprint, errors
from ..request_checks import JSON, accepts
from ..schemas import RecoveryCodesSchema, TotpConfirmSchema, TotpEnrolmentSchema, TotpTurnOffSchema
from .token import NO_STORE

bp = Blueprint("mfa", __name__, description="A second factor: TOTP codes from an authenticator app, recovery codes")


@bp.route("/me/mfa/totp", methods=["POST"], guard=FRESH_ACCESS_TOKEN)
@errors(409)
@bp.response(200, TotpEnrolmentSchema)
def start_totp():
    """Start enrolment: a new secret (as text, an otpauth:// URI and a QR code); it is on once confirmed."""
    enrolment = second_factor.start_enrolment(current_user)
    db.session.commit()
    return {"secret": enrolment.secret, "uri": enrolment.uri, "qr_svg": enrolment.qr_svg}, NO_STORE


@bp.route("/me/mfa/totp/confirm", methods=["POST"], guard=FRESH_ACCESS_TOKEN)
@accepts(JSON)
@bp.arguments(TotpConfirmSchema)
@errors(409, 415)
@bp.response(200, RecoveryCodesSchema)
def confirm_totp(data):
    """Turn the factor on with the app's current code; answers the ten recovery codes, this once."""
    codes = second_factor.confirm_enrolment(current_user, data["code"])
    db.session.commit()
    return {"recovery_codes": codes}, NO_STORE


@bp.route("/me/mfa/totp", methods=["DELETE"], guard=ACCESS_TOKEN)
@accepts(JSON)
@bp.arguments(TotpTurnOffSchema)
@errors(409, 415, 429)
@bp.response(204)
def turn_off_totp(data):
    """Turn the factor off with the password and a code (or a recovery code); wrong ones count as failed logins."""
    session_id = read_claims(get_jwt()).session_id
    turn_off_second_factor(user=current_user, password=data["password"], code=data["code"], keep=session_id)
    db.session.commit()


@bp.route("/me/mfa/recovery-codes", methods=["POST"], guard=SECOND_FACTOR)
@errors(409)
@bp.response(200, RecoveryCodesSchema)
def renew_recovery_codes():
    """Replace the recovery codes with ten new ones, with a token from a login with a second factor just now."""
    codes = second_factor.renew_recovery_codes(current_user)
    db.session.commit()
    return {"recovery_codes": codes}, NO_STORE


@bp.route("/users/<int:user_id>/mfa", methods=["DELETE"], guard=ADMIN)
@errors(404, 409)
@bp.response(204)
def remove_user_mfa(user_id: int):
    """Remove a user's second factor (they lost it): their sessions end, and their verified address is told."""
    remove_second_factor(user=get_user(user_id))
    db.session.commit()
