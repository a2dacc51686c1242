"""Mail settings: SMTP_URL, the Mailgun add-on's variables, MAIL_FROM, PUBLIC_URL and the link templates."""

import pytest

from tokenservice.config import MAIL_TO_LOG, ConfigError, MailServer, load_settings, mail_warning

URL = "postgresql://u:p@db.example.com:5432/app"
DEPLOYED = {"DATABASE_URL": URL, "JWT_SECRET_KEY": "k" * 40}
WITH_MAIL = {**DEPLOYED, "MAIL_FROM": "no-reply@example.com", "PUBLIC_URL": "https://auth.example.com"}


def settings(tmp_path, **environ):
    return load_settings(environ, instance_path=str(tmp_path))


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://mail.example.com", MailServer("mail.example.com", 587, "starttls")),
        ("smtp://u%40x:p%3Aw@mail.example.com:2525", MailServer("mail.example.com", 2525, "starttls", "u@x", "p:w")),
        ("smtps://u:p@mail.example.com", MailServer("mail.example.com", 465, "ssl", "u", "p")),
        ("smtp://127.0.0.1:1025?starttls=false", MailServer("127.0.0.1", 1025, "none")),
    ],
)
def test_smtp_url(tmp_path, url, server):
    assert settings(tmp_path, **WITH_MAIL, SMTP_URL=url)["MAIL_DELIVERY"] == server


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("http://mail.example.com", "SMTP_URL must be smtp://"),
        ("smtp://", "SMTP_URL must be smtp://"),
        ("smtp://mail.example.com:port", "not a number"),
        ("smtp://u:p@mail.example.com?starttls=false", "password in clear"),
        ("smtp://mail.example.com?tls=maybe", "takes one option"),
    ],
)
def test_smtp_url_refused(tmp_path, url, sentence):
    with pytest.raises(ConfigError, match=sentence):
        settings(tmp_path, **WITH_MAIL, SMTP_URL=url)


def test_the_password_is_never_in_the_servers_repr():
    assert "secret" not in repr(MailServer("h", 587, "starttls", "user", "secret"))


def test_the_mailgun_add_on_is_read_when_smtp_url_is_not_set(tmp_path):
    mailgun = {
        "MAILGUN_SMTP_SERVER": "smtp.mailgun.org",
        "MAILGUN_SMTP_PORT": "587",
        "MAILGUN_SMTP_LOGIN": "postmaster@mg.example.com",
        "MAILGUN_SMTP_PASSWORD": "pw",
        "MAILGUN_DOMAIN": "mg.example.com",
    }
    read = settings(tmp_path, **DEPLOYED, **mailgun, PUBLIC_URL="https://auth.example.com")
    assert read["MAIL_DELIVERY"] == MailServer("smtp.mailgun.org", 587, "starttls", "postmaster@mg.example.com", "pw")
    assert read["MAIL_FROM"] == "no-reply@mg.example.com"
    assert settings(tmp_path, **WITH_MAIL, **{**mailgun, "MAILGUN_SMTP_PORT": "465"})["MAIL_DELIVERY"].tls == "ssl"
    assert settings(tmp_path, **WITH_MAIL, **mailgun, SMTP_URL="smtp://other.example.com")["MAIL_DELIVERY"].host == (
        "other.example.com"
    )


def test_production_with_mail_needs_public_url_and_mail_from(tmp_path):
    with pytest.raises(ConfigError, match="PUBLIC_URL is required"):
        settings(tmp_path, **DEPLOYED, MAIL_FROM="a@example.com", SMTP_URL="smtp://mail.example.com")
    with pytest.raises(ConfigError, match="MAIL_FROM is required"):
        settings(tmp_path, **DEPLOYED, PUBLIC_URL="https://a.example.com", SMTP_URL="smtp://mail.example.com")


def test_production_without_mail_offers_none_and_says_so_once(tmp_path):
    read = settings(tmp_path, **DEPLOYED)
    assert read["MAIL_DELIVERY"] is None and read["PASSWORD_RESET_URL"] is None
    assert "mail_unavailable" in mail_warning(read)
    assert mail_warning(settings(tmp_path, **WITH_MAIL, SMTP_URL="smtp://mail.example.com")) is None


def test_development_without_a_server_writes_mail_to_the_log(tmp_path):
    read = settings(tmp_path, APP_ENV="development", DATABASE_URL=URL)
    assert read["MAIL_DELIVERY"] == MAIL_TO_LOG
    assert read["PASSWORD_RESET_URL"] == "http://127.0.0.1:5000/#action=reset-password&token={token}"
    assert read["EMAIL_VERIFY_URL"] == "http://127.0.0.1:5000/#action=verify-email&token={token}"


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"PUBLIC_URL": "http://auth.example.com"}, "PUBLIC_URL must be an https://"),
        ({"PUBLIC_URL": "javascript:alert(1)"}, "PUBLIC_URL must be an https://"),
        ({"PASSWORD_RESET_URL": "https://spa.example.com/reset"}, "must contain {token}"),
        ({"PASSWORD_RESET_URL": "https://spa.example.com/r?t={token}&lang={lang}"}, "no other"),
        ({"EMAIL_VERIFY_URL": "ftp://spa.example.com/{token}"}, "EMAIL_VERIFY_URL must be an https://"),
        ({"MAIL_FROM": "not an address"}, "MAIL_FROM must be an e-mail address"),
        ({"MAIL_FROM": "a@example.com\r\nBcc: b@example.com"}, "MAIL_FROM must be an e-mail address"),
        ({"MAIL_RATE_LIMIT": "often"}, "MAIL_RATE_LIMIT must be a rate"),
    ],
)
def test_refused_mail_settings(tmp_path, changes, sentence):
    with pytest.raises(ConfigError, match=sentence):
        settings(tmp_path, **{**WITH_MAIL, "SMTP_URL": "smtp://mail.example.com", **changes})


def test_an_spa_elsewhere_sets_its_own_links(tmp_path):
    read = settings(
        tmp_path,
        **WITH_MAIL,
        SMTP_URL="smtp://mail.example.com",
        PASSWORD_RESET_URL="https://app.example.com/r?token={token}",
    )
    assert read["PASSWORD_RESET_URL"] == "https://app.example.com/r?token={token}"
    assert read["EMAIL_VERIFY_URL"] == "https://auth.example.com/#action=verify-email&token={token}"


def test_an_spa_with_all_three_links_needs_no_public_url(tmp_path):
    links = {
        "PASSWORD_RESET_URL": "https://app.example.com/reset#token={token}",
        "EMAIL_VERIFY_URL": "https://app.example.com/verify#token={token}",
        "SIGNIN_ALERT_URL": "https://app.example.com/not-me#token={token}",
    }
    read = settings(tmp_path, **DEPLOYED, MAIL_FROM="a@example.com", SMTP_URL="smtp://mail.example.com", **links)
    assert read["PUBLIC_URL"] is None and read["PASSWORD_RESET_URL"] == links["PASSWORD_RESET_URL"]
