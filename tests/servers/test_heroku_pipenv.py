"""Heroku installs with `pipenv install --deploy`, which fails on a Pipfile.lock older than the Pipfile: pipenv itself,
run in a subprocess, checks the lock (the files Heroku reads are checked without it in unit/test_heroku.py)."""

import os
import shutil
import subprocess

import pytest
from helpers import ROOT


def test_pipfile_lock_is_up_to_date_as_pipenv_install_deploy_requires():
    pipenv = shutil.which("pipenv") or (ROOT / ".tools" / "bin" / "pipenv")
    if not os.path.exists(pipenv):
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs pipenv into .tools/ (make test)")
        pytest.skip("no pipenv here (make test installs it into .tools/)")
    result = subprocess.run([str(pipenv), "verify"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
