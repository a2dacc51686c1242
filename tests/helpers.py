"""Constants and small helpers shared by the tests."""

import time
from pathlib import Path

import jwt as pyjwt

ROOT = Path(__file__).resolve().parents[1]
SECRET = "tests-only-secret-long-enough-for-hs256-and-for-forging-hs512-tokens"
PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def forge(claims: dict, *, key: str = SECRET, algorithm: str = "HS256", **changes) -> str:
    """Re-sign `claims` with `changes` applied (a None value removes the claim)."""
    payload = {**claims, **changes}
    payload = {name: value for name, value in payload.items() if value is not None}
    return pyjwt.encode(payload, key, algorithm=algorithm)


def now() -> int:
    return int(time.time())
