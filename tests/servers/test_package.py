"""The service is an installed package: `import tokenservice` works from any directory in the virtualenv."""

import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT


def test_it_imports_from_outside_the_checkout_with_no_path_set(tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    script = "import tokenservice.wsgi, tokenservice; print(tokenservice.__file__)"
    # tokenservice.wsgi builds the app: with no DATABASE_URL it would start an embedded PostgreSQL.
    env.update(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", JWT_SECRET_KEY="x" * 40)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == ROOT / "src" / "tokenservice" / "__init__.py"


def test_the_package_carries_its_migrations():
    migrations = ROOT / "src" / "tokenservice" / "storage" / "migrations"
    assert (migrations / "env.py").is_file() and sorted(migrations.glob("versions/0001_*.py"))
    assert not (ROOT / "migrations").exists()
