import os
import stat

import pytest

from tokenservice.config import ConfigError, load_settings, normalise_database_url, storage_warning

URL = "postgresql+psycopg2://u:p@db.example.com:5432/app"


@pytest.mark.parametrize(
    "given",
    [
        "postgres://u:p@db.example.com:5432/app",  # Heroku's form
        "postgresql://u:p@db.example.com:5432/app",  # SQLAlchemy 2.1 would pick psycopg 3
        "postgresql+psycopg2://u:p@db.example.com:5432/app",
    ],
)
def test_postgres_urls_use_psycopg2(given):
    assert normalise_database_url(given) == URL


@pytest.mark.parametrize("given", ["sqlite:///app.db", "mysql://u@h/db", "not a url"])
def test_other_databases_are_refused(given):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        normalise_database_url(given)


@pytest.mark.parametrize("app_env", ["development", "production"])
def test_short_secret_stops_the_app_in_every_environment(tmp_path, app_env):
    environ = {"APP_ENV": app_env, "DATABASE_URL": URL, "JWT_SECRET_KEY": "x" * 31}
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY must be at least 32 bytes"):
        load_settings(environ, instance_path=str(tmp_path))


def test_missing_secret_stops_production(tmp_path):
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY is required in production"):
        load_settings({"DATABASE_URL": URL}, instance_path=str(tmp_path))


def test_production_needs_a_database_url(tmp_path):
    with pytest.raises(ConfigError, match="DATABASE_URL is required in production"):
        load_settings({"APP_ENV": "production", "JWT_SECRET_KEY": "x" * 32}, instance_path=str(tmp_path))


def test_development_secret_is_made_once_and_kept(tmp_path):
    first = load_settings({"APP_ENV": "development"}, instance_path=str(tmp_path / "instance"))
    second = load_settings({"APP_ENV": "development"}, instance_path=str(tmp_path / "instance"))
    assert first["JWT_SECRET_KEY"] == second["JWT_SECRET_KEY"]
    assert len(first["JWT_SECRET_KEY"]) >= 32
    mode = os.stat(tmp_path / "instance" / "jwt-secret").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert first["MFA_KEY"] == second["MFA_KEY"] and len(first["MFA_KEY"]) >= 32
    assert sorted(os.listdir(tmp_path / "instance")) == ["jwt-secret", "mfa-key"]  # no draft left behind


def test_app_env_follows_database_url(tmp_path):
    assert load_settings({}, instance_path=str(tmp_path))["APP_ENV"] == "development"
    with_url = load_settings({"DATABASE_URL": URL, "JWT_SECRET_KEY": "x" * 32}, instance_path=str(tmp_path))
    assert with_url["APP_ENV"] == "production"
    explicit = load_settings({"DATABASE_URL": URL, "APP_ENV": "development"}, instance_path=str(tmp_path))
    assert explicit["APP_ENV"] == "development"
    assert explicit["SQLALCHEMY_DATABASE_URI"] == URL


def test_unknown_app_env_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings({"APP_ENV": "staging"}, instance_path=str(tmp_path))


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_token_lifetimes_must_be_positive_seconds(tmp_path, value):
    with pytest.raises(ConfigError, match="JWT_ACCESS_TOKEN_EXPIRES"):
        load_settings({"JWT_ACCESS_TOKEN_EXPIRES": value}, instance_path=str(tmp_path))


