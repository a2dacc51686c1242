"""What Heroku reads from the repository, checked against the rules of its Python buildpack and against the code.

The buildpack (heroku/heroku-buildpack-python, lib/python_version.sh and
lib/package_manager.sh) picks the Python version from runtime.txt, then
.python-version, then Pipfile.lock; it warns for runtime.txt, for no version
at all, and for a pinned patch release that is not the newest. It installs
with `pipenv install --deploy`, which fails on a Pipfile.lock older than the
Pipfile (servers/test_heroku_pipenv.py runs pipenv on the lock), and fails a
build with more than one package manager's files.
"""

import json
import os
import re
import runpy
import sys

import pytest
from deployment import procfile
from helpers import ROOT, SECRET, variables_read

from tokenservice.config import load_settings

# Set by Heroku itself or by an add-on, never in app.json's env.
FROM_THE_PLATFORM = {
    "DATABASE_URL": "the heroku-postgresql add-on",
    "REDIS_URL": "the Key-Value Store add-on, when attached",
    "PORT": "the router",
    "WEB_CONCURRENCY": "the Python buildpack, by dyno size",
    **{
        name: "the Mailgun add-on, when attached"
        for name in (
            "MAILGUN_SMTP_SERVER",
            "MAILGUN_SMTP_PORT",
            "MAILGUN_SMTP_LOGIN",
            "MAILGUN_SMTP_PASSWORD",
            "MAILGUN_DOMAIN",
        )
    },
}
# Where app.json deliberately differs from the code's defaults.
HEROKU_CHOICES = {"TRUSTED_PROXIES": "1"}  # Heroku's router appends one X-Forwarded-For hop
DEPLOYED = {"DATABASE_URL": "postgres://u:p@db.example.com:5432/app", "JWT_SECRET_KEY": SECRET}


def app_json() -> dict:
    return json.loads((ROOT / "app.json").read_text())


def pinned_python() -> str:
    lines = [line.strip() for line in (ROOT / ".python-version").read_text().splitlines()]
    versions = [line for line in lines if line and not line.startswith("#")]
    assert len(versions) == 1, "the buildpack wants exactly one version line"
    return versions[0]


def test_python_is_pinned_to_a_major_version_in_the_file_heroku_reads_first():
    # N.N, the form the buildpack recommends: it takes the newest patch
    # release (security fixes) and prints no "patch update available" warning.
    assert re.fullmatch(r"3\.\d+", pinned_python())
    # runtime.txt would outrank it, with a deprecation warning.
    assert not (ROOT / "runtime.txt").exists()
    # No second place that could disagree: no [requires] in the Pipfile, so none in the lock either (the
    # buildpack reads the lock's python_version only without .python-version, and pipenv would warn of it).
    assert "[requires]" not in (ROOT / "Pipfile").read_text()
    assert json.loads((ROOT / "Pipfile.lock").read_text())["_meta"]["requires"] == {}


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="the quick start runs on any Python 3.11 or newer")
def test_ci_runs_the_suite_on_the_python_heroku_builds_with():
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == pinned_python()


def test_one_package_manager_and_no_virtualenv_pushed():
    for name in ("Pipfile", "Pipfile.lock", "Procfile", "app.json", ".python-version"):
        assert (ROOT / name).is_file(), name
    # Any of these beside Pipfile.lock fails the build; a pushed virtualenv too.
    for name in ("requirements.txt", "poetry.lock", "uv.lock", "setup.py"):
        assert not (ROOT / name).exists(), name
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {".venv/", ".tools/"} <= set(ignored)


def test_app_json_declares_every_variable_the_code_reads_and_nothing_else():
    declared = set(app_json()["env"])
    assert declared | set(FROM_THE_PLATFORM) == variables_read()
    assert not declared & set(FROM_THE_PLATFORM)
    for name, entry in app_json()["env"].items():
        assert entry.get("description"), f"{name} has no description"


def test_app_json_generates_the_secret_and_provisions_postgresql():
    manifest = app_json()
    secret = manifest["env"]["JWT_SECRET_KEY"]
    assert secret["generator"] == "secret" and "value" not in secret
    assert [addon["plan"].partition(":")[0] for addon in manifest["addons"]] == ["heroku-postgresql"]
    # release: runs once per deploy, not as a dyno.
    assert set(manifest["formation"]) == {"web"}
    assert set(procfile()) == {"release", "web"}


def test_app_json_defaults_are_the_codes_defaults_but_for_herokus_router():
    values = {name: entry["value"] for name, entry in app_json()["env"].items() if "value" in entry}
    assert {name: values[name] for name in HEROKU_CHOICES} == HEROKU_CHOICES
    defaults = {name: value for name, value in values.items() if name not in HEROKU_CHOICES}
    assert load_settings({**DEPLOYED, **defaults}, instance_path="unused") == load_settings(
        DEPLOYED, instance_path="unused"
    )
    # Entries with no value are optional: blank means the default.
    optional = {name for name, entry in app_json()["env"].items() if "value" not in entry and "generator" not in entry}
    assert all(app_json()["env"][name].get("required") is False for name in optional)


def test_env_example_lists_every_variable_with_the_codes_defaults():
    lines = (ROOT / ".env.example").read_text().splitlines()
    example = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(example) == variables_read() | {"TEST_DATABASE_URL"}
    assert load_settings({**example, **DEPLOYED}, instance_path="unused") == load_settings(
        DEPLOYED, instance_path="unused"
    )
    # PORT and WEB_CONCURRENCY are gunicorn's (the suite runs with neither set).
    gunicorn = runpy.run_path(str(ROOT / "src" / "gunicorn.conf.py"))
    assert (gunicorn["bind"], gunicorn["workers"]) == (f"0.0.0.0:{example['PORT']}", int(example["WEB_CONCURRENCY"]))


def test_a_blank_variable_means_its_default(monkeypatch):
    # Heroku config vars, app.json entries with no value and deployment.py's
    # blanks all rely on it.
    blanks = dict.fromkeys(variables_read() - set(DEPLOYED), "")
    assert load_settings({**blanks, **DEPLOYED}, instance_path="unused") == load_settings(
        DEPLOYED, instance_path="unused"
    )
    # gunicorn's PORT too (WEB_CONCURRENCY cannot be blank: gunicorn itself refuses it, .env.example says so).
    monkeypatch.setenv("PORT", "")
    assert runpy.run_path(str(ROOT / "src" / "gunicorn.conf.py"))["bind"] == "0.0.0.0:5000"
