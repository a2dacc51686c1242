"""Logs in-process: a security event's record carries its request (app_log, conftest.py's caplog for the app's logger).

What gunicorn writes to stdout, line by line and without a secret, is servers/test_logs_served.py's.
"""


def test_security_events_carry_the_request(client, auth, app_log):
    auth.add_user("alice")
    client.post("/token", json={"username": "alice", "password": "wrong"}, headers={"X-Request-ID": "r-1"})
    (failed,) = [record for record in app_log.records if record.getMessage() == "login_failed"]
    assert failed.levelname == "WARNING"
    assert failed.fields["user_id"] == 1 and failed.fields["reason"] == "wrong_password"