def test_token_lifetimes_are_read(tmp_path):
    settings = load_settings(
        {"JWT_ACCESS_TOKEN_EXPIRES": "60", "JWT_REFRESH_TOKEN_EXPIRES": "3600"}, instance_path=str(tmp_path)
    )
    assert settings["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 60
    assert settings["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds() == 3600


def test_reuse_window_may_be_zero_but_not_negative(tmp_path):
    settings = load_settings({"JWT_REFRESH_REUSE_WINDOW": "0"}, instance_path=str(tmp_path))
    assert settings["JWT_REFRESH_REUSE_WINDOW"].total_seconds() == 0
    assert load_settings({}, instance_path=str(tmp_path))["JWT_REFRESH_REUSE_WINDOW"].total_seconds() == 10
    with pytest.raises(ConfigError, match="JWT_REFRESH_REUSE_WINDOW"):
        load_settings({"JWT_REFRESH_REUSE_WINDOW": "-1"}, instance_path=str(tmp_path))


@pytest.mark.parametrize(("value", "expected"), [("", True), ("true", True), ("FALSE", False), (" false ", False)])
def test_allow_registration(tmp_path, value, expected):
    settings = load_settings({"ALLOW_REGISTRATION": value}, instance_path=str(tmp_path))
    assert settings["ALLOW_REGISTRATION"] is expected


def test_allow_registration_must_be_a_boolean(tmp_path):
    with pytest.raises(ConfigError, match="ALLOW_REGISTRATION must be 'true' or 'false'"):
        load_settings({"ALLOW_REGISTRATION": "no"}, instance_path=str(tmp_path))


def test_cors_origins(tmp_path):
    def origins(environ):
        return load_settings(environ, instance_path=str(tmp_path))["CORS_ORIGINS"]

    assert origins({}) == ["http://localhost:5173", "http://127.0.0.1:5173"]  # development
    assert origins({"CORS_ORIGINS": ""}) == ["http://localhost:5173", "http://127.0.0.1:5173"]
    assert origins({"CORS_ORIGINS": "none"}) == []
    assert origins({"CORS_ORIGINS": " https://a.example , https://b.example:8443/ "}) == [
        "https://a.example",
        "https://b.example:8443",
    ]
    production = {"DATABASE_URL": URL, "JWT_SECRET_KEY": "x" * 32}
    assert origins(production) == []


@pytest.mark.parametrize("value", ["*", "https://*.example.com", "null", "a.example", "https://a.example/app"])
def test_cors_origins_must_be_exact(tmp_path, value):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_settings({"CORS_ORIGINS": value}, instance_path=str(tmp_path))


@pytest.mark.parametrize(
    "variable", ["TOKEN_RATE_LIMIT", "LOGIN_FAILURE_LIMIT", "REGISTRATION_RATE_LIMIT", "PASSWORD_CHANGE_RATE_LIMIT"]
)
@pytest.mark.parametrize("value", ["lots", "10 per fortnight", "-3 per minute"])
def test_rates_must_be_rates(tmp_path, variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value}, instance_path=str(tmp_path))


def test_rate_limit_storage(tmp_path):
    def storage(environ):
        return load_settings(environ, instance_path=str(tmp_path))["RATELIMIT_STORAGE_URI"]

    assert storage({}) == "memory://"
    # Heroku's Key-Value Store: TLS with a self-signed certificate.
    assert (
        storage({"REDIS_URL": "rediss://:pw@kv.example.com:6380"})
        == "rediss://:pw@kv.example.com:6380?ssl_cert_reqs=none"
    )
    assert storage({"REDIS_URL": "redis://:pw@kv.example.com:6379"}) == "redis://:pw@kv.example.com:6379"
    assert storage({"REDIS_URL": "redis://a:6379", "RATELIMIT_STORAGE_URI": "redis://b:6379"}) == "redis://b:6379"
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI") as refused:
        storage({"RATELIMIT_STORAGE_URI": "memcached://user:secret-password@cache:11211"})
    assert "secret-password" not in str(refused.value)


@pytest.mark.parametrize("value", ["-1", "one", "1.5"])
def test_trusted_proxies_is_a_count(tmp_path, value):
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": value}, instance_path=str(tmp_path))


def test_the_per_process_warning_is_for_production_with_memory_only(tmp_path):
    def warning(environ):
        return storage_warning(load_settings(environ, instance_path=str(tmp_path)))

    production = {"DATABASE_URL": URL, "JWT_SECRET_KEY": "x" * 32}
    assert "counted per process" in warning(production)
    assert warning({**production, "REDIS_URL": "redis://kv:6379"}) is None
    assert warning({**production, "RATELIMIT_ENABLED": "false"}) is None
    assert warning({}) is None  # development


def test_an_entry_point_stops_with_one_sentence(monkeypatch, capsys):
    from tokenservice import create_app_or_exit

    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(SystemExit) as exited:
        create_app_or_exit(migrations=False)
    assert exited.value.code == 4  # gunicorn's "App failed to load"
    expected = "tokenservice cannot start: APP_ENV must be 'development' or 'production', not 'staging'.\n"
    assert capsys.readouterr().err == expected
