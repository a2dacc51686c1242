"""The demo page in a real headless Chromium (Debian's), driven by Playwright.

Without /usr/bin/chromium these tests are skipped with a message, except
under CI=true, where they fail: CI installs it (.ci/run).
"""

import base64
import functools
import http.client
import http.server
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers import PASSWORD, ROOT, claims_of, forge, now, steady_step, totp_code, wait_for
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tokenservice.storage.models import LoginFailure

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEMO_DIR = ROOT / "src" / "tokenservice" / "web" / "static" / "demo"
ARTIFACTS = ROOT / "test-artifacts"

if not Path(CHROMIUM).exists():
    message = "the browser tests need Debian's chromium: sudo apt-get install chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from smtp_server import Outbox, text_of, token_in  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


class Server:
    """A WSGI app or a folder of plain files, served on a free loopback port in a thread."""

    def __init__(self, app=None, directory=None):
        if app is None:
            handler = functools.partial(_QuietFiles, directory=str(directory))
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        else:
            self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def spa_files():
    """The demo folder served as plain files from another origin (another port)."""
    server = Server(directory=DEMO_DIR)
    yield server
    server.stop()


@pytest.fixture
def serve(make_app, spa_files):
    """Serve the API, built with extra environment variables, allowing the plain-files origin."""
    servers = []

    def start(**environ):
        app = make_app(CORS_ORIGINS=spa_files.url, **environ)
        servers.append(Server(app=app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def sign_up(page, username="alice", password=PASSWORD):
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign up").click()


def stored(page, key):
    return page.evaluate(f"localStorage.getItem({key!r})")


def log_in(page, username="alice", password=PASSWORD):
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


@dataclass
class Recorded:
    method: str
    path: str
    headers: list  # (name, value) pairs, as they arrived
    body: str


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stranger's API, as a `?api=` link can name one: it records every request it gets.

    It allows the plain-files origin through CORS, answers GET /me with
    token_expired unless it is shown its own access token, and hands out
    tokens of its own for "mallory" from POST /token/refresh and POST /token.
    """

    ACCESS, REFRESH, DEVICE = "mallory-access", "mallory-refresh", "mallory-device"
    TOKENS = {"access_token": ACCESS, "refresh_token": REFRESH, "token_type": "Bearer", "expires_in": 900}
    MALLORY = {"id": 666, "username": "mallory", "role": "user"}
    # An enrolment's QR code with handlers in it, each of which would set window.pwned.
    HOSTILE_SVG = (
        '<svg width="100" height="100" onload="window.pwned=1"><path d="M0 0h1" transform="scale(4)" '
        'onmouseover="window.pwned=2"/><image href="x" onerror="window.pwned=3"/>'
        '<animate onbegin="window.pwned=4" attributeName="x" dur="1s"/></svg>'
    )

    def _answer(self, status, data=None):
        body = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", self.server.allow_origin)
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.send_header("Vary", "Origin")
        if data is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.requests.append(Recorded(self.command, self.path, list(self.headers.items()), body))
        route = (self.command, self.path)
        if self.command == "OPTIONS":  # a CORS preflight
            self._answer(204)
        elif route == ("GET", "/me") and self.headers.get("Authorization") == f"Bearer {self.ACCESS}":
            self._answer(200, self.MALLORY)
        elif route == ("GET", "/me"):
            self._answer(401, {"error": "token_expired", "message": "The access token has expired."})
        elif route == ("GET", "/me/sessions") and self.headers.get("Authorization") == f"Bearer {self.ACCESS}":
            self._answer(200, {"items": []})
        elif route == ("POST", "/me/mfa/totp"):
            self._answer(200, {"secret": "AAAA", "uri": "otpauth://totp/x", "qr_svg": self.HOSTILE_SVG})
        elif route == ("POST", "/token/refresh"):
            self._answer(200, self.TOKENS)
        elif route == ("POST", "/token"):
            self._answer(200, {**self.TOKENS, "device_token": self.DEVICE})
        elif route == ("POST", "/logout"):
            self._answer(204)
        else:
            self._answer(404, {"error": "not_found", "message": "Not found."})

    do_GET = do_POST = do_OPTIONS = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder(spa_files):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.allow_origin = spa_files.url
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def spa(spa_files, api):
    """The plain-files demo, pointed at `api` (quoted: it may be anything a link can carry)."""
    return f"{spa_files.url}/index.html?api={quote(api, safe='')}"


def test_same_origin_sign_up_reload_and_log_out(page, serve):
    api = serve()
    page.goto(api.url + "/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    token = stored(page, "jwt-token")
    assert token and stored(page, "jwt-refresh-token")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signed-in.png"), full_page=True)

    page.reload()  # the session survives a reload
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#message")).to_have_text("You are logged out.")
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    assert stored(page, "jwt-token") is None and stored(page, "jwt-refresh-token") is None
    # The server ended the session: the old token is refused.
    status = page.evaluate(
        "async (token) => (await fetch('/me', {headers: {Authorization: 'Bearer ' + token}})).status", token
    )
    assert status == 401


def test_an_account_recovered_from_the_page_alone_with_a_real_mail_server(page, serve, make_app, mailbox):
    """Sign up with an address, verify it from the mailed link, forget the password, set a new one from the link."""
    api = serve(SMTP_URL=mailbox.smtp_url)
    outbox = Outbox(make_app(SMTP_URL=mailbox.smtp_url), mailbox)
    page.goto(api.url + "/")
    page.locator("#email").fill("alice@example.com")
    sign_up(page)
    expect(page.locator("#user-email")).to_have_text("alice@example.com (not verified)")
    outbox.send()
    (verification,) = mailbox.wait_for(1)
    assert "/#action=verify-email&token=" in text_of(verification)
    page.goto(f"{api.url}/#action=verify-email&token={token_in(verification)}")
    expect(page).not_to_have_url(re.compile("token"))  # taken out of the address bar at once
    page.get_by_role("button", name="Verify my address").click()
    expect(page.locator("#message")).to_have_text("Your e-mail address is verified.")
    expect(page.locator("#user-email")).to_have_text("alice@example.com (verified)")

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Forgot your password?").click()
    page.get_by_label("Username or e-mail address").fill("alice@example.com")
    page.get_by_role("button", name="Mail me a link").click()
    expect(page.locator("#message")).to_contain_text("a reset link is on its way")
    outbox.send()
    reset_mail = mailbox.wait_for(2)[1]
    page.goto(f"{api.url}/#action=reset-password&token={token_in(reset_mail)}")
    page.get_by_label("New password", exact=True).fill("password123")  # the usual rules apply
    page.get_by_role("button", name="Set the password").click()
    expect(page.locator("#message")).to_contain_text("new_password")
    page.get_by_label("New password", exact=True).fill("a brand new passphrase")
    page.get_by_role("button", name="Set the password").click()
    expect(page.locator("#message")).to_contain_text("Your password is set")
    log_in(page, password="a brand new passphrase")
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")


def test_a_second_factor_enrolled_and_used_from_the_page_and_a_sign_in_ended_from_its_list(page, serve, auth):
    """Turn on TOTP from the QR code's secret, log in with a code and with a recovery code; see another device's
    sign-in in the list and end it."""
    api = serve()
    page.goto(api.url + "/")
    sign_up(page)
    expect(page.locator("#user-mfa")).to_have_text("off")
    expect(page.locator("#sessions li")).to_have_count(1)
    expect(page.locator("#sessions li")).to_contain_text("(this browser)")

    page.get_by_role("button", name="Turn on a second factor").click()
    expect(page.locator("#qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    page.screenshot(path=str(ARTIFACTS / "second-factor-enrolment.png"), full_page=True)
    page.get_by_label("The code it shows now").fill(totp_code(secret, steady_step() - 1))
    page.get_by_role("button", name="Turn it on").click()
    expect(page.locator("#message")).to_have_text("Your second factor is on: logins now ask for a code.")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    expect(page.locator("#user-mfa")).to_have_text("on")
    page.screenshot(path=str(ARTIFACTS / "second-factor.png"), full_page=True)
    recovery_codes = page.locator("#recovery-codes li").all_inner_texts()

    page.get_by_role("button", name="Log out").click()
    log_in(page)
    expect(page.locator("#code-heading")).to_be_visible()
    page.get_by_label("Code", exact=True).fill("000000")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#message")).to_have_text("The code is wrong or has been used already.")
    page.get_by_label("Code", exact=True).fill(totp_code(secret, steady_step()))
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#profile")).to_be_visible()
    assert claims_of(stored(page, "jwt-token"))["amr"] == ["pwd", "otp"]

    page.get_by_role("button", name="Log out").click()
    log_in(page)
    page.get_by_label("Code", exact=True).fill(recovery_codes[0])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#profile")).to_be_visible()

    # Another device signs in; the list shows it after a reload, and its End button stops its tokens.
    phone = auth.login("alice", headers={"User-Agent": "Phone/1.0"}, otp=totp_code(secret, steady_step() + 1))
    page.reload()
    row = page.locator("#sessions li", has_text="Phone/1.0")
    expect(row).to_be_visible()
    row.get_by_role("button", name="End").click()
    expect(page.locator("#message")).to_have_text("That sign-in has ended.")
    expect(page.locator("#sessions li", has_text="Phone/1.0")).to_have_count(0)
    assert auth.client.get("/me", headers=phone.headers).status_code == 401


def test_a_sign_in_alert_link_ends_that_sign_in_from_the_page(page, serve, make_app, mailbox, auth, auth_for):
    """The page the alert's link opens asks first; ending the sign-in needs its button."""
    auth.add_user("alice", email="alice@example.com", email_verified=True)
    api = serve()
    outbox = Outbox(make_app(SMTP_URL=mailbox.smtp_url, SIGNIN_ALERTS="true"), mailbox)
    stolen = auth_for(outbox.app).login("alice", headers={"User-Agent": "Thief/1.0"})
    outbox.send()
    (alert,) = mailbox.wait_for(1)
    assert "Thief/1[.]0" in text_of(alert) and "/#action=end-session&token=" in text_of(alert)
    page.goto(f"{api.url}/#action=end-session&token={token_in(alert)}")
    expect(page).not_to_have_url(re.compile("token"))
    expect(page.locator("#end-session-heading")).to_have_text("Was this sign-in not you?")
    assert auth.client.get("/me", headers=stolen.headers).status_code == 200  # opening the link ended nothing
    page.get_by_role("button", name="End that sign-in").click()
    expect(page.locator("#message")).to_contain_text("That sign-in has ended.")
    assert auth.client.get("/me", headers=stolen.headers).status_code == 401


def test_log_in_and_errors_in_words(page, serve, auth):
    auth.add_user("alice")
    api = serve()
    page.goto(api.url + "/")
    sign_up(page, "bob", "password123")
    expect(page.locator("#message")).to_contain_text("password: Is one of the most common passwords")
    page.get_by_label("Username", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#message")).to_contain_text("Wrong username or password.")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")


def test_cross_origin_through_cors(page, serve, spa_files):
    api = serve()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{spa_files.url}/index.html?api={api.url}")
    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    assert any(url.startswith(api.url + "/me") for url in requests)
    # Kept for the API that issued them: keyed by its origin, never under the page's own keys.
    assert stored(page, f"jwt-token@{api.url}") and stored(page, f"jwt-refresh-token@{api.url}")
    assert stored(page, "jwt-token") is None and stored(page, "jwt-refresh-token") is None
    page.reload()
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#message")).to_have_text("You are logged out.")
    assert stored(page, f"jwt-token@{api.url}") is None and stored(page, f"jwt-refresh-token@{api.url}") is None


def test_a_link_to_another_api_gets_none_of_this_apis_tokens(page, serve, spa_files, recorder):
    """The plain files have no CSP: a link with ?api=<stranger> must not hand the stranger our tokens."""
    api = serve()
    page.goto(spa(spa_files, api.url))
    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    # Its device token too, or one like it from a service that hands out none yet: this API's alone as well.
    page.evaluate(
        "(key) => localStorage.getItem(key) ?? localStorage.setItem(key, 'alice-device')", f"jwt-device-token@{api.url}"
    )
    secrets = set(page.evaluate("() => Object.values(localStorage)"))  # whatever the keys' names
    assert len(secrets) == 3  # access, refresh, device

    def carries_a_secret(request):
        return any(secret in f"{request.headers} {request.body}" for secret in secrets)

    def authorizations():
        return [value for r in recorder.requests for name, value in r.headers if name.lower() == "authorization"]

    # networkidle: whatever the page sends on its own when it opens has been answered.
    page.goto(spa(spa_files, recorder.url), wait_until="networkidle")
    assert [(r.method, r.path) for r in recorder.requests if carries_a_secret(r)] == []
    assert authorizations() == []
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.locator("#profile")).to_be_hidden()
    expect(page.locator("#api")).to_have_text(f"API: {recorder.url}")
    # The page still talks to the API it names, and keeps that API's tokens apart.
    log_in(page, "mallory")
    expect(page.locator("#whoami")).to_have_text("Signed in as mallory")
    # Asked for after /me; its CORS preflight comes first, so it is the GET that is waited for.
    wait_for(lambda: any((r.method, r.path) == ("GET", "/me/sessions") for r in recorder.requests))
    assert [(r.method, r.path) for r in recorder.requests if r.method != "OPTIONS"] == [
        ("POST", "/token"),
        ("GET", "/me"),
        ("GET", "/me/sessions"),
    ]
    logins = [json.loads(r.body) for r in recorder.requests if (r.method, r.path) == ("POST", "/token")]
    assert logins == [{"username": "mallory", "password": PASSWORD}]  # no device token of alice's
    assert authorizations() == [f"Bearer {_Recorder.ACCESS}"] * 2  # mallory's own, for her /me and sessions
    assert not any(carries_a_secret(r) for r in recorder.requests)
    assert stored(page, f"jwt-token@{recorder.url}") == _Recorder.ACCESS

    page.goto(spa(spa_files, api.url))  # the real tokens were kept, untouched
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    expect(page.locator("#api")).to_have_text(f"API: {api.url}")
    kept = {stored(page, f"{name}@{api.url}") for name in ("jwt-token", "jwt-refresh-token", "jwt-device-token")}
    assert kept == secrets


def test_a_strangers_qr_code_runs_nothing_on_a_page_without_the_csp(page, spa_files, recorder):
    """The plain-files copy has no CSP: the page draws the QR code afresh, so the SVG's handlers never reach it."""
    page.goto(spa(spa_files, recorder.url))
    log_in(page, "mallory")
    page.get_by_role("button", name="Turn on a second factor").click()
    expect(page.locator("#qr svg")).to_be_visible()
    # Nothing of the sent markup but the path's drawing and the size is in the page: no handler can run.
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelector('#qr').innerHTML") == (
        '<svg width="100" height="100" role="img" aria-label="QR code for an authenticator app">'
        '<path d="M0 0h1" transform="scale(4)" stroke="#000"></path></svg>'
    )


@pytest.mark.parametrize(
    "address",
    ["javascript:alert(1)", "/api", "//{recorder}", "ftp://{recorder}", "{recorder}", "not a URL", "http://"],
)
def test_an_api_address_that_is_not_an_http_url_is_refused_in_words(page, spa_files, recorder, address):
    address = address.format(recorder=recorder.url.removeprefix("http://"))
    page.goto(spa_files.url + "/index.html")
    page.evaluate("() => { localStorage['jwt-token'] = 'an-access'; localStorage['jwt-refresh-token'] = 'a-refresh'; }")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(spa(spa_files, address), wait_until="networkidle")
    expect(page.locator("#message")).to_have_text(
        "The ?api= address is not an absolute http: or https: URL, so this page talks to no API."
        " Open it with, for example, ?api=http://127.0.0.1:5000."
    )
    expect(page.locator("#api")).to_have_text("API: none")
    expect(page.locator("#auth-form")).to_be_hidden()
    expect(page.locator("#profile")).to_be_hidden()
    assert requests and all(url.startswith(spa_files.url + "/") for url in requests), requests
    assert recorder.requests == []
    assert (stored(page, "jwt-token"), stored(page, "jwt-refresh-token")) == ("an-access", "a-refresh")


def test_the_page_names_its_api(page, serve, spa_files):
    api = serve()
    page.goto(api.url + "/")
    expect(page.get_by_text(f"API: this site ({api.url})")).to_be_visible()
    page.goto(spa(spa_files, api.url + "/"))
    expect(page.get_by_text(f"API: {api.url}", exact=True)).to_be_visible()
    page.goto(spa(spa_files, spa_files.url))  # its own origin, named: the same as none
    expect(page.get_by_text(f"API: this site ({spa_files.url})")).to_be_visible()


def test_other_tabs_follow_a_log_in_and_a_log_out(page, serve):
    api = serve()
    other_tab = page.context.new_page()
    page.goto(api.url + "/")
    other_tab.goto(api.url + "/")
    expect(other_tab.get_by_role("button", name="Log in")).to_be_visible()
    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    expect(other_tab.locator("#whoami")).to_have_text("Signed in as alice")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#message")).to_have_text("You are logged out.")
    expect(other_tab.locator("#message")).to_have_text("You were logged out in another tab.")
    expect(other_tab.get_by_label("Username", exact=True)).to_be_visible()
    expect(other_tab.locator("#profile")).to_be_hidden()


# Resolves window.heard, once `key` changes in another tab, with what this tab's
# own listener (added when app.js ran, so called first) has made of it.
HEAR = """(key) => { window.heard = new Promise((resolve) => addEventListener("storage", function hear(event) {
    if (event.key !== key) return;
    removeEventListener("storage", hear);
    resolve({signedIn: !document.getElementById("profile").hidden,
             message: document.getElementById("message").textContent,
             busy: document.querySelector("button").disabled});
})); }"""


def test_other_tabs_ignore_another_apis_tokens(page, serve, spa_files):
    """One page origin, two APIs: each tab follows only the keys of the API it names."""
    api, other = serve(), serve()
    other_tab = page.context.new_page()
    page.goto(spa(spa_files, api.url))
    other_tab.goto(spa(spa_files, other.url))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.evaluate(HEAR, f"jwt-token@{other.url}")
    sign_up(other_tab, "bob")  # a login for the other API: this tab stays signed out, and quiet
    expect(other_tab.locator("#whoami")).to_have_text("Signed in as bob")
    assert page.evaluate("window.heard") == {"signedIn": False, "message": "", "busy": False}
    expect(page.get_by_role("button", name="Log in")).to_be_visible()

    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    other_tab.evaluate(HEAR, f"jwt-token@{api.url}")
    page.get_by_role("button", name="Log out").click()  # a logout from this API: the other tab stays signed in
    expect(page.locator("#message")).to_have_text("You are logged out.")
    assert other_tab.evaluate("window.heard") == {"signedIn": True, "message": "", "busy": False}
    expect(other_tab.locator("#whoami")).to_have_text("Signed in as bob")


def test_the_device_token_is_kept_across_log_out_and_sent_with_the_next_log_in(page, serve, auth):
    """The service's device_token: a browser that logged in before is counted apart from strangers."""
    auth.add_user("alice")
    api = serve()
    logins = []
    page.on(
        "request", lambda request: logins.append(request.post_data_json) if request.url.endswith("/token") else None
    )
    page.goto(api.url + "/")
    log_in(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    device = stored(page, "jwt-device-token")
    assert device and device.startswith("dv1.")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#message")).to_have_text("You are logged out.")
    assert stored(page, "jwt-token") is None and stored(page, "jwt-device-token") == device  # not a credential: kept
    log_in(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    alice = {"username": "alice", "password": PASSWORD}
    assert logins == [alice, {**alice, "device_token": device}]
    assert stored(page, "jwt-device-token") == device  # the service recognised it: the same device


def test_cross_origin_without_cors_is_blocked_by_the_browser(page, make_app, spa_files):
    api = Server(app=make_app(CORS_ORIGINS="none"))
    try:
        page.goto(f"{spa_files.url}/index.html?api={api.url}")
        sign_up(page)
        expect(page.locator("#message")).to_contain_text("Cannot reach the service")
    finally:
        api.stop()


def test_the_served_page_cannot_be_pointed_at_another_api(page, serve, spa_files):
    """The CSP's connect-src 'self' keeps ?api= from sending credentials elsewhere."""
    api, other = serve(), serve()
    page.goto(f"{api.url}/?api={other.url}")
    sign_up(page)
    expect(page.locator("#message")).to_contain_text("Cannot reach the service")


def test_transparent_refresh_after_the_access_token_expires(page, serve):
    api = serve()
    page.goto(api.url + "/")
    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    first_access, first_refresh = stored(page, "jwt-token"), stored(page, "jwt-refresh-token")
    # The access token expires: the page holds an expired copy of it (signed with the served app's key).
    expired = forge(claims_of(first_access), exp=now() - 10)
    page.evaluate("(token) => localStorage.setItem('jwt-token', token)", expired)
    refreshes, reads = [], []
    page.on("request", lambda request: refreshes.append(request) if request.url.endswith("/token/refresh") else None)
    page.on("response", lambda response: reads.append(response) if response.url.endswith("/me") else None)
    page.reload()
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    assert [response.status for response in reads] == [401, 200]
    assert reads[0].json()["error"] == "token_expired"
    assert len(refreshes) == 1
    assert stored(page, "jwt-token") not in (first_access, expired)
    assert stored(page, "jwt-refresh-token") != first_refresh


def test_a_session_ended_elsewhere_signs_the_page_out(page, serve):
    api = serve()
    page.goto(api.url + "/")
    sign_up(page)
    expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    page.evaluate(
        "async () => fetch('/logout?all=true', {method: 'POST',"
        " headers: {Authorization: 'Bearer ' + localStorage.getItem('jwt-token')}})"
    )
    page.reload()
    expect(page.locator("#message")).to_have_text("Your session has ended; please log in again.")
    assert stored(page, "jwt-token") is None


def test_cookie_mode_with_csrf_in_the_browser(page, serve, auth):
    auth.add_user("alice")
    api = serve(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SECURE="false")
    page.goto(api.url + "/")
    result = page.evaluate(
        """async (password) => {
            const json = {"Content-Type": "application/json"};
            const login = await fetch("/token", {method: "POST", headers: json,
                body: JSON.stringify({username: "alice", password})});
            const me = await fetch("/me");  // the HttpOnly cookie, no Authorization header
            const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrf_access_token="));
            const withoutCsrf = await fetch("/me", {method: "PATCH", headers: json,
                body: JSON.stringify({name: "Mallory"})});
            const withCsrf = await fetch("/me", {method: "PATCH",
                headers: {...json, "X-CSRF-TOKEN": csrf.split("=")[1]}, body: JSON.stringify({name: "Alice"})});
            return {login: login.status, me: me.status,
                    readableAccessCookie: document.cookie.includes("access_token_cookie"),
                    withoutCsrf: withoutCsrf.status, withoutCsrfError: (await withoutCsrf.json()).error,
                    withCsrf: withCsrf.status, name: (await withCsrf.json()).name};
        }""",
        PASSWORD,
    )
    assert result == {
        "login": 200,
        "me": 200,
        "readableAccessCookie": False,
        "withoutCsrf": 403,
        "withoutCsrfError": "csrf_failed",
        "withCsrf": 200,
        "name": "Alice",
    }


def test_docs_authorize_logs_in_and_calls_a_guarded_route(page, serve, auth):
    """Swagger UI, from the service's own files under its CSP, logs in through /token."""
    auth.add_user("alice")
    api = serve()
    problems = []
    page.on(
        "console", lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None
    )
    page.goto(api.url + "/docs")
    page.get_by_role("button", name="Authorize").click()
    oauth = page.locator(".auth-container").filter(has=page.locator("#oauth_username"))
    oauth.locator("#oauth_username").fill("alice")
    oauth.locator("#oauth_password").fill(PASSWORD)
    with page.expect_response(lambda response: response.url.endswith("/token")) as login:
        oauth.locator("button.authorize").click()
    assert login.value.status == 200
    page.keyboard.press("Escape")
    operation = page.locator(".opblock-get").filter(has=page.locator('[data-path="/me"]'))
    operation.locator(".opblock-summary-control").click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda response: response.url.endswith("/me")) as me:
        operation.get_by_role("button", name="Execute").click()
    assert me.value.status == 200
    assert me.value.json()["username"] == "alice"
    assert problems == []


class _BasicAuthGate(http.server.BaseHTTPRequestHandler):
    """A Basic-protected reverse proxy, as staging gates are: it passes Authorization on to the service."""

    upstream: str  # set per gate (host:port)
    credentials = "Basic " + base64.b64encode(b"staff:gate").decode()

    def _forward(self):
        if self.headers.get("Authorization") != self.credentials:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="staging"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.forwarded.append((self.command, self.path, self.headers["Authorization"]))
        upstream = http.client.HTTPConnection(self.upstream, timeout=10)
        upstream.request(self.command, self.path, body, dict(self.headers))
        answer = upstream.getresponse()
        content = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        upstream.close()

    do_GET = do_POST = _forward

    def log_message(self, *args):
        pass


ATTACK_PAGE = """<!doctype html><title>A page with a form</title>
<form method="post" action="{gate}/token">{fields}</form>
<script>document.forms[0].submit()</script>"""
CREDENTIALS = '<input name="username" value="mallory"><input name="password" value="{password}">'


@pytest.fixture
def behind_a_gate(browser, make_app, tmp_path):
    """serve(page) -> (page in a browser signed in to a Basic-auth gate, the gate, the URL it posts to).

    The service runs in cookie mode with every limit on behind the gate; the
    attacker's page, served from another site, posts a form through it.
    """
    api = Server(
        app=make_app(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SECURE="false", RATELIMIT_ENABLED="true")
    )
    handler = type("Gate", (_BasicAuthGate,), {"upstream": api.url.removeprefix("http://")})
    gate = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    gate.forwarded = []
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    gate_url = f"http://127.0.0.1:{gate.server_port}"
    attacker = Server(directory=tmp_path)
    context = browser.new_context(http_credentials={"username": "staff", "password": "gate"})

    def serve(fields: str):
        (tmp_path / "attack.html").write_text(ATTACK_PAGE.format(gate=gate_url, fields=fields))
        page = context.new_page()
        assert page.goto(gate_url + "/health").status == 200  # the person signs in to the gate
        with page.expect_response(lambda response: response.url == gate_url + "/token") as posted:
            page.goto(attacker.url.replace("127.0.0.1", "localhost") + "/attack.html")
        return posted.value, gate, context.cookies(gate_url)

    yield serve
    context.close()
    gate.shutdown()
    gate.server_close()
    attacker.stop()
    api.stop()


def test_a_cross_site_form_behind_a_basic_auth_gate_cannot_log_the_browser_in(behind_a_gate, auth):
    """Login CSRF: the browser adds the gate's cached Basic credentials to the attacker's form post."""
    auth.add_user("mallory")
    posted, gate, cookies = behind_a_gate(CREDENTIALS.format(password=PASSWORD))
    assert posted.status == 200  # mallory's tokens, as JSON
    # The form post reached the service with the gate's credentials, added by the browser itself.
    assert ("POST", "/token", _BasicAuthGate.credentials) in gate.forwarded
    assert [cookie["name"] for cookie in cookies] == []


def test_a_form_post_without_credentials_behind_a_gate_is_no_login_as_the_gates_user(behind_a_gate, auth, database):
    """The browser's Basic header (the gate's staff:gate) is not taken as credentials for a form post."""
    auth.add_user("staff")  # a user of the service who happens to share the gate's username
    posted, gate, _ = behind_a_gate('<input name="grant_type" value="password">')
    assert ("POST", "/token", _BasicAuthGate.credentials) in gate.forwarded
    assert posted.status == 400 and set(posted.json()["fields"]) == {"username", "password"}
    assert database.scalar(select(func.count()).select_from(LoginFailure)) == 0
